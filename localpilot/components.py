"""The construction root: every heavy part of one repository's assistant is built here, once, on first use,
from the settings, and closed here. Front-ends never construct models, stores or the index themselves.

Parts are built under one lock (front-ends call from several threads) and never rebuilt behind a caller's
back, except by ``use_llm``, which drops the model it replaces and what was built on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from localpilot.complete import Completer, CompletionConfig
from localpilot.config import Settings
from localpilot.errors import IndexMissing, StoreError
from localpilot.experts import build
from localpilot.index.state import IndexState
from localpilot.retrieve import RetrievalConfig, Retriever
from localpilot.router import Router
from localpilot.store import Store
from localpilot.types import Hit

if TYPE_CHECKING:
    import numpy as np

    from localpilot.attribute import Attributor
    from localpilot.experts.embedder import Embedder
    from localpilot.experts.llm import Generator
    from localpilot.index.indexer import Indexer

log = logging.getLogger(__name__)


class Components:
    """The parts of one repository's assistant. Parts handed in (tests, embedding applications) are used as
    they are; everything else is built from ``settings`` when first asked for."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: Store | None = None,
        generators: dict[str, Generator] | None = None,
    ) -> None:
        self.root, self.settings = root, settings
        self.index_dir = settings.index_dir(root)
        self._embedder, self._store = embedder, store
        self._state: IndexState | None = None
        self._retriever: Retriever | None = None
        self._router: Router | None = None
        self._completer: Completer | None = None
        self._generators: dict[str, Generator] = dict(generators or {})
        self._given = frozenset(self._generators)
        self._lock = threading.RLock()
        self._embedder_loading = False

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = build.embedder(self.settings)
            return self._embedder

    @property
    def state(self) -> IndexState:
        with self._lock:
            if self._state is None:
                self._state = IndexState(self.index_dir / "state.sqlite", self.embedder.name)
            return self._state

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = self._open_store()
            return self._store

    def _open_store(self) -> Store:
        """The vector store. An embedded one that is damaged or from an incompatible version is moved aside
        and started empty: the next index run puts every vector back from SQLite's embedding cache."""
        from localpilot.store import ChromaStore, check_embedded_store, move_aside

        url, path = self.settings.chroma_url, self.index_dir / "chroma"
        if (
            not url
            and self.state.meta().get("run_in_progress")
            and (reason := check_embedded_store(path))
        ):
            move_aside(path, reason)  # a run was cut short: check it where a crash cannot hurt us
        try:
            return ChromaStore(path, self.embedder.name, url, namespace=self.index_dir.name)
        except StoreError as exc:
            if url or not path.exists():
                raise
            move_aside(path, str(exc.__cause__ or exc))
            return ChromaStore(path, self.embedder.name)

    def indexer(self) -> Indexer:
        from localpilot.index.indexer import Indexer

        return Indexer(self.root, self.settings, self.embedder, self.store, self.state)

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                config = RetrievalConfig(per_file=self.settings.per_file)
                reranker = build.reranker(self.settings)
                self._retriever = Retriever(self.embedder, self.store, self.state, reranker, config)
            return self._retriever

    def require_index(self) -> None:
        meta = (
            self.state.meta()
        )  # "searchable": a first run has read every file and is embedding them
        if "last_indexed" not in meta and "searchable" not in meta:
            raise IndexMissing(
                f"{self.root} has not been indexed yet: run `localpilot index` first"
            )

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

    def generator(self, which: str = "small") -> Generator:
        """The ``small``, ``big`` or ``fim`` (completion) code LLM."""
        with self._lock:
            if which not in self._generators:
                if (
                    which == "fim" and "small" in self._given
                ):  # a small model handed in completes too
                    return self._generators["small"]
                self._generators[which] = build.generator(self.settings, which)
            return self._generators[which]

    def loaded(self, which: str = "small") -> Generator | None:
        """The model if it is loaded already (nothing is loaded by asking)."""
        return self._generators.get(which)

    def has_big(self) -> bool:
        return "big" in self._generators or build.big_installed(self.settings)

    def use_llm(self, name: str, which: str = "small") -> None:
        """Switch the small (or big) model for the next request; the old one and what used it are dropped."""
        with self._lock:
            small = which == "small"
            self.settings = (
                replace(self.settings, llm=name) if small else replace(self.settings, big_llm=name)
            )
            self._generators.pop(which, None)
            # either switch can change the completion model ("auto" picks the big one when installed)
            self._generators.pop("fim", None)
            self._completer = None
            self._router = None

    @property
    def router(self) -> Router:
        with self._lock:
            if self._router is None:
                self._router = Router(self.embedder, big_available=self.has_big())
            return self._router

    @property
    def completer(self) -> Completer:
        with self._lock:
            if self._completer is None:
                self._completer = Completer(
                    lambda: self.generator("fim"),
                    self._context_search,
                    CompletionConfig(extra_chunks=self.settings.completion_context),
                    definitions=self._context_definitions,
                )
            return self._completer

    def _context_search(self, query: str, k: int) -> list[Hit]:
        """Completion context: the index without the reranker (a completion should not wait for it), and
        nothing while the embedder is still loading (nor for that)."""
        self.require_index()
        if not self.embedder.ready():
            self._load_embedder_soon()
            return []
        return self.retriever.search(query, k, use_reranker=False).hits

    def _context_definitions(self, names: Sequence[str]) -> list[Hit]:
        """Completion context: the chunks defining these names (the symbol table; no model needed)."""
        self.require_index()
        return self.retriever.definitions(names)

    def _load_embedder_soon(self) -> None:
        """Load the embedder in the background, once, for the completions after this one."""
        with self._lock:
            if self._embedder_loading:
                return
            self._embedder_loading = True
        log.debug("no completion context yet: the embedder is loading")
        embedder = self.embedder

        def load() -> None:
            try:
                embedder.embed_query("load")
            except Exception as exc:  # the next search reports it where a user sees it
                log.warning("could not load the embedder: %s", exc)

        threading.Thread(target=load, name="load-embedder", daemon=True).start()

    def close(self) -> None:
        """Close what this object opened: the index's SQLite connections and the models it loaded (models
        handed in belong to the caller). Used again, it reopens what it needs."""
        with self._lock:
            if self._state is not None:
                self._state.close()
                self._state = None
                self._retriever = None
            for which in [w for w in self._generators if w not in self._given]:
                self._generators.pop(which).close()
            self._completer = self._router = None
