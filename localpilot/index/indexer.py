"""Incremental indexing: walk, filter, chunk, embed (cached by content hash), store, record.

Crash safety: each batch writes its chunks to the store first, deletes the files' stale chunks, and only
then commits the files' manifest rows. A kill at any point leaves files either recorded (and fully stored)
or unrecorded (and redone next run, with upserts of deterministic ids, so nothing is duplicated).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from localpilot.config import Settings
from localpilot.experts.embedder import Embedder
from localpilot.index import filters
from localpilot.index.chunker import chunk_file
from localpilot.index.languages import detect_language
from localpilot.index.secrets import redact
from localpilot.index.state import FileRecord, IndexState
from localpilot.index.walker import head_commit, list_files
from localpilot.store import Store
from localpilot.types import Chunk, IndexStats, Progress

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
BATCH_CHUNKS = 256
BATCH_FILES = 200


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
        done = 0
        if on_progress:
            on_progress(Progress(len(todo), 0, 0, 0))
        for batch in self._batches(todo, known):
            self._write(batch, stats)
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
        self._remove(sorted(set(known) - present), stats)
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

    def index_text(self, path: str, text: str) -> None:
        """Index ``text`` as the content of ``path`` (an editor's unsaved buffer). The record gets mtime 0, so
        the next full run re-reads the file from disk and puts the saved content back."""
        data = text.encode("utf-8", "surrogatepass")
        record, chunks = self._chunk(path, data)
        digest = hashlib.sha256(data).hexdigest()
        stats = IndexStats()
        self._write([_Prepared(FileRecord(path, len(data), 0, digest, *record), chunks)], stats)

    def _known(self) -> dict[str, FileRecord]:
        """The manifest, made consistent with the vector store first when a previous run was cut short or
        the two disagree (a store deleted by hand, a kill between the store write and the manifest commit)."""
        interrupted = bool(self.state.meta().get("run_in_progress"))
        self.state.set_meta(run_in_progress=True)
        if interrupted or self.store.count() != self.state.chunk_count():
            self._reconcile()
        return self.state.files()

    def _reconcile(self) -> None:
        """Make the vector store hold exactly the recorded chunks: drop what SQLite does not know, put back
        what it does from the embedding cache, and re-index the files whose vectors are not cached."""
        stored = self.store.all_ids()
        recorded = self.state.chunk_ids_by_path()
        extra = stored - set().union(*recorded.values()) if recorded else stored
        if extra:
            log.warning(
                "removing %d chunks the manifest does not know (an interrupted run)", len(extra)
            )
            self.store.delete(sorted(extra))
        lost = sorted(set().union(*recorded.values()) - stored) if recorded else []
        found = self.state.chunk_vectors(lost)
        if found:
            log.warning(
                "restoring %d vectors missing from the vector store from the embedding cache",
                len(found),
            )
            self.store.upsert(list(found), np.stack(list(found.values())).astype(np.float32))
        missing = sorted(
            p for p, ids in recorded.items() if any(i not in stored and i not in found for i in ids)
        )
        if missing:
            log.warning(
                "re-indexing %d files whose vectors are neither stored nor cached", len(missing)
            )
            self.state.commit_files([], removed=missing)

    def _fingerprint(self) -> str:
        """What, besides a file's bytes, decides its chunks: filter rules and the settings they read."""
        return f"{filters.RULES_VERSION}:{self.settings.max_file_bytes}:{sorted(self.settings.exclude)}"

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
        reason = filters.name_reason(path, self.settings.exclude)
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

    def _write(self, batch: list[_Prepared], stats: IndexStats) -> None:
        touched = [p for p in batch if p.touches_store]
        chunks = {c.chunk_id: c for p in touched for c in p.chunks}
        old_ids = self.state.chunk_ids_of([p.record.path for p in touched]) if touched else set()
        new = [c for cid, c in chunks.items() if cid not in old_ids]
        if new:
            self.store.upsert([c.chunk_id for c in new], self._vectors(new, stats))
        stale = sorted(old_ids - set(chunks))
        if stale:
            self.store.delete(stale)
        self.state.commit_files(
            [p.record for p in batch], {p.record.path: p.chunks for p in touched}
        )
        for p in batch:
            self._tally(p, stats)
        stats.chunks_written += len(new)
        stats.chunks_deleted += len(stale)

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
        stats.chunks_truncated += sum(c.truncated for c in chunks)
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
