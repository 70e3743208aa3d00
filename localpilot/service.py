"""The Assistant facade: the one object every front-end (CLI, TUI, editor, hook) talks to.

The spine, one request at a time (construction of every part: ``components.py``)::

    git repo ─ index/walker ─ index/chunker (grammars/) ─ experts/embedder ─┬─ index/state (SQLite: text, FTS,
                                                                            │   symbols, embedding cache)
                                                                            └─ store (Chroma: ids + vectors)
    question ─ retrieve (vector + lexical + symbol, fused) ─ experts/reranker ─ router (search / small / big)
             ─ asking ─ answer (prompt, stream) ─ experts/llm ─ attribute (file:line per sentence) ─ front-end
    cursor   ─ complete (fill in the middle, other files as context) ─ experts/llm (its own instance)
    commit   ─ suggest (changed symbols, their tests) ─ githook

Each method here is one use case; it takes its parts from ``Components`` and holds no other state.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from localpilot.answer import AnswerStream, Conversation
from localpilot.complete import Completion
from localpilot.components import Components
from localpilot.config import Settings, load_settings
from localpilot.errors import IndexBusy, LocalpilotError
from localpilot.experts.embedder import Embedder
from localpilot.experts.llm import Generator
from localpilot.index.state import IndexState
from localpilot.index.walker import find_repo_root
from localpilot.index.writelock import write_lock
from localpilot.retrieve import Retriever
from localpilot.router import Router
from localpilot.store import Store
from localpilot.types import Hit, IndexStats

if TYPE_CHECKING:
    from localpilot.index.watcher import Watcher
    from localpilot.suggest.git import Snapshot
    from localpilot.suggest.report import Suggestion, TestReport

log = logging.getLogger(__name__)
BUFFER_WAIT_S = 10.0  # an editor's buffer waits this long for a running index run of this process


class Assistant:
    """localpilot for one git repository. Heavy parts load on first use; ``with Assistant(...) as a:`` closes
    what it opened."""

    def __init__(
        self,
        repo: Path | str = ".",
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        store: Store | None = None,
        generators: dict[str, Generator] | None = None,
    ) -> None:
        self.root = find_repo_root(Path(repo))
        self.parts = Components(
            self.root,
            settings or load_settings(self.root),
            embedder=embedder,
            store=store,
            generators=generators,
        )

    def __enter__(self) -> Assistant:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # The parts, for front-ends and tools that show or measure them.
    @property
    def settings(self) -> Settings:
        return self.parts.settings

    @property
    def index_dir(self) -> Path:
        return self.parts.index_dir

    @property
    def embedder(self) -> Embedder:
        return self.parts.embedder

    @property
    def store(self) -> Store:
        return self.parts.store

    @property
    def state(self) -> IndexState:
        return self.parts.state

    @property
    def retriever(self) -> Retriever:
        return self.parts.retriever

    @property
    def router(self) -> Router:
        return self.parts.router

    def generator(self, which: str = "small") -> Generator:
        """The ``small``, ``big`` or ``fim`` code LLM (in-process GGUF, or the configured server)."""
        return self.parts.generator(which)

    def loaded(self, which: str = "small") -> Generator | None:
        return self.parts.loaded(which)

    def use_llm(self, name: str, which: str = "small") -> None:
        """Switch the small (or big) model for the next request; the old one is unloaded."""
        self.parts.use_llm(name, which)

    # Use cases.
    def index(self, on_progress: Any = None) -> IndexStats:
        """Bring the index up to date with the work tree (incremental, resumable)."""
        with write_lock(self.index_dir, self.root):
            return self.parts.indexer().run(on_progress)

    def index_buffer(self, path: str, text: str) -> bool:
        """Index an editor's unsaved text for ``path`` now (searchable in this session; the next full index
        run re-reads the file from disk). False when another process is writing the index: the file's chunks
        then move to the front of that run's embedding queue instead."""
        indexer = self.parts.indexer()
        try:
            with write_lock(self.index_dir, self.root, wait=BUFFER_WAIT_S):
                indexer.index_text(path, text)
        except IndexBusy:
            indexer.prioritize([path])
            return False
        return True

    def watch(
        self,
        on_update: Callable[[IndexStats], None] | None = None,
        *,
        debounce: float | None = None,
        sweep: float | None = None,
    ) -> Watcher:
        """Start keeping the index fresh from file-system events (and a periodic sweep); returns the running
        Watcher (``stop()`` it). ``on_update(stats)`` is called after each update that changed something."""
        from localpilot.index.watcher import Watcher

        kwargs = {k: v for k, v in (("debounce", debounce), ("sweep", sweep)) if v is not None}
        watcher = Watcher(
            self.root,
            lambda _paths: _catch_up(self.index, on_update),
            ignore_dirs=(".git",),
            **kwargs,
        )
        watcher.start()
        return watcher

    def search(self, query: str, k: int | None = None, explain: bool = False) -> list[Hit]:
        """Ranked hits for a natural-language or code query; [] for an empty one."""
        self.parts.require_index()
        return self.retriever.search(query, k or self.settings.k, explain=explain).hits

    def symbol_info(self, name: str, limit: int = 8) -> dict[str, list[dict[str, Any]]]:
        """Where ``name`` is defined and used, from the index alone (no model)."""
        self.parts.require_index()
        return self.state.symbol_info(name, limit)

    def snippet(
        self, path: str, start: int = 1, end: int = 0, max_lines: int = 400
    ) -> dict[str, Any]:
        """Lines of a repository file as on disk now, secrets cut out (``index.snippet.read_snippet``)."""
        from localpilot.index.snippet import read_snippet

        return read_snippet(self.root, path, start, end, max_lines)

    def ask(
        self,
        question: str,
        conversation: Conversation | None = None,
        expert: str | None = None,
        cancel: threading.Event | None = None,
    ) -> AnswerStream:
        """Answer ``question`` with the cheapest expert that can: iterate the stream for events as the answer
        is made (the last, ``done``, carries the Answer), or call ``.result()``. Follow-ups pass the same
        ``conversation``."""
        from localpilot.asking import answer_request

        self.parts.require_index()
        convo = conversation if conversation is not None else Conversation()
        return AnswerStream(answer_request(self.parts, question, convo, expert, cancel))

    def complete(
        self, path: str, prefix: str, suffix: str, cancel: threading.Event | None = None
    ) -> Completion:
        """Inline completion at the cursor of ``path`` (fill in the middle, other files as context)."""
        from localpilot.index.languages import detect_language

        return self.parts.completer.complete(path, detect_language(path), prefix, suffix, cancel)

    def prewarm(self, path: str, prefix: str, suffix: str) -> int:
        """Read the prompt a completion at this cursor would use into the completion model's cache (editors
        call it when a file opens or typing pauses); returns the prompt tokens it evaluated."""
        from localpilot.index.languages import detect_language

        return self.parts.completer.prewarm(path, detect_language(path), prefix, suffix)

    def warm_up(self) -> None:
        """Load what an inline completion uses before the first one is asked: the completion model, and the
        index and embedder behind its context search (an editor starts its language server seconds before
        the first keystroke). Anything that fails here is reported by the request that needs it."""
        try:
            self.generator("fim").load()
            self.parts.require_index()
            self.parts.retriever.search("warm up", 1, use_reranker=False)
        except LocalpilotError as exc:
            log.info("not warmed up: %s", exc)

    def note_buffer(self, path: str, text: str, line: int) -> None:
        """An editor opened or edited ``path`` near ``line``: offered as context when completing other files."""
        self.parts.completer.note_buffer(path, text, line)

    def suggest_tests(
        self, snapshot: Snapshot | None = None, *, path: str | None = None, diff: str | None = None
    ) -> TestReport | dict[str, Any]:
        """The functions and classes ``snapshot``'s change touches, the tests that already name them (found
        through the index when there is one, else ``git grep``), and a named test with cases for the rest, as a
        TestReport. No model is loaded: this is what the pre-commit hook prints within its time budget.

        Tools pass ``path`` (every function/class of a file or directory) or ``diff`` (a unified diff against the
        work tree, applied or not; nothing is written) instead, and get the report as a dict."""
        from localpilot.suggest.patch import change_of
        from localpilot.suggest.report import build_report

        if snapshot is not None:
            return build_report(snapshot, self.indexed_state())
        return build_report(change_of(self.root, path, diff), self.indexed_state()).to_dict()

    def write_test(
        self, suggestion: Suggestion, cancel: threading.Event | None = None, max_tokens: int = 320
    ) -> Iterator[str]:
        """Stream a test skeleton for an untested ``suggestion`` from the small code LLM, in the style of the
        repository's own test file chosen by ``suggest_tests``."""
        from localpilot.suggest.skeleton import messages

        prompt = messages(
            language=suggestion.language,
            example_path=suggestion.example_path,
            example=suggestion.example,
            code_path=suggestion.path,
            start=suggestion.start,
            end=suggestion.end,
            code=suggestion.code,
            test=suggestion.test_name,
            target=suggestion.target,
            cases=suggestion.cases,
            symbol=suggestion.symbol,
        )
        for token in self.generator("small").stream(prompt, max_tokens, cancel):
            yield token.text

    def indexed_state(self) -> IndexState | None:
        """The index's tables if this repo has been indexed, else None; creates and loads nothing."""
        import sqlite3

        if not (self.index_dir / "state.sqlite").is_file():
            return None
        try:
            state = self.state
            return state if "last_indexed" in state.meta() else None
        except (LocalpilotError, sqlite3.Error):
            return None

    def status(self) -> dict[str, Any]:
        """What is indexed, what was skipped and why, where the index lives."""
        meta = self.state.meta()
        return {
            "repo": str(self.root),
            **self.state.summary(),
            "embedder": self.embedder.name,
            "index_dir": str(self.index_dir),
            "index_bytes": _tree_size(self.index_dir),
            "last_commit": meta.get("last_commit"),
            "last_indexed": meta.get("last_indexed"),
        }

    def close(self) -> None:
        self.parts.close()


def _catch_up(
    index: Callable[[], IndexStats], on_update: Callable[[IndexStats], None] | None
) -> None:
    """One watcher update: index, waiting out another process's run, then report what changed."""
    for attempt in range(20):
        try:
            stats = index()
            break
        except IndexBusy:  # another process is writing: wait for it, then catch up
            time.sleep(0.25 * (attempt + 1))
    else:
        log.warning("the index stayed busy; the next change or sweep will catch up")
        return
    if on_update is not None and (
        stats.files_indexed or stats.files_removed or stats.chunks_written
    ):
        on_update(stats)


def _tree_size(path: Path) -> int:
    """Bytes under ``path``; a file removed while we count (SQLite's WAL, Chroma's segments) counts 0."""
    total = 0
    for p in path.rglob("*") if path.exists() else ():
        with contextlib.suppress(FileNotFoundError):
            total += p.stat().st_size if p.is_file() else 0
    return total
