"""The Assistant facade: the one object every front-end (CLI, TUI, editor, hook) talks to."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localpilot.config import Settings, load_settings
from localpilot.errors import IndexBusy, IndexMissing
from localpilot.experts.embedder import Embedder
from localpilot.index.state import IndexState
from localpilot.index.walker import find_repo_root
from localpilot.retrieve import RetrievalConfig, Retriever
from localpilot.store import Store
from localpilot.types import Hit, IndexStats

log = logging.getLogger(__name__)


class Assistant:
    """localpilot for one git repository. Heavy parts (models, store) load on first use."""

    def __init__(self, repo: Path | str = ".", settings: Settings | None = None, *,
                 embedder: Embedder | None = None, store: Store | None = None) -> None:
        self.root = find_repo_root(Path(repo))
        self.settings = settings or load_settings(self.root)
        self.index_dir = self.settings.index_dir(self.root)
        self._embedder = embedder
        self._store = store
        self._state: IndexState | None = None
        self._retriever: Retriever | None = None

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
        if "last_indexed" not in self.state.meta():
            raise IndexMissing(f"{self.root} has not been indexed yet: run `localpilot index` first")
        return self.retriever.search(query, k or self.settings.k, explain=explain)

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
