"""The CPU ledger: who else runs, so completion work gives way to a chat answer and bursts only when alone."""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path

from localpilot.experts.cpu import IDLE_CORES, CpuLedger, release_freed_memory


def _stat(path: Path, busy: int, idle: int) -> None:
    path.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0\n")


def test_others_busy_is_measured_from_proc_stat_less_this_process(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    hz = os.sysconf("SC_CLK_TCK")
    _stat(stat, 0, 0)
    ledger = CpuLedger(stat)
    assert ledger.others_busy() == float("inf")  # one reading: unknown, assume busy
    time.sleep(0.3)
    _stat(stat, 10 * hz, 0)  # ten CPU-seconds in 0.3 s: someone else is very busy
    assert ledger.others_busy() > IDLE_CORES
    assert ledger.threads_for(1) == 1


def test_missing_proc_stat_never_bursts(tmp_path: Path) -> None:
    ledger = CpuLedger(tmp_path / "absent")
    assert ledger.others_busy() == float("inf") and ledger.threads_for(1) == 1


def test_completion_work_waits_for_a_priority_job_and_is_not_counted_meanwhile() -> None:
    ledger = CpuLedger()
    entered, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def chat() -> None:
        with ledger.priority():
            entered.set()
            release.wait(5)
            seen.append(ledger.jobs())

    thread = threading.Thread(target=chat)
    thread.start()
    entered.wait(5)
    with ledger.job():
        started = time.monotonic()
        threading.Timer(0.2, release.set).start()
        ledger.give_way()
        assert time.monotonic() - started >= 0.15  # waited for the chat's prompt
    thread.join(5)
    assert seen == [1]  # while it waited, the completion job did not count: the chat had every core


def test_give_way_stops_on_cancel() -> None:
    ledger = CpuLedger()
    cancel = threading.Event()
    with ledger.priority(), ledger.job():
        threading.Timer(0.1, cancel.set).start()
        started = time.monotonic()
        ledger.give_way(cancel)
        assert time.monotonic() - started < 5


def test_freed_memory_is_handed_back_where_libc_can() -> None:
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert release_freed_memory() is expected
