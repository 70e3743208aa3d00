"""The Assistant facade: the one object every front-end (CLI, TUI, editor, hook) talks to."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from localpilot.answer import AskEvent, Conversation
from localpilot.config import Settings, load_settings
from localpilot.errors import IndexBusy, IndexMissing, LocalpilotError, ModelNotFound
from localpilot.experts.embedder import Embedder
from localpilot.experts.llm import Generator
from localpilot.index.state import IndexState
from localpilot.index.walker import find_repo_root
from localpilot.retrieve import RetrievalConfig, Retriever
from localpilot.router import Router
from localpilot.store import Store
from localpilot.types import Hit, IndexStats

log = logging.getLogger(__name__)


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
        self._router: Router | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from localpilot.experts.embedder import SentenceTransformerEmbedder
            from localpilot.experts.registry import resolve_embedder

            spec = resolve_embedder(self.settings.embedder)
            self._embedder = SentenceTransformerEmbedder(str(spec.path), spec.name, self.settings.device,
                                                         self.settings.batch_size, self.settings.precision)
        return self._embedder

    @property
    def store(self) -> Store:
        if self._store is None:
            from localpilot.store import ChromaStore

            self._store = ChromaStore(self.index_dir / "chroma", self.embedder.name)
        return self._store

    @property
    def state(self) -> IndexState:
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
        if self._retriever is None:
            from localpilot.experts.registry import load_reranker

            config = RetrievalConfig(per_file=self.settings.per_file)
            reranker = load_reranker(self.settings.reranker, self.settings.device, self.settings.precision)
            self._retriever = Retriever(self.embedder, self.store, self.state, reranker, config)
        return self._retriever

    def search(self, query: str, k: int | None = None, explain: bool = False) -> list[Hit]:
        """Ranked hits for a natural-language or code query; [] for an empty one."""
        self._require_index()
        return self.retriever.search(query, k or self.settings.k, explain=explain)

    def _require_index(self) -> None:
        if "last_indexed" not in self.state.meta():
            raise IndexMissing(f"{self.root} has not been indexed yet: run `localpilot index` first")

    def generator(self, which: str = "small") -> Generator:
        """The ``small`` or ``big`` code LLM (in-process GGUF, or the configured OpenAI-compatible server)."""
        if which not in self._generators:
            self._generators[which] = self._load_generator(which)
        return self._generators[which]

    def _load_generator(self, which: str) -> Generator:
        name = self.settings.llm if which == "small" else self.settings.big_llm
        if self.settings.llm_url:
            from localpilot.experts.remote import OpenAIGenerator

            return OpenAIGenerator(self.settings.llm_url, name, n_ctx=self.settings.llm_ctx)
        from localpilot.experts.llm import LlamaCppGenerator
        from localpilot.experts.registry import resolve_llm

        if name.lower() in {"", "none", "off"}:
            raise ModelNotFound(f"no {which} model is configured")
        spec = resolve_llm(name, self.settings.models_dir)
        return LlamaCppGenerator(spec.path, spec.name, spec.family, n_ctx=self.settings.llm_ctx,
                                 gpu_layers=self.settings.gpu_layers, threads=self.settings.threads,
                                 cache_dir=self.settings.cache_dir)

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

    def loaded(self, which: str = "small") -> Generator | None:
        """The small or big model if it is loaded already (nothing is loaded by asking)."""
        return self._generators.get(which)

    def use_llm(self, name: str, which: str = "small") -> None:
        """Switch the small (or big) model for the next request; the old one is unloaded."""
        field_name = "llm" if which == "small" else "big_llm"
        self.settings = replace(self.settings, **{field_name: name})
        self._generators.pop(which, None)
        self._router = None

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = Router(self.embedder, big_available=self.has_big())
        return self._router

    def ask(self, question: str, conversation: Conversation | None = None, expert: str | None = None,
            cancel: threading.Event | None = None) -> Iterator[AskEvent]:
        """Answer ``question`` with the cheapest expert that can: events stream as the answer is made;
        the last event (``done``) carries the Answer. Follow-ups pass the same ``conversation``."""
        from localpilot.asking import answer_request

        self._require_index()
        return answer_request(self, question, conversation if conversation is not None else Conversation(),
                              expert, cancel)

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
            "embedder": self.embedder.name,
            "index_dir": str(self.index_dir),
            "index_bytes": _tree_size(self.index_dir),
            "last_commit": meta.get("last_commit"),
            "last_indexed": meta.get("last_indexed"),
        }

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        """One writer per index: a second indexer fails fast instead of corrupting the store."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with (self.index_dir / "write.lock").open("a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise IndexBusy(f"the index of {self.root} is being written by pid {holder}; "
                                "wait for it to finish or stop it") from exc
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


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
