"""Keep the index fresh: file-system events (watchdog) trigger a debounced incremental index run.

The run itself (git ls-files + size/mtime/hash checks) decides what changed, so every kind of event is
handled the same way: editors' atomic saves (temp file + rename), backup files, delete + recreate, renames,
and a `git checkout` of thousands of files all end in one batched update. Events only for ignored paths
(checked with `git check-ignore --stdin`, one call per batch) and localpilot's own files trigger nothing.
Watchers miss events (queue overflow, watch limits), so a periodic sweep runs the same incremental update;
when inotify runs out of watches the watcher falls back to polling with a warning.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localpilot.errors import LocalpilotError
from localpilot.gitrepo import GitRepo

log = logging.getLogger(__name__)
DEBOUNCE_S = 0.25  # quiet time after the last event before a run
MAX_WAIT_S = 1.0  # a steady stream of events still gets a run this often
SWEEP_S = 120.0  # periodic repair run for missed events
CHANGES = frozenset({"created", "modified", "deleted", "moved", "closed"})


class Watcher:
    """Calls ``on_change(paths)`` (repo-relative, never empty) after events settle, and ``on_change(set())``
    for each periodic sweep. ``mode`` is "inotify"/"fsevents"/... or "polling" once started."""

    def __init__(
        self,
        root: Path,
        on_change: Callable[[set[str]], None],
        *,
        debounce: float = DEBOUNCE_S,
        sweep: float = SWEEP_S,
        ignore_dirs: tuple[str, ...] = (".git",),
    ) -> None:
        self.root, self.on_change = root.resolve(), on_change
        self.debounce, self.sweep, self.ignore_dirs = debounce, sweep, ignore_dirs
        self.mode = "stopped"
        self.events = 0  # raw events seen, for status and benchmarks
        self.runs = 0
        self._pending: set[str] = set()
        self._first = 0.0
        self._last = 0.0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._observer: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        handler = _Handler(self)
        try:
            observer = Observer()
            observer.schedule(handler, str(self.root), recursive=True)  # type: ignore[arg-type]
            observer.start()
            self.mode = type(observer).__name__.replace("Observer", "").lower() or "native"
        except OSError as exc:  # ENOSPC: inotify watch limit; EMFILE: too many instances
            log.warning("file watching is limited (%s); falling back to polling every second", exc)
            observer = PollingObserver(timeout=1.0)
            observer.schedule(handler, str(self.root), recursive=True)  # type: ignore[arg-type]
            observer.start()
            self.mode = "polling"
        self._observer = observer
        self._thread = threading.Thread(target=self._loop, name="localpilot-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.mode = "stopped"

    def notice(self, abs_path: str) -> None:
        rel = self._relative(abs_path)
        if rel is None:
            return
        with self._cond:
            self.events += 1
            now = time.monotonic()
            self._first = self._first or now
            self._last = now
            self._pending.add(rel)
            self._cond.notify_all()

    def _relative(self, abs_path: str) -> str | None:
        try:
            rel = Path(abs_path).relative_to(self.root).as_posix()
        except ValueError:
            return None
        top = rel.split("/", 1)[0]
        return None if not rel or rel == "." or top in self.ignore_dirs else rel

    def _loop(self) -> None:
        next_sweep = time.monotonic() + self.sweep
        while not self._stop.is_set():
            batch = self._next_batch(next_sweep)
            if self._stop.is_set():
                return
            if batch is None:  # time for a sweep
                next_sweep = time.monotonic() + self.sweep
                self._run(set())
                continue
            wanted = {p for p in batch if not _ignored_names(p)}
            wanted -= git_ignored(self.root, wanted)
            if wanted:
                self._run(wanted)

    def _next_batch(self, next_sweep: float) -> set[str] | None:
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._pending and (
                    now - self._last >= self.debounce or now - self._first >= MAX_WAIT_S
                ):
                    batch, self._pending, self._first = self._pending, set(), 0.0
                    return batch
                if not self._pending and now >= next_sweep:
                    return None
                wait = self.debounce if self._pending else max(0.05, next_sweep - now)
                self._cond.wait(timeout=wait)
        return set()

    def _run(self, paths: set[str]) -> None:
        self.runs += 1
        try:
            self.on_change(paths)
        except Exception:  # the watcher outlives one failed update; the next run retries
            log.exception("updating the index after a change failed")


def _ignored_names(rel: str) -> bool:
    """Editor droppings and temp files that never deserve a run on their own."""
    name = rel.rsplit("/", 1)[-1]
    return (
        name.endswith(("~", ".swp", ".swx", ".swo", ".tmp", ".part"))
        or name.startswith(".#")
        or name == "4913"
        or name.endswith(".lock")
    )


def git_ignored(root: Path, paths: set[str]) -> set[str]:
    """The subset of ``paths`` that .gitignore rules exclude; tracked files never are (one git call). When git
    cannot answer, nothing counts as ignored: a needless run costs less than a missed change."""
    try:
        return GitRepo(root).check_ignore(paths, timeout=30)
    except LocalpilotError as exc:
        log.debug(
            "git check-ignore failed; treating %d path(s) as not ignored: %s", len(paths), exc
        )
        return set()


class _Handler:
    """watchdog's handler protocol (dispatch) without subclassing at import time."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def dispatch(self, event: Any) -> None:
        if (
            event.event_type not in CHANGES
        ):  # opened / closed_no_write: reads (git's own included), not changes
            return
        for attr in ("src_path", "dest_path"):
            path = getattr(event, attr, "")
            if path:
                self.watcher.notice(os.fsdecode(path))
