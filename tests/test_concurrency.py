"""One writer, many readers: several processes index and search one repo at once while files change.
No query fails, a second writer is refused cleanly (never corrupts), and the result equals a fresh rebuild."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localpilot.config import load_settings
from localpilot.service import Assistant

pytestmark = pytest.mark.slow

SEARCHER = """
import json, sys, time
from localpilot.service import Assistant
a = Assistant(sys.argv[1])
failures, done, deadline = [], 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        a.search("compute the total of an invoice", 5)
        done += 1
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"done": done, "failures": failures}))
"""


def test_writers_and_readers_at_once(
    make_repo: Callable[..., Any], minilm: Any, tmp_path: Path
) -> None:
    files = {f"pkg/mod_{i}.py": f"def function_{i}(x):\n    return x * {i}\n" for i in range(40)}
    repo = make_repo({**files, "billing.py": "def invoice_total(items):\n    return sum(items)\n"})
    env_run = [sys.executable, "-m", "localpilot", "index", "-q"]
    assert subprocess.run(env_run, cwd=repo.root, capture_output=True, check=False).returncode == 0
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", SEARCHER, str(repo.root), "25"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    busy = ok = 0
    deadline = time.monotonic() + 20
    i = 0
    while time.monotonic() < deadline:
        repo.write(f"pkg/new_{i}.py", f"def added_{i}(y):\n    return y + {i}\n")
        (repo.root / f"pkg/mod_{i % 40}.py").write_text(
            f"def function_{i % 40}(x):\n    return x - {i}\n"
        )
        writers = [
            subprocess.Popen(
                env_run, cwd=repo.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        for w in writers:
            _, err = w.communicate(timeout=300)
            if w.returncode == 4:
                busy += 1
                assert "being written by pid" in err
            else:
                assert w.returncode == 0, err
                ok += 1
        i += 1
    results = [json.loads(r.communicate(timeout=120)[0].strip().splitlines()[-1]) for r in readers]
    assert all(r["failures"] == [] for r in results), results
    assert all(r["done"] > 0 for r in results) and ok > 0
    assert subprocess.run(env_run, cwd=repo.root, capture_output=True, check=False).returncode == 0
    a = Assistant(repo.root, load_settings(repo.root), embedder=minilm)
    fresh = Assistant(
        repo.root, load_settings(repo.root, cache_dir=tmp_path / "fresh"), embedder=minilm
    )
    fresh.index()
    try:
        files_a = sorted((r.path, r.sha256, r.status) for r in a.state.files().values())
        files_f = sorted((r.path, r.sha256, r.status) for r in fresh.state.files().values())
        assert files_a == files_f and a.store.all_ids() == fresh.store.all_ids()
    finally:
        a.close()
        fresh.close()
    print(
        f"{ok} writer runs, {busy} refused as busy, {sum(r['done'] for r in results)} searches, 0 failed"
    )
