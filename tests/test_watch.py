"""Live re-index with the real watcher (watchdog/inotify), real git, MiniLM and Chroma: edits, atomic saves,
renames, deletes, branch switches and ignored files; the result always equals a fresh rebuild."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import git

from localpilot.config import load_settings
from localpilot.service import Assistant


def state_of(a: Assistant) -> tuple[list[tuple[str, str, str]], list[str]]:
    files = sorted((r.path, r.sha256, r.status) for r in a.state.files().values())
    return files, sorted(a.store.all_ids())


def fresh_state(
    repo: Any, minilm: Any, tmp_path: Path
) -> tuple[list[tuple[str, str, str]], list[str]]:
    settings = load_settings(repo.root, cache_dir=tmp_path / f"fresh-{time.monotonic_ns()}")
    fresh = Assistant(repo.root, settings, embedder=minilm)
    fresh.index()
    try:
        return state_of(fresh)
    finally:
        fresh.close()


def wait_until(check: Callable[[], bool], timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("the index did not catch up")


@pytest.fixture
def watched(make_repo: Callable[..., Any], assistant_for: Callable[..., Assistant]) -> Any:
    repo = make_repo(
        {
            "app/core.py": "def alpha():\n    return 1\n",
            ".gitignore": "build/\n*.log\n",
            "README.md": "# demo\n",
        }
    )
    a = assistant_for(repo)
    a.index()
    updates: list[Any] = []
    watcher = a.watch(updates.append, debounce=0.1, sweep=3600)
    yield repo, a, watcher, updates
    watcher.stop()


def searchable(a: Assistant, query: str, path: str) -> Callable[[], bool]:
    return lambda: any(h.path == path for h in a.search(query, 5))


def test_a_saved_change_becomes_searchable(watched: Any, minilm: Any, tmp_path: Path) -> None:
    repo, a, watcher, _ = watched
    assert watcher.mode in {"inotify", "polling"} or watcher.mode
    repo.write(
        "app/billing.py",
        "def compute_invoice_total(items):\n    return sum(i.price for i in items)\n",
    )
    latency = wait_until(searchable(a, "compute invoice total", "app/billing.py"))
    print(f"save-to-searchable: {latency:.2f}s")
    assert state_of(a) == fresh_state(repo, minilm, tmp_path)


def test_atomic_saves_renames_deletes_and_recreates(
    watched: Any, minilm: Any, tmp_path: Path
) -> None:
    repo, a, _, _ = watched
    target = repo.root / "app/core.py"
    tmp = repo.root / "app/.core.py.tmp~"
    tmp.write_text("def alpha():\n    return 2\n\n\ndef beta_quantum_widget():\n    return 3\n")
    os.replace(tmp, target)  # editor-style atomic save
    (repo.root / "app/core.py~").write_text("backup")  # backup file beside it
    wait_until(searchable(a, "beta quantum widget", "app/core.py"))
    os.rename(target, repo.root / "app/renamed.py")
    wait_until(searchable(a, "beta quantum widget", "app/renamed.py"))
    (repo.root / "app/renamed.py").unlink()
    (repo.root / "app/renamed.py").write_text("def gamma_recreated_thing():\n    return 4\n")
    wait_until(searchable(a, "gamma recreated thing", "app/renamed.py"))
    wait_until(lambda: "app/core.py" not in a.state.files())
    time.sleep(0.5)
    assert state_of(a) == fresh_state(repo, minilm, tmp_path)


def test_ignored_files_trigger_nothing(watched: Any) -> None:
    repo, a, watcher, updates = watched
    time.sleep(0.5)
    runs = watcher.runs
    repo.write("build/out.py", "def built():\n    pass\n")
    repo.write("debug.log", "noise\n")
    (repo.root / ".git" / "scratch").write_text("x")
    time.sleep(1.0)
    assert watcher.runs == runs and watcher.events >= 2 and updates == []
    assert "build/out.py" not in a.state.files()


def test_branch_switch_is_one_batched_update(watched: Any, minilm: Any, tmp_path: Path) -> None:
    repo, a, watcher, _ = watched
    git(repo.root, "checkout", "-q", "-b", "feature")
    for i in range(300):
        repo.write(f"gen/mod_{i}.py", f"def handler_{i}(request):\n    return {i}\n")
    repo.commit("many files")
    wait_until(lambda: len(a.state.files()) >= 303, timeout=300)
    time.sleep(0.5)
    runs_before = watcher.runs
    git(repo.root, "checkout", "-q", "main")  # 300 files disappear at once
    wait_until(lambda: len(a.state.files()) == 3, timeout=300)
    time.sleep(0.5)
    assert watcher.runs - runs_before <= 3 and watcher.events > 300
    assert state_of(a) == fresh_state(repo, minilm, tmp_path)


def test_falls_back_to_polling_when_inotify_is_exhausted(
    make_repo: Callable[..., Any], assistant_for: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    import watchdog.observers

    class Exhausted(watchdog.observers.Observer):  # type: ignore[misc, valid-type]
        def schedule(self, *args: Any, **kwargs: Any) -> Any:
            raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watchdog.observers, "Observer", Exhausted)
    repo = make_repo({"a.py": "def one():\n    return 1\n"})
    a = assistant_for(repo)
    a.index()
    watcher = a.watch(debounce=0.1, sweep=3600)
    try:
        assert watcher.mode == "polling"
        repo.write("b.py", "def polling_discovered_function():\n    return 2\n")
        wait_until(searchable(a, "polling discovered function", "b.py"))
    finally:
        watcher.stop()


def test_periodic_sweep_repairs_missed_events(
    make_repo: Callable[..., Any], assistant_for: Callable
) -> None:
    repo = make_repo({"a.py": "def one():\n    return 1\n"})
    a = assistant_for(repo)
    a.index()
    watcher = a.watch(debounce=0.1, sweep=0.5)
    try:
        watcher._observer.stop()  # simulate a watcher that misses every event (queue overflow)
        repo.write("b.py", "def swept_in_function():\n    return 2\n")
        wait_until(searchable(a, "swept in function", "b.py"))
    finally:
        watcher.stop()
