"""Vector stores: one small interface, Chroma for real, an in-memory fake for logic tests.

A store holds chunk ids and their vectors only. Text, metadata, the lexical index and the embedding cache live in
SQLite (``localpilot.index.state``), the single source of truth: a lost or damaged store is rebuilt from it
without re-embedding. Nothing outside this module imports chromadb.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from localpilot.errors import StoreError

log = logging.getLogger(__name__)


class Store(ABC):
    """The vectors of one repo's chunks for one embedding model, keyed by chunk id."""

    @abstractmethod
    def upsert(self, ids: Sequence[str], embeddings: np.ndarray) -> None: ...

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def query(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest chunks as (id, cosine similarity), best first; text and metadata live in SQLite."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def all_ids(self) -> set[str]: ...


def collection_name(model_name: str, namespace: str = "") -> str:
    """Chroma-safe (3-63 chars, [a-z0-9_-]) and unique per embedding model (and per repo on a shared server)."""
    slug = (
        re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")[: 28 if namespace else 40]
        or "model"
    )
    if not namespace:
        return f"lp-{slug}-{hashlib.sha1(model_name.encode()).hexdigest()[:8]}"
    key = (namespace + "\0" + model_name).encode()
    return f"lp-{slug}-{hashlib.sha1(key).hexdigest()[:16]}"


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:  # chromadb raises many types; translate at the edge
        raise StoreError(f"the vector store failed to {action}: {exc}") from exc


class ChromaStore(Store):
    """Chroma, embedded (PersistentClient at ``path``) or a server (``url``, e.g. http://host:8000) with one
    collection per repo and model. Telemetry off; embeddings always supplied by localpilot."""

    def __init__(self, path: Path, model_name: str, url: str = "", namespace: str = "") -> None:
        try:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
            if url:
                parts = urlparse(url if "://" in url else f"http://{url}")
                self._client = chromadb.HttpClient(
                    host=parts.hostname or "localhost",
                    port=parts.port or 8000,
                    ssl=parts.scheme == "https",
                    settings=settings,
                )
            else:
                path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(path), settings=settings)
            self._name, self._model = (
                collection_name(model_name, namespace if url else ""),
                model_name,
            )
            self._writing = (
                threading.Lock()
            )  # held by upsert/delete; a search retried after a race takes it
            self._col = self._open()
            self._batch = int(self._client.get_max_batch_size())
        except Exception as exc:  # chromadb raises many types; translate at the edge
            _forget_clients()
            where = f"the Chroma server at {url}" if url else f"the index at {path}"
            fix = (
                "check that it runs (`chroma run`) and the URL"
                if url
                else "delete that directory to rebuild"
            )
            raise StoreError(f"cannot open {where}: {exc}. {fix.capitalize()}.") from exc

    def _open(self) -> Any:
        return self._client.get_or_create_collection(
            self._name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": self._model},
        )

    def _batches(self, n: int) -> Iterable[slice]:
        for start in range(0, n, self._batch):
            yield slice(start, start + self._batch)

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray) -> None:
        with _translated("write"), self._writing:
            for s in self._batches(len(ids)):
                self._col.upsert(ids=list(ids[s]), embeddings=embeddings[s])

    def delete(self, ids: Sequence[str]) -> None:
        with _translated("delete"), self._writing:
            for s in self._batches(len(ids)):
                self._col.delete(ids=list(ids[s]))

    def query(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        n = self.count()
        if n == 0 or k <= 0:
            return []
        with _translated("search"):
            res = self._query(embedding.reshape(1, -1), min(k, n))
        return [
            (i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)
        ]

    def _query(self, embedding: np.ndarray, k: int) -> Any:
        """Embedded Chroma can fail a search that races a delete ("Error finding id": the vector index returned
        a record the delete had just removed). Searches run unlocked; one that fails is retried once while
        this store's writes wait, so a race never reaches the user and a real failure still does."""
        try:
            return self._col.query(query_embeddings=embedding, n_results=k, include=["distances"])
        except Exception as exc:  # chromadb raises many types
            log.info("vector search failed (%s); retrying while writes wait", exc)
        with self._writing:
            n = int(self._col.count())
            if n == 0:
                return {"ids": [[]], "distances": [[]]}
            return self._col.query(
                query_embeddings=embedding, n_results=min(k, n), include=["distances"]
            )

    def count(self) -> int:
        with _translated("count"):
            return int(self._col.count())

    def all_ids(self) -> set[str]:
        out: set[str] = set()
        with _translated("read"):
            for offset in range(0, self.count(), self._batch):
                out.update(self._col.get(include=[], limit=self._batch, offset=offset)["ids"])
        return out


class MemoryStore(Store):
    """Fake for logic tests: brute-force cosine over a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, np.ndarray] = {}

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray) -> None:
        for i, e in zip(ids, embeddings, strict=True):
            self.rows[i] = np.asarray(e, dtype=np.float32)

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.rows.pop(i, None)

    def query(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        scored = sorted(
            ((float(np.dot(e, embedding)), i) for i, e in self.rows.items()), reverse=True
        )
        return [(i, s) for s, i in scored[:k]]

    def count(self) -> int:
        return len(self.rows)

    def all_ids(self) -> set[str]:
        return set(self.rows)


def _forget_clients() -> None:
    """Chroma caches one client per path in-process; a failed one must not be handed out again."""
    try:
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
    except Exception:  # best effort: an older or newer chromadb may lack it
        log.debug("could not clear chroma's client cache", exc_info=True)


_CHECK = """
import sys
import chromadb
from chromadb.config import Settings
client = chromadb.PersistentClient(sys.argv[1], settings=Settings(anonymized_telemetry=False))
for item in client.list_collections():
    col = client.get_collection(getattr(item, "name", item))
    got = col.get(limit=1, include=["embeddings"])
    if len(got["ids"]):
        col.query(query_embeddings=[list(got["embeddings"][0])], n_results=1)
"""


def check_embedded_store(path: Path, timeout: float = 300) -> str | None:
    """Why the embedded store at ``path`` is unusable, or None. It is opened and queried in a child process:
    a damaged HNSW file can crash the process that loads it, and that must not be the caller."""
    if not path.exists():
        return None
    try:
        res = subprocess.run(
            [sys.executable, "-c", _CHECK, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"opening it took longer than {timeout:.0f}s"
    if res.returncode == 0:
        return None
    if res.returncode < 0:
        return f"opening it crashed the process (signal {-res.returncode})"
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    return lines[-1][-300:] if lines else f"exit status {res.returncode}"


def move_aside(path: Path, reason: str) -> Path:
    """Keep a broken store for inspection (``<name>.broken-<time>``) so a fresh one can be built."""
    dest = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    _forget_clients()  # an in-process client cached for this path would keep using the old files
    path.rename(dest)
    log.warning(
        "the vector store at %s was unusable (%s); moved it to %s. The next index run rebuilds it "
        "(quickly: embeddings are cached)",
        path,
        reason,
        dest,
    )
    return dest
