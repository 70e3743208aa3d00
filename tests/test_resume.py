"""Interrupted indexing (kill -9, Ctrl-C) resumes with nothing lost or duplicated."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Repo

from localpilot.config import load_settings
from localpilot.service import Assistant

pytestmark = pytest.mark.slow

FUNC = '''
def handler_{i}_{j}(request, retries={j}):
    """Handle request kind {i}.{j}: validate the payload and store result {j}."""
    payload = request.json()
    if not payload.get("id_{j}"):
        raise ValueError("missing id {i}.{j}")
    return store_{j}(payload, retries=retries)
'''


def big_repo(make_repo: Callable[..., Repo], files: int = 120) -> Repo:
    return make_repo(
        {
            f"pkg/mod_{i:03}.py": "".join(FUNC.format(i=i, j=j) for j in range(4))
            for i in range(files)
        }
    )


def start_index(repo: Repo) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "localpilot", "index", "--quiet", "--repo", str(repo.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_recorded_files(repo: Repo, proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
    db = load_settings().index_dir(repo.root) / "state.sqlite"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    n = conn.execute("SELECT count(*) FROM files").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n:
                return int(n)
        time.sleep(0.05)
    err = proc.stderr.read() if proc.stderr else b""
    raise AssertionError(f"indexer recorded nothing in time (exit {proc.poll()}): {err!r}")


def snapshot(a: Assistant) -> list[tuple[str, int, int, str]]:
    rows = a.state.chunk_rows(sorted(a.store.all_ids()))
    assert len(rows) == a.store.count(), "every stored vector is a recorded chunk"
    return sorted((r.path, r.start_line, r.end_line, r.chunk().content_hash) for r in rows.values())


def fresh_rebuild(repo: Repo, minilm: object, tmp_path: Path) -> list[tuple[str, int, int, str]]:
    a = Assistant(
        repo.root, load_settings(repo.root, cache_dir=tmp_path / "fresh-cache"), embedder=minilm
    )
    a.index()
    snap = snapshot(a)
    a.close()
    return snap


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_index_resumes_to_a_fresh_rebuild(
    sig: signal.Signals,
    make_repo: Callable[..., Repo],
    assistant_for: Callable[..., Assistant],
    minilm: object,
    tmp_path: Path,
) -> None:
    repo = big_repo(make_repo)
    proc = start_index(repo)
    recorded = wait_for_recorded_files(repo, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert 0 < recorded < 120, "killed mid-run"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and b"next run resumes" in err and b"Traceback" not in err
    a = assistant_for(repo)
    resumed = a.index()
    assert resumed.files_unchanged >= recorded, "finished files are not redone"
    assert resumed.files_indexed + resumed.files_unchanged == 120
    snap = snapshot(a)
    assert len(snap) == len(set(snap)) == a.store.count(), "no duplicates"
    assert snap == fresh_rebuild(repo, minilm, tmp_path)
    assert a.index().chunks_written == 0


def test_killed_at_many_points_then_resumed_equals_a_fresh_rebuild(
    make_repo: Callable[..., Repo],
    assistant_for: Callable[..., Assistant],
    minilm: object,
    tmp_path: Path,
) -> None:
    """kill -9 at spread-out moments (model load, chunking, store writes, manifest commits); every restart
    resumes, and the index after the last run equals a fresh rebuild."""
    import random

    repo = big_repo(make_repo, files=160)
    rng = random.Random(11)
    for delay in (0.2, 0.8, 1.5, 2.5, 3.5, 5.0, 7.0):
        proc = start_index(repo)
        time.sleep(delay + rng.uniform(0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    final = start_index(repo)
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    a = assistant_for(repo)
    assert a.index().chunks_embedded == 0  # nothing left to do
    assert snapshot(a) == fresh_rebuild(repo, minilm, tmp_path)
