"""One writer per index.

Threads of this process queue on an in-process lock (an index run waits for a buffer being indexed, and the
other way round, up to ``wait`` seconds); another process holding the index is refused at once through
``flock`` on ``write.lock``, so a second ``localpilot index`` fails fast instead of corrupting the store.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localpilot.errors import IndexBusy

_LOCKS: dict[Path, threading.Lock] = {}
_GUARD = threading.Lock()


def _thread_lock(index_dir: Path) -> threading.Lock:
    with _GUARD:
        return _LOCKS.setdefault(index_dir.resolve(), threading.Lock())


@contextmanager
def write_lock(index_dir: Path, root: Path, wait: float | None = None) -> Iterator[None]:
    """Hold the index of ``root`` (kept in ``index_dir``) for writing. ``wait``: seconds to wait for another
    thread of this process (None: as long as it takes). Raises IndexBusy."""
    lock = _thread_lock(index_dir)
    if not lock.acquire(timeout=-1 if wait is None else wait):
        raise IndexBusy(
            f"the index of {root} is being written by another part of this process; try again"
        )
    try:
        with _process_lock(index_dir, root):
            yield
    finally:
        lock.release()


@contextmanager
def _process_lock(index_dir: Path, root: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / "write.lock").open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise IndexBusy(
                f"the index of {root} is being written by pid {holder}; "
                "wait for it to finish or stop it"
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
