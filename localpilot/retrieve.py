"""Retrieval: turn a query into ranked hits. (Vector channel; hybrid fusion and reranking build on it.)"""

from __future__ import annotations

from localpilot.experts.embedder import Embedder
from localpilot.store import Store, StoredHit
from localpilot.types import Hit


class Retriever:
    def __init__(self, embedder: Embedder, store: Store) -> None:
        self.embedder = embedder
        self.store = store

    def search(self, query: str, k: int = 10) -> list[Hit]:
        query = query.strip()
        if not query or k <= 0:
            return []
        vector = self.embedder.embed([query])[0]
        return [to_hit(h) for h in self.store.query(vector, k)]


def to_hit(h: StoredHit) -> Hit:
    m = h.metadata
    return Hit(path=str(m["path"]), start_line=int(m["start_line"]), end_line=int(m["end_line"]),
               symbol=str(m.get("symbol", "")), language=str(m.get("language", "")),
               kind=str(m.get("kind", "")), score=round(h.score, 4), snippet=h.document)
