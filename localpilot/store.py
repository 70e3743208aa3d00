"""Vector stores: one small interface, Chroma for real, an in-memory fake for logic tests.

Nothing outside this module imports chromadb.
"""

from __future__ import annotations

import hashlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from localpilot.errors import StoreError

log = logging.getLogger(__name__)

Metadata = dict[str, str | int | float | bool]


class Store(ABC):
    """A collection of embedded chunks for one repo and one embedding model."""

    @abstractmethod
    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[Metadata]) -> None: ...

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def ids_by_path(self, paths: Sequence[str]) -> dict[str, set[str]]:
        """Stored chunk ids for each of ``paths`` (paths with none are absent)."""

    @abstractmethod
    def query(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest chunks as (id, cosine similarity), best first; text and metadata live in SQLite."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def all_ids(self) -> set[str]: ...



def collection_name(model_name: str) -> str:
    """Chroma-safe (3-63 chars, [a-z0-9_-]) and unique per embedding model."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")[:40] or "model"
    digest = hashlib.sha1(model_name.encode()).hexdigest()[:8]
    return f"lp-{slug}-{digest}"


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:  # chromadb raises many types; translate at the edge
        raise StoreError(f"the vector store failed to {action}: {exc}") from exc


class ChromaStore(Store):
    """Chroma PersistentClient at ``path`` (telemetry off; embeddings always supplied by localpilot)."""

    def __init__(self, path: Path, model_name: str) -> None:
        try:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
            )
            self._name, self._model = collection_name(model_name), model_name
            self._col = self._open()
            self._batch = int(self._client.get_max_batch_size())
        except Exception as exc:  # chromadb raises many types; translate at the edge
            raise StoreError(f"cannot open the index at {path}: {exc}. Delete that directory to rebuild.") from exc

    def _open(self) -> Any:
        return self._client.get_or_create_collection(
            self._name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": self._model})

    def _batches(self, n: int) -> Iterable[slice]:
        for start in range(0, n, self._batch):
            yield slice(start, start + self._batch)

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[Metadata]) -> None:
        with _translated("write"):
            for s in self._batches(len(ids)):
                self._col.upsert(ids=list(ids[s]), embeddings=embeddings[s], documents=list(documents[s]),
                                 metadatas=list(metadatas[s]))

    def delete(self, ids: Sequence[str]) -> None:
        with _translated("delete"):
            for s in self._batches(len(ids)):
                self._col.delete(ids=list(ids[s]))

    def ids_by_path(self, paths: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        with _translated("read"):
            for s in self._batches(len(paths)):
                got = self._col.get(where={"path": {"$in": list(paths[s])}}, include=["metadatas"])
                for id_, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
                    out.setdefault(str(meta["path"]), set()).add(id_)
        return out

    def query(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        n = self.count()
        if n == 0 or k <= 0:
            return []
        with _translated("search"):
            res = self._col.query(query_embeddings=embedding.reshape(1, -1), n_results=min(k, n),
                                  include=["distances"])
        return [(i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]

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
        self.rows: dict[str, tuple[np.ndarray, str, Metadata]] = {}

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[Metadata]) -> None:
        for i, e, d, m in zip(ids, embeddings, documents, metadatas, strict=True):
            self.rows[i] = (np.asarray(e, dtype=np.float32), d, dict(m))

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.rows.pop(i, None)

    def ids_by_path(self, paths: Sequence[str]) -> dict[str, set[str]]:
        wanted = set(paths)
        out: dict[str, set[str]] = {}
        for i, (_, _, m) in self.rows.items():
            if m["path"] in wanted:
                out.setdefault(str(m["path"]), set()).add(i)
        return out

    def query(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        scored = sorted(((float(np.dot(e, embedding)), i) for i, (e, _, _) in self.rows.items()), reverse=True)
        return [(i, s) for s, i in scored[:k]]

    def count(self) -> int:
        return len(self.rows)

    def all_ids(self) -> set[str]:
        return set(self.rows)
