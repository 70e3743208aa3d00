"""Index bookkeeping in SQLite: which files are done (manifest), cached embeddings, run metadata.

A file counts as indexed only once its manifest row is committed, after its chunks are in the store, so
an interrupted run resumes where it stopped. Rows are keyed by embedding model: switching models never
mixes manifests or vectors.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    model TEXT NOT NULL, path TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, sha256 TEXT,
    status TEXT NOT NULL, reason TEXT, language TEXT, chunks INTEGER DEFAULT 0,
    PRIMARY KEY (model, path));
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, hash));
CREATE TABLE IF NOT EXISTS meta (model TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
    PRIMARY KEY (model, key));
"""


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: str  # "indexed" | "skipped"
    reason: str = ""
    language: str = ""
    chunks: int = 0


class IndexState:
    """The SQLite side of one repo's index, for one embedding model."""

    def __init__(self, path: Path, model: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model = model
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def files(self) -> dict[str, FileRecord]:
        rows = self.db.execute(
            "SELECT path, size, mtime_ns, sha256, status, reason, language, chunks FROM files WHERE model=?",
            (self.model,))
        return {r[0]: FileRecord(*r) for r in rows}

    def commit_files(self, records: Iterable[FileRecord], removed: Sequence[str] = ()) -> None:
        """Record finished files (and forget removed ones) in one transaction."""
        with self._tx():
            self.db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?)",
                [(self.model, r.path, r.size, r.mtime_ns, r.sha256, r.status, r.reason, r.language, r.chunks)
                 for r in records])
            self.db.executemany("DELETE FROM files WHERE model=? AND path=?",
                                [(self.model, p) for p in removed])

    def cached_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            part = list(hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT hash, vector FROM embeddings WHERE model=? AND hash IN ({marks})", (self.model, *part))
            out.update({h: np.frombuffer(v, dtype=np.float32) for h, v in rows})
        return out

    def cache_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?)",
                                [(self.model, h, np.asarray(v, np.float32).tobytes()) for h, v in vectors.items()])

    def set_meta(self, **values: object) -> None:
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?,?,?)",
                                [(self.model, k, json.dumps(v)) for k, v in values.items()])

    def meta(self) -> dict[str, object]:
        rows = self.db.execute("SELECT key, value FROM meta WHERE model=?", (self.model,))
        return {k: json.loads(v) for k, v in rows}

    def _tx(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
