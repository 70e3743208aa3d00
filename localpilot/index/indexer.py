"""Incremental indexing in two passes: read everything, then embed what is new.

Reading: each batch of files is filtered, chunked and recorded in SQLite in one transaction (text, FTS,
symbols). New chunks whose vectors are cached (by content hash) go to the vector store first; the rest are
recorded as pending. When this pass ends the whole repository is searchable by keyword and symbol.
Embedding: pending chunks, most wanted first (recently changed source, then source, tests, docs), are
embedded in batches, stored, and marked done; search merges whatever is embedded so far.

Crash safety: SQLite is the truth and the store follows it. A kill at any point leaves every file recorded
or not, and every recorded chunk stored or pending (or cached: the next run's reconciliation drops store
entries SQLite does not know and puts lost vectors back from the cache, or marks them pending).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from localpilot.config import Settings
from localpilot.experts.cpu import release_freed_memory
from localpilot.experts.embedder import Embedder
from localpilot.index import filters
from localpilot.index.chunker import CHUNKER_VERSION, chunk_file
from localpilot.index.languages import detect_language
from localpilot.index.secrets import redact
from localpilot.index.state import FileRecord, IndexState
from localpilot.index.walker import head_commit, list_files, recent_paths
from localpilot.store import Store
from localpilot.types import Chunk, IndexStats, Progress

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
BATCH_CHUNKS = 256
BATCH_FILES = 200
#: Formats embedded after code: prose and configuration.
PROSE = frozenset({"markdown", "rst", "text", "html", "json", "yaml", "toml", "ini", "xml", "css"})


@dataclass
class _Prepared:
    record: FileRecord
    chunks: list[Chunk] = field(default_factory=list)
    touches_store: bool = True  # False when only the mtime changed


class Indexer:
    """Brings one repo's index up to date with its work tree."""

    def __init__(
        self, root: Path, settings: Settings, embedder: Embedder, store: Store, state: IndexState
    ) -> None:
        self.root, self.settings, self.embedder, self.store, self.state = (
            root,
            settings,
            embedder,
            store,
            state,
        )

    def run(self, on_progress: ProgressCallback | None = None) -> IndexStats:
        started = time.monotonic()
        stats = IndexStats()
        known = self._known()
        paths = list_files(self.root)
        stats.files_seen = len(paths)
        todo: list[tuple[str, os.stat_result | None, str | None]] = []
        present: set[str] = set()
        fresh = self._settings_changed()
        for path in paths:
            if not _utf8(path):
                log.warning("skipping a file whose name is not valid UTF-8: %r", path)
                stats.files_skipped += 1
                stats.skipped[
                    path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                ] = "file name is not valid UTF-8"
                continue
            st, reason = self._precheck(path)
            if st is None and reason is None:
                continue  # listed by git but deleted from the work tree
            present.add(path)
            old = None if fresh else known.get(path)
            if (
                reason is None
                and old
                and old.sha256
                and st
                and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns)
            ):
                self._count_unchanged(old, stats)
            else:
                todo.append((path, st, reason))
        # a new chunker cuts the same bytes differently: no file keeps its old chunks (vectors are reused)
        self._read(todo, {} if self._chunker_changed() else known, stats, on_progress)
        self._remove(sorted(set(known) - present), stats)
        self.state.set_meta(searchable=time.time())  # keyword and symbol search work from here on
        self._embed_pending(stats, on_progress)
        stats.seconds = time.monotonic() - started
        self.state.set_meta(
            last_commit=head_commit(self.root),
            last_indexed=time.time(),
            embedder=self.embedder.name,
            last_stats=stats.summary(),
            fingerprint=self._fingerprint(),
            run_in_progress=False,
        )
        return stats

    def _read(
        self,
        todo: list[tuple[str, os.stat_result | None, str | None]],
        known: dict[str, FileRecord],
        stats: IndexStats,
        on_progress: ProgressCallback | None,
    ) -> None:
        done = 0
        if on_progress:
            on_progress(Progress(len(todo), 0, 0, 0))
        priority = _Priority(recent_paths(self.root))
        for batch in self._batches(todo, known):
            self._write(batch, stats, priority)
            done += len(batch)
            if on_progress:
                on_progress(
                    Progress(
                        len(todo),
                        done,
                        stats.chunks_written,
                        stats.chunks_embedded,
                        batch[-1].record.path,
                    )
                )

    def _embed_pending(self, stats: IndexStats, on_progress: ProgressCallback | None) -> None:
        """Embed every chunk waiting for its vector, most wanted first, one batch at a time."""
        total, done = self.state.pending_count(), 0
        while True:
            if on_progress and total:  # the first report says: searchable now, embedding starts
                on_progress(
                    Progress(
                        0,
                        0,
                        stats.chunks_written,
                        stats.chunks_embedded,
                        stage="embedding",
                        vectors_done=done,
                        vectors_total=max(total, done),
                    )
                )
            if not (ids := self.state.pending(BATCH_CHUNKS)):
                return
            self._embed(ids, stats)
            release_freed_memory()  # flat memory over a big run (see experts/cpu.py)
            done += len(ids)

    def _embed(self, ids: list[str], stats: IndexStats) -> None:
        rows = self.state.chunk_rows(ids)
        chunks = [rows[i].chunk() for i in ids if i in rows]
        if chunks:
            self.store.upsert([c.chunk_id for c in chunks], self._vectors(chunks, stats))
        self.state.vectors_stored(ids)

    def prioritize(self, paths: Sequence[str]) -> int:
        """Embed the waiting chunks of ``paths`` (open in an editor) before any other; safe while another
        process runs the index (it reads the order from SQLite before each batch)."""
        return self.state.prioritize(paths, _Priority.OPEN)

    def index_text(self, path: str, text: str) -> None:
        """Index ``text`` as the content of ``path`` (an editor's unsaved buffer). The record gets mtime 0, so
        the next full run re-reads the file from disk and puts the saved content back."""
        data = text.encode("utf-8", "surrogatepass")
        record, chunks = self._chunk(path, data)
        digest = hashlib.sha256(data).hexdigest()
        stats = IndexStats()
        waiting = self._write(
            [_Prepared(FileRecord(path, len(data), 0, digest, *record), chunks)], stats, _Priority()
        )
        if waiting:
            self._embed(waiting, stats)

    def _known(self) -> dict[str, FileRecord]:
        """The manifest, with the vector store made consistent with it first when a previous run was cut
        short or the two disagree (a store deleted or damaged)."""
        interrupted = bool(self.state.meta().get("run_in_progress"))
        self.state.set_meta(run_in_progress=True)
        expected = self.state.chunk_count() - self.state.pending_count()
        if interrupted or self.store.count() != expected:
            self._reconcile()
        return self.state.files()

    def _reconcile(self) -> None:
        """Make the vector store hold exactly the recorded chunks that are not pending: drop what SQLite does
        not know, put lost vectors back from the embedding cache, and mark the rest pending."""
        stored = self.store.all_ids()
        recorded = set().union(*self.state.chunk_ids_by_path().values())
        extra = stored - recorded
        if extra:
            log.warning(
                "removing %d vectors the index does not know (an interrupted run)", len(extra)
            )
            self.store.delete(sorted(extra))
        lost = sorted(recorded - stored - self.state.pending_ids())
        found = self.state.chunk_vectors(lost)
        if found:
            log.warning("restoring %d lost vectors from the embedding cache", len(found))
            self.store.upsert(list(found), np.stack(list(found.values())).astype(np.float32))
        gone = [cid for cid in lost if cid not in found]
        if gone:
            log.warning(
                "re-embedding %d chunks whose vectors are neither stored nor cached", len(gone)
            )
            self.state.wait_for_vectors(dict.fromkeys(gone, _Priority.LOST))

    def _fingerprint(self) -> str:
        """What, besides a file's bytes, decides its chunks: filter rules, the settings they read and the
        chunker's version (a new chunker re-chunks every file; unchanged chunk texts keep their vectors)."""
        return (
            f"{filters.RULES_VERSION}:{self.settings.max_file_bytes}:{sorted(self.settings.exclude)}"
            f":c{CHUNKER_VERSION}"
        )

    def _chunker_changed(self) -> bool:
        previous = self.state.meta().get("fingerprint")
        return previous is not None and not str(previous).endswith(f":c{CHUNKER_VERSION}")

    def _settings_changed(self) -> bool:
        """True when files must be re-examined even if their bytes did not change (no re-embedding follows)."""
        previous = self.state.meta().get("fingerprint")
        return previous is not None and previous != self._fingerprint()

    @staticmethod
    def _count_unchanged(old: FileRecord, stats: IndexStats) -> None:
        if old.status == "skipped":
            stats.files_skipped += 1
            stats.skipped[old.path] = old.reason
        else:
            stats.files_unchanged += 1

    def _precheck(self, path: str) -> tuple[os.stat_result | None, str | None]:
        """Checks that need no reading: name, type, size, and that it lies inside the repo."""
        reason = filters.name_reason(path, self.settings.exclude) or filters.declaration_reason(
            self.root, path
        )
        try:
            st = os.lstat(self.root / path)
        except FileNotFoundError:
            return None, None
        if reason:
            return st, reason
        if stat.S_ISLNK(st.st_mode):
            return st, "symlink (not followed)"
        if not stat.S_ISREG(st.st_mode):
            return st, "not a regular file (submodule or special file)"
        if st.st_size == 0:
            return st, "empty"
        if st.st_size > self.settings.max_file_bytes:
            return (
                st,
                f"too large ({st.st_size} bytes > max_file_bytes {self.settings.max_file_bytes})",
            )
        if (
            not (self.root / path).resolve().is_relative_to(self.root)
        ):  # root is resolved by find_repo_root
            return st, "inside a symlinked directory that leads out of the repo (not followed)"
        return st, None

    def _batches(
        self,
        todo: list[tuple[str, os.stat_result | None, str | None]],
        known: dict[str, FileRecord],
    ) -> Iterator[list[_Prepared]]:
        batch: list[_Prepared] = []
        chunks = 0
        for path, st, reason in todo:
            prepared = self._prepare(path, st, reason, known.get(path))
            batch.append(prepared)
            chunks += len(prepared.chunks)
            if chunks >= BATCH_CHUNKS or len(batch) >= BATCH_FILES:
                yield batch
                batch, chunks = [], 0
        if batch:
            yield batch

    def _prepare(
        self, path: str, st: os.stat_result | None, reason: str | None, old: FileRecord | None
    ) -> _Prepared:
        size, mtime = (st.st_size, st.st_mtime_ns) if st else (0, 0)
        if reason:
            return _Prepared(FileRecord(path, size, mtime, "", "skipped", reason))
        try:
            data = (self.root / path).read_bytes()
        except OSError as exc:
            return _Prepared(
                FileRecord(path, size, mtime, "", "skipped", f"unreadable: {exc.strerror}")
            )
        digest = hashlib.sha256(data).hexdigest()
        if old and old.sha256 == digest and old.status == "indexed":
            return _Prepared(
                FileRecord(
                    path,
                    size,
                    mtime,
                    digest,
                    old.status,
                    old.reason,
                    old.language,
                    old.chunks,
                    old.redactions,
                ),
                touches_store=False,
            )
        try:
            record, chunks = self._chunk(path, data)
        except (
            Exception
        ) as exc:  # one odd file must not stop the run; it is retried when it changes
            log.warning("could not chunk %s: %s: %s", path, type(exc).__name__, exc)
            record, chunks = (
                ("skipped", f"could not be chunked ({type(exc).__name__})", "", 0, 0),
                [],
            )
        return _Prepared(FileRecord(path, size, mtime, digest, *record), chunks)

    def _chunk(self, path: str, data: bytes) -> tuple[tuple[str, str, str, int, int], list[Chunk]]:
        """((status, reason, language, n_chunks, redactions), chunks) for one file's bytes."""
        language = detect_language(path)
        reason = filters.bytes_reason(data)
        text = None if reason else filters.decode(data)
        if text is None and reason is None:
            reason = "not UTF-8 text"
        reason = reason or filters.text_reason(text or "", language)
        if reason:
            return ("skipped", reason, language, 0, 0), []
        text, redacted = redact(text or "", path)
        if redacted:
            log.info("redacted %d secret-looking strings in %s", redacted, path)
        chunks = chunk_file(path, text, language, self.embedder.count_tokens, self._budget(path))
        if not chunks:
            return ("skipped", "no indexable content", language, 0, redacted), []
        return ("indexed", "", language, len(chunks), redacted), chunks

    def _budget(self, path: str) -> int:
        """Body tokens per chunk: the model's limit minus [CLS]/[SEP] and the path/symbol header."""
        limit = self.embedder.max_tokens - 2
        head = self.embedder.count_tokens([path])[0] + 12
        return max(limit - min(head, limit // 3), 16)

    def _write(self, batch: list[_Prepared], stats: IndexStats, priority: _Priority) -> list[str]:
        """Record ``batch`` in SQLite; new chunks with cached vectors are stored first, the others are
        returned (and recorded) as pending."""
        touched = [p for p in batch if p.touches_store]
        chunks = {c.chunk_id: c for p in touched for c in p.chunks}
        old_ids = self.state.chunk_ids_of([p.record.path for p in touched]) if touched else set()
        stored_before = old_ids - self.state.pending_among(old_ids)
        new = [c for cid, c in chunks.items() if cid not in stored_before]
        cached = self.state.cached_vectors(sorted({c.content_hash for c in new}))
        ready = [c for c in new if c.content_hash in cached]
        if ready:
            vectors = np.stack([cached[c.content_hash] for c in ready]).astype(np.float32)
            self.store.upsert([c.chunk_id for c in ready], vectors)
        waiting = {c.chunk_id: priority.of(c) for c in new if c.content_hash not in cached}
        self.state.commit_files(
            [p.record for p in batch], {p.record.path: p.chunks for p in touched}, pending=waiting
        )
        stale = sorted(stored_before - set(chunks))
        if stale:
            self.store.delete(stale)
        for p in batch:
            self._tally(p, stats)
        stats.chunks_written += len(new)
        stats.chunks_reused += len(ready)
        stats.chunks_deleted += len(stale)
        stats.chunks_truncated += sum(c.truncated for c in new)
        return list(waiting)

    def _vectors(self, chunks: list[Chunk], stats: IndexStats) -> np.ndarray:
        """Embeddings for ``chunks``: from the content-hash cache, embedding only what is missing."""
        hashes = [c.content_hash for c in chunks]
        cached = self.state.cached_vectors(sorted(set(hashes)))
        todo = {c.content_hash: c for c in chunks if c.content_hash not in cached}
        if todo:
            fresh = self.embedder.embed([c.embed_text() for c in todo.values()])
            made = dict(zip(todo, fresh, strict=True))
            self.state.cache_vectors(made)
            cached.update(made)
        stats.chunks_embedded += len(todo)
        stats.chunks_reused += len(chunks) - len(todo)
        return np.stack([cached[h] for h in hashes]).astype(np.float32)

    @staticmethod
    def _tally(p: _Prepared, stats: IndexStats) -> None:
        if p.record.status == "skipped":
            stats.files_skipped += 1
            stats.skipped[p.record.path] = p.record.reason
        elif p.touches_store:
            stats.files_indexed += 1
        else:
            stats.files_unchanged += 1

    def _remove(self, paths: list[str], stats: IndexStats) -> None:
        """Forget files that are gone from the work tree or now ignored."""
        if not paths:
            return
        stale = sorted(self.state.chunk_ids_of(paths))
        if stale:
            self.store.delete(stale)
        self.state.commit_files([], removed=paths)
        stats.files_removed += len(paths)
        stats.chunks_deleted += len(stale)


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Priority:
    """Embedding order: what a user is likely to ask about first, lower sooner. Files open in an editor come
    first, then recently committed source, most recent first, then other source, tests, prose and
    configuration, vendored code."""

    SPAN = 1_000_000  # room for the recency rank inside the first tier
    RECENT, SOURCE, TESTS, DOCS, VENDORED, LOST = (t * 1_000_000 for t in range(6))
    OPEN = -1
    _TESTS = re.compile(
        r"(^|/)(tests?|spec|__tests__)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$"
    )
    _VENDORED = re.compile(r"(^|/)(vendor|vendored|third_party|external|node_modules|dist|build)/")

    def __init__(self, recent: Sequence[str] = ()) -> None:
        self.recent = {path: rank for rank, path in enumerate(recent[: self.SPAN - 1])}

    def of(self, chunk: Chunk) -> int:
        path = chunk.path
        if self._VENDORED.search(path):
            return self.VENDORED
        if chunk.language in PROSE:
            return self.DOCS
        if self._TESTS.search(path):
            return self.TESTS
        rank = self.recent.get(path)
        return self.SOURCE if rank is None else self.RECENT + rank
