"""The Assistant facade: the one object every front-end (CLI, TUI, editor, hook) talks to."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localpilot.answer import AnswerStream, Conversation
from localpilot.complete import Completer, Completion
from localpilot.config import Settings, load_settings
from localpilot.errors import IndexBusy, IndexMissing, LocalpilotError, ModelNotFound, StoreError
from localpilot.experts.embedder import Embedder
from localpilot.experts.llm import Generator
from localpilot.index.state import IndexState
from localpilot.index.walker import find_repo_root
from localpilot.retrieve import RetrievalConfig, Retriever
from localpilot.router import Router
from localpilot.store import Store
from localpilot.types import Hit, IndexStats

if TYPE_CHECKING:
    import numpy as np

    from localpilot.attribute import Attributor
    from localpilot.index.watcher import Watcher
    from localpilot.suggest.git import Snapshot
    from localpilot.suggest.report import Suggestion, TestReport

log = logging.getLogger(__name__)
FIM_CTX = 4096  # the completion instance's context: the whole window, 3 context chunks and the answer fit
BUFFER_WAIT_S = 10.0  # an editor's buffer waits this long for a running index run of this process


class Assistant:
    """localpilot for one git repository. Heavy parts (models, store) load on first use."""

    def __init__(self, repo: Path | str = ".", settings: Settings | None = None, *,
                 embedder: Embedder | None = None, store: Store | None = None,
                 generators: dict[str, Generator] | None = None) -> None:
        self.root = find_repo_root(Path(repo))
        self.settings = settings or load_settings(self.root)
        self.index_dir = self.settings.index_dir(self.root)
        self._embedder = embedder
        self._store = store
        self._state: IndexState | None = None
        self._retriever: Retriever | None = None
        self._generators: dict[str, Generator] = dict(generators or {})
        self._given = frozenset(self._generators)
        self._router: Router | None = None
        self._completer: Completer | None = None
        self._lazy = threading.RLock()  # front-ends call from several threads; build each part once

    @property
    def embedder(self) -> Embedder:
        with self._lazy:
            if self._embedder is None:
                from localpilot.experts.embedder import SentenceTransformerEmbedder
                from localpilot.experts.registry import resolve_embedder

                spec = resolve_embedder(self.settings.embedder)
                self._embedder = SentenceTransformerEmbedder(str(spec.path), spec.name, self.settings.device,
                                                             self.settings.batch_size, self.settings.precision)
            return self._embedder

    @property
    def store(self) -> Store:
        with self._lazy:
            if self._store is None:

                self._store = self._open_store()
            return self._store

    def _open_store(self) -> Store:
        """The vector store; an embedded one that is damaged or from an incompatible version is moved aside and
        rebuilt (the next index run re-adds every file, from cached embeddings)."""
        from localpilot.store import ChromaStore, check_embedded_store, move_aside

        url, path = self.settings.chroma_url, self.index_dir / "chroma"
        if not url and self.state.meta().get("run_in_progress") and (reason := check_embedded_store(path)):
            move_aside(path, reason)  # a run was cut short: check it where a crash cannot hurt us
        try:
            return ChromaStore(path, self.embedder.name, url, namespace=self.index_dir.name)
        except StoreError as exc:
            if url or not path.exists():
                raise
            move_aside(path, str(exc.__cause__ or exc))
            return ChromaStore(path, self.embedder.name)

    @property
    def state(self) -> IndexState:
        with self._lazy:
            if self._state is None:
                self._state = IndexState(self.index_dir / "state.sqlite", self.embedder.name)
            return self._state

    def index(self, on_progress: Any = None) -> IndexStats:
        """Bring the index up to date with the work tree (incremental, resumable)."""
        from localpilot.index.indexer import Indexer

        with self._write_lock():
            return Indexer(self.root, self.settings, self.embedder, self.store, self.state).run(on_progress)

    @property
    def retriever(self) -> Retriever:
        with self._lazy:
            if self._retriever is None:
                from localpilot.experts.registry import load_reranker

                config = RetrievalConfig(per_file=self.settings.per_file)
                reranker = load_reranker(self.settings.reranker, self.settings.device, self.settings.precision)
                self._retriever = Retriever(self.embedder, self.store, self.state, reranker, config)
            return self._retriever

    @property
    def attributor(self) -> Attributor:
        """Cites an answer's sentences with the loaded embedder and the index's stored vectors."""
        from localpilot.attribute import Attributor

        return Attributor(self.embedder.embed, self._stored_vectors)

    def _stored_vectors(self, hits: Sequence[Hit]) -> list[np.ndarray | None]:
        from localpilot.attribute import as_chunk

        keys = [as_chunk(h).content_hash for h in hits]
        found = self.state.cached_vectors(keys)
        return [found.get(k) for k in keys]

    def search(self, query: str, k: int | None = None, explain: bool = False) -> list[Hit]:
        """Ranked hits for a natural-language or code query; [] for an empty one."""
        self._require_index()
        return self.retriever.search(query, k or self.settings.k, explain=explain).hits

    def _require_index(self) -> None:
        if "last_indexed" not in self.state.meta():
            raise IndexMissing(f"{self.root} has not been indexed yet: run `localpilot index` first")

    def generator(self, which: str = "small") -> Generator:
        """The ``small`` or ``big`` code LLM (in-process GGUF, or the configured OpenAI-compatible server)."""
        with self._lazy:
            if which not in self._generators:
                self._generators[which] = self._load_generator(which)
            return self._generators[which]

    def _load_generator(self, which: str) -> Generator:
        """``small``/``big`` answer chat; ``fim`` is the small model loaded a second time for inline completion,
        with its own (smaller) KV cache, so a chat answer never evicts the completion state."""
        if which == "fim" and "small" in self._given:
            return self._generators["small"]  # a small model handed in (tests, embedders of localpilot) completes too
        name = self.settings.big_llm if which == "big" else self.settings.llm
        n_ctx = min(self.settings.llm_ctx, FIM_CTX) if which == "fim" else self.settings.llm_ctx
        if self.settings.llm_url:
            from localpilot.experts.remote import OpenAIGenerator

            return OpenAIGenerator(self.settings.llm_url, name, n_ctx=n_ctx)
        from localpilot.experts.llm import LlamaCppGenerator
        from localpilot.experts.registry import resolve_llm

        if name.lower() in {"", "none", "off"}:
            raise ModelNotFound(f"no {which} model is configured")
        spec = resolve_llm(name, self.settings.models_dir)
        return LlamaCppGenerator(spec.path, spec.name, spec.family, n_ctx=n_ctx,
                                 gpu_layers=self.settings.gpu_layers, threads=self.settings.threads,
                                 cache_dir=self.settings.cache_dir, background=which == "fim")

    def has_big(self) -> bool:
        """A bigger model is configured, installed and different from the small one."""
        if "big" in self._generators:
            return True
        name = self.settings.big_llm
        if name.lower() in {"", "none", "off"} or name == self.settings.llm:
            return False
        if self.settings.llm_url:
            return True
        from localpilot.experts.registry import resolve_llm

        try:
            return resolve_llm(name, self.settings.models_dir).installed
        except LocalpilotError:
            return False

    @property
    def completer(self) -> Completer:
        with self._lazy:
            if self._completer is None:
                self._completer = Completer(lambda: self.generator("fim"), self._context_search)
            return self._completer

    def complete(self, path: str, prefix: str, suffix: str, cancel: threading.Event | None = None) -> Completion:
        """Inline completion at the cursor of ``path`` (fill in the middle, other files as context)."""
        from localpilot.index.languages import detect_language

        return self.completer.complete(path, detect_language(path), prefix, suffix, cancel)

    def prewarm(self, path: str, prefix: str, suffix: str) -> int:
        """Read the prompt a completion at this cursor would use into the completion model's cache (editors
        call it when a file opens or typing pauses); returns the prompt tokens it evaluated."""
        from localpilot.index.languages import detect_language

        return self.completer.prewarm(path, detect_language(path), prefix, suffix)

    def note_buffer(self, path: str, text: str, line: int) -> None:
        """An editor opened or edited ``path`` near ``line``: offered as context when completing other files."""
        self.completer.note_buffer(path, text, line)

    def _context_search(self, query: str, k: int) -> list[Hit]:
        """Completion context: the index without the reranker (it runs once per window, not per keystroke,
        but a completion should not wait 200 ms for it)."""
        self._require_index()
        return self.retriever.search(query, k, use_reranker=False).hits

    def snippet(self, path: str, start: int = 1, end: int = 0, max_lines: int = 400) -> dict[str, Any]:
        """Lines ``start``..``end`` (1-based, inclusive; ``end`` 0: start+100) of a file of the repository as
        read from disk now, secrets cut out. Raises LocalpilotError for a path outside the repository."""
        from localpilot.index.secrets import redact
        from localpilot.paths import inside

        full = inside(self.root, path)
        if full is None:
            raise LocalpilotError(f"{path!r} is outside the repository")
        if not full.is_file():
            raise LocalpilotError(f"{path!r} is not a file in the repository")
        rel = full.relative_to(self.root.resolve()).as_posix()
        lines = redact(full.read_text(encoding="utf-8", errors="replace"), rel)[0].splitlines()
        start = max(1, int(start))
        end = min(len(lines), int(end) if end and int(end) >= start else start + 100, start + max_lines)
        return {"path": rel, "start_line": start, "end_line": end, "text": "\n".join(lines[start - 1 : end])}

    def symbol_info(self, name: str, limit: int = 8) -> dict[str, list[dict[str, Any]]]:
        """Where ``name`` is defined and used, from the index alone (no model)."""
        self._require_index()
        return self.state.symbol_info(name, limit)

    def index_buffer(self, path: str, text: str) -> bool:
        """Index an editor's unsaved text for ``path`` now (searchable in this session; the next full index
        run re-reads the file from disk). False when another process is writing the index."""
        from localpilot.index.indexer import Indexer

        try:
            with self._write_lock(wait=BUFFER_WAIT_S):
                Indexer(self.root, self.settings, self.embedder, self.store, self.state).index_text(path, text)
        except IndexBusy:
            return False
        return True

    def watch(self, on_update: Any = None, *, debounce: float | None = None, sweep: float | None = None) -> Watcher:
        """Start keeping the index fresh from file-system events (and a periodic sweep); returns the running
        Watcher (``stop()`` it). ``on_update(stats)`` is called after each update that changed something."""
        from localpilot.index.watcher import Watcher

        def update(paths: set[str]) -> None:
            for attempt in range(20):
                try:
                    stats = self.index()
                    break
                except IndexBusy:  # another process is writing: wait for it, then catch up
                    time.sleep(0.25 * (attempt + 1))
            else:
                log.warning("the index stayed busy; the next change or sweep will catch up")
                return
            if on_update is not None and (stats.files_indexed or stats.files_removed or stats.chunks_written):
                on_update(stats)

        kwargs = {k: v for k, v in (("debounce", debounce), ("sweep", sweep)) if v is not None}
        watcher = Watcher(self.root, update, ignore_dirs=(".git",), **kwargs)
        watcher.start()
        return watcher

    def loaded(self, which: str = "small") -> Generator | None:
        """The small or big model if it is loaded already (nothing is loaded by asking)."""
        return self._generators.get(which)

    def use_llm(self, name: str, which: str = "small") -> None:
        """Switch the small (or big) model for the next request; the old one is unloaded."""
        with self._lazy:
            self.settings = replace(self.settings, llm=name) if which == "small" else \
                replace(self.settings, big_llm=name)
            self._generators.pop(which, None)
            if which == "small":
                self._generators.pop("fim", None)
                self._completer = None
            self._router = None

    @property
    def router(self) -> Router:
        with self._lazy:
            if self._router is None:
                self._router = Router(self.embedder, big_available=self.has_big())
            return self._router

    def ask(self, question: str, conversation: Conversation | None = None, expert: str | None = None,
            cancel: threading.Event | None = None) -> AnswerStream:
        """Answer ``question`` with the cheapest expert that can: iterate the stream for events as the answer
        is made (the last, ``done``, carries the Answer), or call ``.result()``. Follow-ups pass the same
        ``conversation``."""
        from localpilot.asking import answer_request

        self._require_index()
        return AnswerStream(answer_request(self, question, conversation if conversation is not None
                                           else Conversation(), expert, cancel))

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

    def suggest_tests(self, snapshot: Snapshot | None = None, *, path: str | None = None,
                      diff: str | None = None) -> TestReport | dict[str, Any]:
        """The functions and classes ``snapshot``'s change touches, the tests that already name them (found
        through the index when there is one, else ``git grep``), and a named test with cases for the rest, as a
        TestReport. No model is loaded: this is what the pre-commit hook prints within its time budget.

        Tools pass ``path`` (every function/class of a file or directory) or ``diff`` (a unified diff against the
        work tree, applied or not; nothing is written) instead, and get the report as a dict."""
        from localpilot.suggest.report import build_report

        if snapshot is not None:
            return build_report(snapshot, self.indexed_state())
        from localpilot.suggest.git import Git, WorktreeSnapshot
        from localpilot.suggest.patch import DiffSnapshot

        git = Git(self.root)
        if diff:
            snapshot = DiffSnapshot(git, diff)
        elif path:
            full = (self.root / path).resolve()
            if not full.exists() or not full.is_relative_to(self.root):
                raise LocalpilotError(f"{path} is not a file or directory of {self.root}")
            snapshot = WorktreeSnapshot(git, paths=[full.relative_to(self.root).as_posix()])
        else:
            raise LocalpilotError("give a change: a snapshot, a path or a diff")
        return build_report(snapshot, self.indexed_state()).to_dict()

    def write_test(self, suggestion: Suggestion, cancel: threading.Event | None = None,
                   max_tokens: int = 320) -> Iterator[str]:
        """Stream a test skeleton for an untested ``suggestion`` from the small code LLM, in the style of the
        repository's own test file chosen by ``suggest_tests``."""
        from localpilot.suggest.skeleton import messages

        prompt = messages(language=suggestion.language, example_path=suggestion.example_path,
                          example=suggestion.example, code_path=suggestion.path, start=suggestion.start,
                          end=suggestion.end, code=suggestion.code, test=suggestion.test_name,
                          target=suggestion.target, cases=suggestion.cases, symbol=suggestion.symbol)
        for token in self.generator("small").stream(prompt, max_tokens, cancel):
            yield token.text

    def status(self) -> dict[str, Any]:
        """What is indexed, what was skipped and why, where the index lives."""
        files = self.state.files()
        meta = self.state.meta()
        indexed = [r for r in files.values() if r.status == "indexed"]
        languages: dict[str, int] = {}
        for r in indexed:
            languages[r.language] = languages.get(r.language, 0) + 1
        return {
            "repo": str(self.root),
            "files": len(indexed),
            "chunks": sum(r.chunks for r in indexed),
            "languages": dict(sorted(languages.items(), key=lambda kv: -kv[1])),
            "skipped": {r.path: r.reason for r in files.values() if r.status == "skipped"},
            "redactions": {r.path: r.redactions for r in indexed if r.redactions},
            "embedder": self.embedder.name,
            "index_dir": str(self.index_dir),
            "index_bytes": _tree_size(self.index_dir),
            "last_commit": meta.get("last_commit"),
            "last_indexed": meta.get("last_indexed"),
        }

    def close(self) -> None:
        with self._lazy:
            if self._state is not None:
                self._state.close()
                self._state = None
                self._retriever = None

    def _write_lock(self, wait: float | None = None) -> AbstractContextManager[None]:
        from localpilot.index.writelock import write_lock

        return write_lock(self.index_dir, self.root, wait)


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def diagnose(settings: Settings, measure: bool = True) -> dict[str, Any]:
    """What this machine runs: versions, backend, GPU offload, installed models, measured speed."""
    import platform

    from localpilot import __version__
    from localpilot.experts.llm import llama_backend_info
    from localpilot.experts.registry import list_llms

    report: dict[str, Any] = {"localpilot": __version__, "python": platform.python_version(),
                              "platform": platform.platform(), "llama_cpp": llama_backend_info(),
                              "models": [{"name": s.name, "role": s.role, "installed": s.installed,
                                          "path": str(s.path)} for s in list_llms(settings.models_dir)]}
    for which, name in (("small", settings.llm), ("big", settings.big_llm)):
        report[which] = _measure(settings, which, name) if measure else {"name": name}
    small = report["small"]
    if small.get("status") == "ok":  # inline completion loads the small model once more, with its own KV cache
        per_ctx = (small["memory_bytes"] - Path(small["path"]).stat().st_size) / max(small["n_ctx"], 1)
        report["completion"] = {"name": small["name"], "n_ctx": FIM_CTX, "instance": "separate",
                                "memory_bytes": int(Path(small["path"]).stat().st_size + per_ctx * FIM_CTX)}
    return report


def _measure(settings: Settings, which: str, name: str) -> dict[str, Any]:
    from localpilot.experts.llm import LlamaCppGenerator
    from localpilot.experts.registry import resolve_llm

    if name.lower() in {"", "none", "off"}:
        return {"name": name, "status": "not configured"}
    try:
        spec = resolve_llm(name, settings.models_dir)
        gen = LlamaCppGenerator(spec.path, spec.name, spec.family, n_ctx=settings.llm_ctx,
                                gpu_layers=settings.gpu_layers, threads=settings.threads,
                                cache_dir=settings.cache_dir)
        messages = [{"role": "user", "content": "Write a Python function that returns the n-th Fibonacci "
                                                "number, with a docstring."}]
        text = "".join(t.text for t in gen.stream(messages, max_tokens=48))
    except LocalpilotError as exc:
        return {"name": name, "status": f"unavailable: {exc}"}
    return {**gen.info(), "status": "ok", "prompt_tokens_per_s": round(gen.last.prompt_tokens_per_s, 1),
            "gen_tokens_per_s": round(gen.last.gen_tokens_per_s, 1), "sample": text[:80]}
