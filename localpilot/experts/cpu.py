"""Who else is using the CPU right now, so a short job can take every core when nothing else wants one.

ggml's threads spin at barriers: two llama.cpp threads on a 2-core machine that is also embedding or running
a test suite slow to a crawl (28 -> 0.4 tokens/s measured), so the configured ``threads`` (half the cores) is
the safe default. But an inline completion is short and latency-bound: when this process runs no other heavy
job and other processes leave the cores idle, it reads its prompt about twice as fast on all of them.
``ledger`` counts this process's heavy jobs (llama.cpp generations, encoder batches); ``others_busy`` reads
how many cores other processes used lately (Linux ``/proc/stat`` less this process's own CPU time).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAMPLE_S = 0.25  # shortest interval two /proc/stat readings are compared over
IDLE_CORES = 0.5  # other processes using less than this many cores count as idle


class CpuLedger:
    """Heavy jobs of this process, and an estimate of the load from other processes. Thread-safe."""

    def __init__(self, stat: Path = Path("/proc/stat")) -> None:
        self._lock = threading.Lock()
        self._quiet = threading.Condition(self._lock)
        self._jobs = 0
        self._priority = 0  # jobs others wait for (a chat answer reading its prompt)
        self._stat = stat
        self._sample: tuple[float, float, float] | None = None  # (wall, busy jiffies s, own cpu s)
        self._others = 0.0

    @contextmanager
    def job(self) -> Iterator[None]:
        with self._lock:
            self._jobs += 1
        try:
            yield
        finally:
            with self._lock:
                self._jobs -= 1

    @contextmanager
    def priority(self) -> Iterator[None]:
        """A job that jobs calling ``give_way`` wait for: a chat answer's time to first token is what the user
        waits on; a completion asked meanwhile is worth less than that."""
        with self._lock:
            self._jobs += 1
            self._priority += 1
        try:
            yield
        finally:
            with self._lock:
                self._jobs -= 1
                self._priority -= 1
                self._quiet.notify_all()

    def give_way(self, cancel: threading.Event | None = None, timeout_s: float = 30.0) -> None:
        """Called from inside a ``job``: wait while a priority job runs (at most ``timeout_s``, or until
        ``cancel``); the waiting job does not count as busy meanwhile, so the priority job takes every core."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            if not self._priority:
                return
            self._jobs -= 1
            try:
                while self._priority and not (cancel is not None and cancel.is_set()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._quiet.wait(min(left, 0.05))
            finally:
                self._jobs += 1

    def jobs(self) -> int:
        with self._lock:
            return self._jobs

    def others_busy(self) -> float:
        """Cores' worth of CPU other processes used since the previous reading (inf where unknown)."""
        now = self._read()
        if now is None:
            return float("inf")
        with self._lock:
            before = self._sample
            if (
                before is None
            ):  # the first reading: nothing to compare with yet, so assume the worst
                self._sample = now
                return float("inf")
            if now[0] - before[0] >= SAMPLE_S:
                self._others = max(0.0, (now[1] - before[1]) - (now[2] - before[2])) / (
                    now[0] - before[0]
                )
                self._sample = now
            return self._others

    def _read(self) -> tuple[float, float, float] | None:
        try:
            fields = self._stat.read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        ticks = [int(x) for x in fields[:8]]
        busy = (
            sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
        )  # all but idle and iowait
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        own = os.times()
        return time.monotonic(), busy / hz, own.user + own.system

    def threads_for(self, base: int, mine: int = 1) -> int:
        """All cores when this process runs no heavy job besides the caller's ``mine`` and other processes
        leave the cores idle; else ``base``."""
        cores = os.cpu_count() or base
        if base >= cores or self.jobs() > mine or self.others_busy() >= IDLE_CORES:
            return base
        return cores


ledger = CpuLedger()


@functools.cache
def _malloc_trim() -> object | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; absent on musl, macOS and Windows
    except (AttributeError, OSError, TypeError):
        return None


def release_freed_memory() -> bool:
    """Hand the memory freed by the last encoder batch back to the OS. glibc keeps freed blocks in its
    arenas, so an embedding run's resident memory grew with every batch of new tensor shapes (504 -> 1,059
    MB over 3,000 chunks; 590 MB trimming after each batch, at the same chunks/s). False where there is no
    ``malloc_trim``."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)  # type: ignore[operator]
    return True
