"""Index bookkeeping in SQLite: the manifest of finished files, their chunks with a full-text (FTS5) index,
cached embeddings, and run metadata.

A file counts as indexed only once its manifest row is committed, after its chunks are in the store, so
an interrupted run resumes where it stopped. Rows are keyed by embedding model: switching models never
mixes manifests or vectors.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localpilot.errors import StoreError
from localpilot.text import code_terms
from localpilot.types import Chunk

#: Bump when the tables' meaning changes: manifests and chunks are dropped (embeddings kept) and rebuilt.
SCHEMA_VERSION = 4  # 4: chunks waiting for vectors (pending), searchable by keyword meanwhile

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    model TEXT NOT NULL, path TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, sha256 TEXT,
    status TEXT NOT NULL, reason TEXT, language TEXT, chunks INTEGER DEFAULT 0, redactions INTEGER DEFAULT 0,
    PRIMARY KEY (model, path));
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, hash));
CREATE TABLE IF NOT EXISTS meta (model TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
    PRIMARY KEY (model, key));
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, model TEXT NOT NULL, chunk_id TEXT NOT NULL, path TEXT NOT NULL,
    start_line INTEGER, end_line INTEGER, language TEXT, symbol TEXT, kind TEXT, text TEXT,
    UNIQUE (model, chunk_id));
CREATE INDEX IF NOT EXISTS chunks_by_path ON chunks (model, path);
CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5(path, symbol, body, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS pending (
    model TEXT NOT NULL, chunk_id TEXT NOT NULL, priority INTEGER NOT NULL, PRIMARY KEY (model, chunk_id));
CREATE INDEX IF NOT EXISTS pending_by_priority ON pending (model, priority);
"""
#: bm25 column weights for (path, symbol, body): names say more than bodies.
LEXICAL_WEIGHTS = (2.0, 4.0, 1.0)


@dataclass(frozen=True)
class ChunkRow:
    chunk_id: str
    path: str
    start_line: int
    end_line: int
    language: str
    symbol: str
    kind: str
    text: str

    def chunk(self) -> Chunk:
        """The chunk this row records (its content hash keys the embedding cache)."""
        return Chunk(
            self.path,
            self.start_line,
            self.end_line,
            self.language,
            self.symbol,
            self.kind,
            self.text,
        )


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
    redactions: int = 0  # secret-looking strings replaced before the text was stored


@dataclass(frozen=True)
class SymbolRows:
    """Every chunk's (chunk_id, symbol, path) as of one index generation, read in one transaction."""

    generation: int
    rows: tuple[tuple[str, str, str], ...]


class IndexState:
    """The SQLite side of one repo's index, for one embedding model.

    Each thread gets its own connection (WAL: readers never block the writer or each other), so no connection
    is ever used by two threads at once and a writer's open transaction is never seen by a reader. Writes come
    from one thread at a time: callers hold the index's write lock (``localpilot.index.writelock``).
    """

    def __init__(self, path: Path, model: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model, self.path = model, path
        self._local = threading.local()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._open_lock = threading.Lock()
        self._closed = False
        self._migrate()

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, closed when the thread ends or at ``close``)."""
        holder: _Connection | None = getattr(self._local, "conn", None)
        if holder is None:
            if self._closed:
                raise StoreError(f"the index state {self.path} is closed")
            holder = self._local.conn = _Connection(self.path)
            with self._open_lock:
                self._open.add(holder)
        return holder.db

    def _migrate(self) -> None:
        """Older formats are rebuilt (the embedding cache survives); a newer one is refused, so two localpilot
        versions sharing a machine (an old hook, a new TUI) never wipe each other's index back and forth."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self.db.close()
            raise StoreError(
                f"the index at {self.path.parent} was written by a newer localpilot (format "
                f"{version}, this one reads {SCHEMA_VERSION}): upgrade localpilot, or remove that "
                "directory to rebuild it"
            )
        if version != SCHEMA_VERSION:
            self.db.executescript(
                "DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS chunks; "
                "DROP TABLE IF EXISTS lexical; DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS pending;"
            )
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close every thread's connection; later use raises StoreError."""
        self._closed = True
        with self._open_lock:
            holders, self._open = list(self._open), weakref.WeakSet()
        for holder in holders:
            holder.close()

    def files(self) -> dict[str, FileRecord]:
        rows = self.db.execute(
            "SELECT path, size, mtime_ns, sha256, status, reason, language, chunks, redactions FROM files "
            "WHERE model=?",
            (self.model,),
        )
        return {r[0]: FileRecord(*r) for r in rows}

    def summary(self) -> dict[str, Any]:
        """Files and chunks indexed, languages by file count, what was skipped and why, redactions per file."""
        files = self.files().values()
        indexed = [r for r in files if r.status == "indexed"]
        languages: dict[str, int] = {}
        for r in indexed:
            languages[r.language] = languages.get(r.language, 0) + 1
        return {
            "files": len(indexed),
            "chunks": sum(r.chunks for r in indexed),
            "languages": dict(sorted(languages.items(), key=lambda kv: -kv[1])),
            "skipped": {r.path: r.reason for r in files if r.status == "skipped"},
            "redactions": {r.path: r.redactions for r in indexed if r.redactions},
            "chunks_waiting_for_vectors": self.pending_count(),
        }

    def counts(self) -> tuple[int, int]:
        """(files indexed, chunks) for status lines."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM files WHERE model=? AND "
            "status='indexed'",
            (self.model,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def commit_files(
        self,
        records: Iterable[FileRecord],
        chunks: dict[str, list[Chunk]] | None = None,
        removed: Sequence[str] = (),
        pending: Mapping[str, int] | None = None,
    ) -> None:
        """In one transaction: record finished files, replace the chunks of the files in ``chunks``, and
        forget ``removed`` files with their chunks. ``pending`` (chunk id -> priority, lower first) are the
        new chunks whose vectors are not in the store yet: searchable by keyword and symbol until embedded."""
        chunks = chunks or {}
        with self._tx():
            self.db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        self.model,
                        r.path,
                        r.size,
                        r.mtime_ns,
                        r.sha256,
                        r.status,
                        r.reason,
                        r.language,
                        r.chunks,
                        r.redactions,
                    )
                    for r in records
                ],
            )
            self._drop_chunks([*chunks, *removed])
            self.db.executemany(
                "DELETE FROM files WHERE model=? AND path=?", [(self.model, p) for p in removed]
            )
            for file_chunks in chunks.values():
                for c in file_chunks:
                    self._add_chunk(c)
            self._add_pending(pending or {})
            self._bump_generation()

    def _add_pending(self, pending: Mapping[str, int]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO pending VALUES (?,?,?)",
            [(self.model, cid, priority) for cid, priority in pending.items()],
        )

    def wait_for_vectors(self, pending: Mapping[str, int]) -> None:
        """Mark recorded chunks as waiting for their vectors (the store lost them and no cache has them)."""
        with self._tx():
            self._add_pending(pending)

    def prioritize(self, paths: Sequence[str], priority: int) -> int:
        """Move the waiting chunks of ``paths`` to ``priority`` (an editor opened them: embed them next, even
        while another process runs the index); returns how many chunks moved."""
        if not paths:
            return 0
        marks = ",".join("?" * len(paths))
        with self._tx():
            cur = self.db.execute(
                f"UPDATE pending SET priority=? WHERE model=? AND priority>? AND chunk_id IN "
                f"(SELECT chunk_id FROM chunks WHERE model=? AND path IN ({marks}))",
                (priority, self.model, priority, self.model, *paths),
            )
        return cur.rowcount

    def pending(self, limit: int) -> list[str]:
        """Chunk ids waiting for vectors, most wanted first."""
        rows = self.db.execute(
            "SELECT chunk_id FROM pending WHERE model=? ORDER BY priority, rowid LIMIT ?",
            (self.model, limit),
        )
        return [cid for (cid,) in rows]

    def pending_among(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` wait for their vectors."""
        wanted, out = list(ids), set[str]()
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            out.update(
                c
                for (c,) in self.db.execute(
                    f"SELECT chunk_id FROM pending WHERE model=? AND chunk_id IN ({marks})",
                    (self.model, *part),
                )
            )
        return out

    def pending_ids(self) -> set[str]:
        return {
            c
            for (c,) in self.db.execute("SELECT chunk_id FROM pending WHERE model=?", (self.model,))
        }

    def pending_count(self) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM pending WHERE model=?", (self.model,)
        ).fetchone()
        return int(row[0])

    def vectors_stored(self, ids: Sequence[str]) -> None:
        """These chunks' vectors are in the store now."""
        with self._tx():
            self.db.executemany(
                "DELETE FROM pending WHERE model=? AND chunk_id=?", [(self.model, c) for c in ids]
            )

    def _bump_generation(self) -> None:
        self.db.execute(
            "INSERT INTO meta VALUES (?, 'generation', '1') ON CONFLICT (model, key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (self.model,),
        )

    def generation(self) -> int:
        """Grows with every committed change to the chunks: the key of caches derived from them."""
        row = self.db.execute(
            "SELECT value FROM meta WHERE model=? AND key='generation'", (self.model,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _drop_chunks(self, paths: Sequence[str]) -> None:
        for start in range(0, len(paths), 500):
            part = list(paths[start : start + 500])
            marks = ",".join("?" * len(part))
            found = list(
                self.db.execute(
                    f"SELECT rowid, chunk_id FROM chunks WHERE model=? AND path IN ({marks})",
                    (self.model, *part),
                )
            )
            rowids = [(r,) for r, _ in found]
            self.db.executemany(
                "DELETE FROM pending WHERE model=? AND chunk_id=?",
                [(self.model, c) for _, c in found],
            )
            self.db.executemany("DELETE FROM lexical WHERE rowid=?", rowids)
            self.db.executemany("DELETE FROM chunks WHERE rowid=?", rowids)

    def _add_chunk(self, c: Chunk) -> None:
        cur = self.db.execute(
            "INSERT INTO chunks (model, chunk_id, path, start_line, end_line, language, symbol, kind, text) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (
                self.model,
                c.chunk_id,
                c.path,
                c.start_line,
                c.end_line,
                c.language,
                c.symbol,
                c.kind,
                c.text,
            ),
        )
        self.db.execute(
            "INSERT INTO lexical (rowid, path, symbol, body) VALUES (?,?,?,?)",
            (
                cur.lastrowid,
                " ".join(code_terms(c.path)),
                " ".join(code_terms(c.symbol)),
                " ".join(code_terms(c.text)),
            ),
        )

    def lexical(self, terms: Sequence[str], n: int) -> list[tuple[str, float]]:
        """Best ``n`` chunks for any of ``terms`` by BM25 (FTS5), as (chunk_id, score), higher is better."""
        safe = _fts_terms(terms)
        if not safe or n <= 0:
            return []
        match = " OR ".join(f'"{t}"' for t in safe)
        rows = self.db.execute(
            "SELECT c.chunk_id, bm25(lexical, ?, ?, ?) AS s FROM lexical JOIN chunks c ON c.rowid = lexical.rowid "
            "WHERE lexical MATCH ? AND c.model = ? ORDER BY s LIMIT ?",
            (*LEXICAL_WEIGHTS, match, self.model, n),
        )
        return [(cid, -float(score)) for cid, score in rows]

    def term_coverage(self, terms: Sequence[str]) -> float:
        """Share of ``terms`` found in at least one indexed chunk (1.0 for no terms): a question about things
        the repository never mentions ("SMS reminders" in a date library) scores low."""
        safe = _fts_terms(terms)
        if not safe:
            return 1.0
        found = sum(
            self.db.execute(
                "SELECT 1 FROM lexical WHERE lexical MATCH ? LIMIT 1", (f'"{t}"',)
            ).fetchone()
            is not None
            for t in safe
        )
        return found / len(safe)

    def symbols(self) -> SymbolRows:
        """(chunk_id, symbol, path) of every chunk with the generation they belong to, for the symbol channel."""
        db = self.db
        db.execute(
            "BEGIN"
        )  # one read transaction: the rows and their generation come from one snapshot
        try:
            generation = self.generation()
            rows = tuple(
                db.execute("SELECT chunk_id, symbol, path FROM chunks WHERE model=?", (self.model,))
            )
        finally:
            db.execute("COMMIT")
        return SymbolRows(generation, rows)

    def symbol_info(self, name: str, limit: int = 8) -> dict[str, list[dict[str, Any]]]:
        """Chunks defining ``name`` (its last dotted part) and chunks whose text mentions it."""
        leaf = name.rsplit(".", 1)[-1]
        defs = [
            {"path": r[0], "line": r[1], "symbol": r[2], "kind": r[3]}
            for r in self.db.execute(
                "SELECT path, start_line, symbol, kind FROM chunks WHERE model=? AND (symbol=? OR symbol LIKE ?) "
                "ORDER BY path, start_line LIMIT ?",
                (self.model, name, f"%.{leaf}", limit),
            )
        ]
        where = {(d["path"], d["line"]) for d in defs}
        uses: list[dict[str, Any]] = []
        ids = [cid for cid, _ in self.lexical([leaf], limit * 4)]
        for row in self.chunk_rows(ids).values():
            for offset, line in enumerate(row.text.splitlines()):
                if (
                    re.search(rf"\b{re.escape(leaf)}\b", line)
                    and (row.path, row.start_line + offset) not in where
                ):
                    uses.append(
                        {
                            "path": row.path,
                            "line": row.start_line + offset,
                            "text": line.strip()[:120],
                        }
                    )
                    break
        return {
            "definitions": defs,
            "usages": sorted(uses, key=lambda u: (u["path"], u["line"]))[:limit],
        }

    def chunk_rows(self, ids: Sequence[str]) -> dict[str, ChunkRow]:
        out: dict[str, ChunkRow] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                "SELECT chunk_id, path, start_line, end_line, language, symbol, kind, text FROM chunks "
                f"WHERE model=? AND chunk_id IN ({marks})",
                (self.model, *part),
            )
            out.update({r[0]: ChunkRow(*r) for r in rows})
        return out

    def chunk_ids_of(self, paths: Sequence[str]) -> set[str]:
        """The recorded chunk ids of ``paths``: what the vector store must hold for them."""
        out: set[str] = set()
        for start in range(0, len(paths), 500):
            part = list(paths[start : start + 500])
            marks = ",".join("?" * len(part))
            out.update(
                cid
                for (cid,) in self.db.execute(
                    f"SELECT chunk_id FROM chunks WHERE model=? AND path IN ({marks})",
                    (self.model, *part),
                )
            )
        return out

    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of recorded chunks by chunk id (chunks without one are absent): a vector store is
        rebuilt from these without embedding anything."""
        hashes = {cid: row.chunk().content_hash for cid, row in self.chunk_rows(ids).items()}
        cached = self.cached_vectors(sorted(set(hashes.values())))
        return {cid: cached[h] for cid, h in hashes.items() if h in cached}

    def chunk_ids_by_path(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for path, cid in self.db.execute(
            "SELECT path, chunk_id FROM chunks WHERE model=?", (self.model,)
        ):
            out.setdefault(path, set()).add(cid)
        return out

    def chunk_count(self) -> int:
        return int(
            self.db.execute("SELECT count(*) FROM chunks WHERE model=?", (self.model,)).fetchone()[
                0
            ]
        )

    def cached_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            part = list(hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT hash, vector FROM embeddings WHERE model=? AND hash IN ({marks})",
                (self.model, *part),
            )
            out.update({h: np.frombuffer(v, dtype=np.float32) for h, v in rows})
        return out

    def cache_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        with self._tx():
            self.db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?,?,?)",
                [(self.model, h, np.asarray(v, np.float32).tobytes()) for h, v in vectors.items()],
            )

    def set_meta(self, **values: object) -> None:
        with self._tx():
            self.db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?,?,?)",
                [(self.model, k, json.dumps(v)) for k, v in values.items()],
            )

    def meta(self) -> dict[str, object]:
        rows = self.db.execute("SELECT key, value FROM meta WHERE model=?", (self.model,))
        return {k: json.loads(v) for k, v in rows}

    def _tx(self) -> _Transaction:
        return _Transaction(self.db)


def _fts_terms(terms: Sequence[str]) -> list[str]:
    """``terms`` reduced to word characters (never FTS5 syntax), empty ones dropped."""
    return [t for t in (re.sub(r"[^\w]", "", t) for t in terms) if t]


class _Connection:
    """One thread's connection. Dropped with the thread's locals when the thread ends, and closed then."""

    __slots__ = ("__weakref__", "db")

    def __init__(self, path: Path) -> None:
        # check_same_thread=False only so that IndexState.close() and the thread's end may close it.
        self.db = sqlite3.connect(
            str(path), timeout=30, isolation_level=None, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "PRAGMA secure_delete=ON"
        )  # deleted chunk text is overwritten, not left in free pages

    def close(self) -> None:
        self.db.close()

    def __del__(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
