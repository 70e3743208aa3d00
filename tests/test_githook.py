"""The pre-commit hook through real `git commit`s in tmp repos, with the hook installed as a user would.

Every commit test also checks the "must never happen" list: the work tree, the staged index and unstaged work
are as before, no index.lock, no stash, nothing new in the repo or under .git, no process left behind.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import Repo, git
from test_suggest import BASE, OPS

from localpilot.cli import main
from localpilot.githook import install as hooks
from localpilot.suggest.git import Git

ROOT = Path(__file__).resolve().parent.parent
CLAMP = (
    "\n\ndef clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:\n    if lo > hi:\n"
    "        raise ValueError('empty range')\n    return max(lo, min(x, hi))\n"
)
GIT_COMMITTED = {
    "COMMIT_EDITMSG",
    "ORIG_HEAD",
    "index",
    "AUTO_MERGE",
}  # files a commit itself may write in .git


@dataclass
class State:
    files: dict[str, tuple[bytes, int]]  # work tree: path -> (bytes, mtime_ns)
    git_files: set[str]
    staged: str  # git ls-files -s
    unstaged: str  # git diff (the work not being committed)


def state(repo: Path) -> State:
    files, git_files = {}, set()
    for p in repo.rglob("*"):
        rel = p.relative_to(repo).as_posix()
        if p.is_file() and not p.is_symlink():
            if rel.startswith(".git/"):
                git_files.add(rel[5:])
            elif not rel.startswith(".git"):
                files[rel] = (p.read_bytes(), p.stat().st_mtime_ns)
    return State(files, git_files, git(repo, "ls-files", "-s"), git(repo, "diff"))


def assert_untouched(repo: Path, before: State, committed: set[str] | None = None) -> None:
    """Nothing but the commit itself changed: ``committed`` paths may leave the staged/unstaged lists."""
    after = state(repo)
    assert after.files == before.files, "the work tree changed"
    new = {
        f
        for f in after.git_files - before.git_files
        if not f.startswith(("objects/", "logs/", "refs/")) and f not in GIT_COMMITTED
    }
    assert not new, f"new files under .git: {new}"
    assert not [f for f in after.git_files if f.endswith(".lock")], "a lock file was left behind"
    assert git(repo, "stash", "list") == ""
    if committed is None:
        assert after.staged == before.staged and after.unstaged == before.unstaged
    assert not _processes_in(repo), "a process of the hook is still running"


def _processes_in(repo: Path) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd == str(repo) or cwd.startswith(f"{repo}/"):
                found.append(int(entry))
    return found


def commit(
    repo: Path,
    *args: str,
    env: dict[str, str] | None = None,
    git_args: tuple[str, ...] = (),
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *git_args, "commit", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def hooked(make_repo: Callable[..., Repo]) -> Callable[..., Repo]:
    """A repo with calc/ops.py and its tests committed and the hook installed (extra args baked in)."""

    def make(*args: str, files: dict[str, str] | None = None) -> Repo:
        repo = make_repo({**BASE, **(files or {})})
        assert main(["hook", "install", "--repo", str(repo.root), *args]) == 0
        return repo

    return make


def test_commit_prints_symbols_tests_and_suggestions(hooked: Callable[..., Repo]) -> None:
    repo = hooked()
    repo.write("calc/ops.py", OPS.replace("return a + b", "return b + a") + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    before, old = state(repo.root), head(repo.root)
    started = time.monotonic()
    res = commit(repo.root, "-m", "clamp")
    elapsed = time.monotonic() - started
    assert res.returncode == 0 and head(repo.root) != old, res.stderr
    out = res.stderr  # git hands a hook's output to stderr
    assert "localpilot: tests for the staged change (1 file, 2 changed functions/classes)" in out
    assert "add  (function, modified, line 2)  [tested] tests/test_ops.py::test_add" in out
    assert "run: pytest tests/test_ops.py::test_add" in out
    assert "clamp  (function, added, lines 18-21)  [no tests]" in out
    assert (
        "suggest: test_clamp in tests/test_ops.py, checking" in out
        and "- raises `ValueError` for bad input" in out
    )
    assert "localpilot: 1 of 2 without tests · tests found by git grep" in out
    assert elapsed < 10, f"the hook took {elapsed:.1f}s"
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def test_only_the_staged_part_counts_and_unstaged_work_survives(
    hooked: Callable[..., Repo],
) -> None:
    """`git add -p`: part of a file staged; the rest (a changed scale, a new helper) stays in the work tree."""
    repo = hooked()
    repo.write("calc/ops.py", OPS.replace("return a + b", "return b + a"))
    git(repo.root, "add", "calc/ops.py")
    repo.write(
        "calc/ops.py",
        OPS.replace("return a + b", "return b + a").replace("v * factor", "factor * v") + CLAMP,
    )
    before = state(repo.root)
    res = commit(repo.root, "-m", "part")
    assert res.returncode == 0, res.stderr
    assert "add  (function, modified" in res.stderr
    assert "scale" not in res.stderr and "clamp" not in res.stderr
    after = state(repo.root)
    assert after.files == before.files  # unstaged work untouched, byte for byte, mtime too
    assert "factor * v" in git(repo.root, "diff") and "def clamp" in git(repo.root, "diff")
    assert git(repo.root, "diff", "--cached") == ""
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def test_commit_path_uses_gits_temporary_index(hooked: Callable[..., Repo]) -> None:
    """`git commit <path>` commits from a temporary index (GIT_INDEX_FILE); other staged work stays staged."""
    repo = hooked(files={"calc/units.py": "def to_cm(m):\n    return m * 100\n"})
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")  # staged, but not part of this commit
    repo.write(
        "calc/units.py", "def to_cm(m):\n    return m * 100.0\n"
    )  # not staged: `commit <path>` takes it
    before = state(repo.root)
    res = commit(repo.root, "-m", "units", "calc/units.py")
    assert res.returncode == 0, res.stderr
    assert (
        "to_cm  (function, modified, line 2)  [no tests]" in res.stderr
        and "clamp" not in res.stderr
    )
    assert git(repo.root, "diff", "--cached", "--name-only").split() == ["calc/ops.py"]
    assert_untouched(repo.root, before, committed={"calc/units.py"})


def test_commit_all_sees_tracked_changes(hooked: Callable[..., Repo]) -> None:
    repo = hooked()
    repo.write("calc/ops.py", OPS.replace("v * factor", "factor * v"))
    before = state(repo.root)
    res = commit(repo.root, "-a", "-m", "all")
    assert res.returncode == 0, res.stderr
    assert "scale  (function, modified, line 7)  [no tests]" in res.stderr
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def test_git_variables_reach_git_and_no_other_child(
    hooked: Callable[..., Repo], tmp_path: Path
) -> None:
    """Run with --git-dir/--work-tree (git exports GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE to the hook): the hook's
    git calls see them, the model's load check (a child Python) must not. A chained hook proves they were set."""
    repo = hooked("--write", "--budget", "120")
    site, log = tmp_path / "site", tmp_path / "children.jsonl"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import json, os, sys\nif os.environ.get('LP_ENV_LOG'):\n"
        "    with open(os.environ['LP_ENV_LOG'], 'a') as fh:\n"
        "        fh.write(json.dumps({'argv': sys.argv, 'env': {k: v for k, v in os.environ.items() "
        "if k.startswith('GIT_')}}) + '\\n')\n"
    )
    hooks_dir = repo.root / ".git" / "hooks"
    (hooks_dir / hooks.CHAINED).write_text(
        f"#!/bin/sh\nenv | grep '^GIT_' > {tmp_path / 'chained.txt'}\n"
    )
    (hooks_dir / hooks.CHAINED).chmod(0o755)
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    before = state(repo.root)
    res = commit(
        repo.root,
        "-m",
        "env",
        git_args=(f"--git-dir={repo.root / '.git'}", f"--work-tree={repo.root}"),
        env={"PYTHONPATH": str(site), "LP_ENV_LOG": str(log), "LOCALPILOT_LLM": "smollm2-135m"},
    )
    assert res.returncode == 0, res.stderr
    chained = (tmp_path / "chained.txt").read_text()
    assert "GIT_DIR=" in chained and "GIT_INDEX_FILE=" in chained and "GIT_WORK_TREE=" in chained
    assert (
        "clamp  (function, added" in res.stderr
    )  # the hook read the index through those variables
    assert "writing test_clamp with" in res.stderr
    children = [json.loads(line) for line in log.read_text().splitlines()]
    assert children, "no child Python ran (the model check should have)"
    for child in children:
        assert not {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"} & set(child["env"]), child
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def test_missing_model_and_missing_index_still_give_the_mapping(
    hooked: Callable[..., Repo],
) -> None:
    repo = hooked("--write")
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    before = state(repo.root)
    res = commit(repo.root, "-m", "x", env={"LOCALPILOT_LLM": str(repo.root / "missing.gguf")})
    assert res.returncode == 0, res.stderr
    assert "suggest: test_clamp in tests/test_ops.py" in res.stderr
    assert (
        "localpilot: no test skeletons: model file" in res.stderr and "does not exist" in res.stderr
    )
    assert "Traceback" not in res.stderr
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def test_the_index_nominates_tests_and_a_stale_one_is_corrected(
    hooked: Callable[..., Repo], assistant_for: Callable[..., object]
) -> None:
    repo = hooked(
        files={
            "tests/test_scale.py": "from calc.ops import scale\n\n\ndef test_scale():\n"
            "    assert scale([1]) == [2]\n"
        }
    )
    assistant_for(repo).index()  # type: ignore[attr-defined]
    git(repo.root, "rm", "-q", "tests/test_scale.py")  # the index still lists it
    repo.write(
        "tests/test_clamp.py",
        "from calc.ops import clamp\n\n\ndef test_clamp_orders():\n    assert clamp(2) == 1\n",
    )  # the index does not know it yet
    repo.write(
        "calc/ops.py",
        OPS.replace("return a + b", "return b + a").replace("v * factor", "factor * v") + CLAMP,
    )
    git(repo.root, "add", "-A")
    before = state(repo.root)
    res = commit(repo.root, "-m", "stale")
    assert res.returncode == 0, res.stderr
    out = res.stderr
    assert "add  (function, modified, line 2)  [tested] tests/test_ops.py::test_add" in out
    assert (
        "clamp  (function, added, lines 18-21)  [tested] tests/test_clamp.py::test_clamp_orders"
        in out
    )
    assert (
        "scale  (function, modified, line 7)  [no tests]" in out
    )  # its test is deleted in this commit
    assert "tests found by index" in out
    assert "tests in this change: tests/test_clamp.py::test_clamp_orders" in out
    assert_untouched(
        repo.root, before, committed={"calc/ops.py", "tests/test_clamp.py", "tests/test_scale.py"}
    )


def test_merge_in_progress(hooked: Callable[..., Repo]) -> None:
    repo = hooked()
    git(repo.root, "checkout", "-q", "-b", "side")
    repo.write("calc/ops.py", OPS.replace("return a + b", "return a + b + 0"))
    commit(repo.root, "-qam", "side", env={"LOCALPILOT_SKIP": "1"})
    git(repo.root, "checkout", "-q", "main")
    repo.write("calc/ops.py", OPS.replace("return a + b", "return b + a"))
    commit(repo.root, "-qam", "main", env={"LOCALPILOT_SKIP": "1"})
    merge = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "merge", "-q", "side"],
        cwd=repo.root,
        capture_output=True,
        text=True,
    )
    assert merge.returncode != 0 and "CONFLICT" in merge.stdout + merge.stderr
    repo.write("calc/ops.py", OPS.replace("return a + b", "return b + a + 0"))
    git(repo.root, "add", "calc/ops.py")
    before = state(repo.root)
    res = commit(repo.root, "--no-edit")
    assert res.returncode == 0, res.stderr
    assert "add  (function, modified" in res.stderr
    assert len(git(repo.root, "log", "-1", "--format=%P").split()) == 2
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def test_submodule_crlf_binary_deleted_renamed(
    hooked: Callable[..., Repo], make_repo: Callable[..., Repo]
) -> None:
    lib = make_repo({"lib.py": "def helper():\n    return 1\n"})
    repo = hooked(
        files={
            "win/crlf.py": "def crlf(a):\r\n    return a\r\n\r\n\r\ndef other():\r\n    return 2\r\n",
            "old/name.py": "def relocated():\n    return 1\n",
        }
    )
    git(
        repo.root,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(lib.root),
        "vendor/lib",
    )
    commit(repo.root, "-qm", "sub", env={"LOCALPILOT_SKIP": "1"})
    git(
        lib.root,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "up",
    )
    git(
        repo.root / "vendor" / "lib",
        "-c",
        "protocol.file.allow=always",
        "pull",
        "-q",
        "origin",
        "main",
    )
    repo.write(
        "win/crlf.py",
        "def crlf(a):\r\n    return a * 2\r\n\r\n\r\ndef other():\r\n    return 2\r\n",
    )
    repo.write("assets/blob.py", b"def x():\n\x00\x01binary\n")
    git(repo.root, "rm", "-q", "calc/ops.py")
    git(repo.root, "mv", "old/name.py", "new_name.py")
    git(repo.root, "add", "-A")
    before = state(repo.root)
    res = commit(repo.root, "-m", "mixed")
    assert res.returncode == 0, res.stderr
    out = res.stderr
    assert "crlf  (function, modified, line 2)  [no tests]" in out and "other" not in out
    assert "note: vendor/lib: submodule, not analysed" in out
    assert "note: assets/blob.py: binary, not analysed" in out
    assert "note: old/name.py renamed to new_name.py" in out and "relocated" not in out
    assert (
        "add  (function, removed, lines 1-2)  [removed] tests still refer to it: tests/test_ops.py::test_add"
        in out
    )
    assert "Traceback" not in out
    assert_untouched(repo.root, before, committed={"all"})


def test_empty_commit_is_silent_and_a_first_commit_works(
    hooked: Callable[..., Repo], make_repo: Callable[..., Repo]
) -> None:
    repo = hooked()
    before = state(repo.root)
    res = commit(repo.root, "--allow-empty", "-m", "empty")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert_untouched(repo.root, before)
    first = make_repo(BASE, commit=False)  # no HEAD yet
    assert main(["hook", "install", "--repo", str(first.root)]) == 0
    git(first.root, "add", "-A")
    res = commit(first.root, "-m", "first")
    assert (
        res.returncode == 0
        and "add  (function, added, lines 1-2)  [tested] tests/test_ops.py::test_add" in res.stderr
    ), res.stderr
    assert "tests in this change: tests/test_ops.py::test_add" in res.stderr


def test_strict_blocks_untested_code_and_skips_work(hooked: Callable[..., Repo]) -> None:
    repo = hooked("--strict")
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    before, old = state(repo.root), head(repo.root)
    res = commit(repo.root, "-m", "untested")
    assert res.returncode == 1 and head(repo.root) == old
    assert "localpilot: strict: 1 changed function(s)/class(es) without tests" in res.stderr
    assert_untouched(repo.root, before)  # still staged, nothing lost
    assert commit(repo.root, "-m", "skip", env={"LOCALPILOT_SKIP": "1"}).returncode == 0
    repo.write("calc/ops.py", OPS + CLAMP + CLAMP.replace("clamp", "clamp2"))
    git(repo.root, "add", "calc/ops.py")
    res = commit(repo.root, "--no-verify", "-m", "no verify")
    assert res.returncode == 0 and res.stderr == ""
    repo.write(
        "calc/ops.py", OPS.replace("return a + b", "return b + a")
    )  # tested code passes strict
    repo.write(
        "tests/test_clamp.py",
        "from calc.ops import clamp, clamp2\n\n\ndef test_clamps():\n"
        "    assert clamp(2) == clamp2(2)\n",
    )
    git(repo.root, "add", "-A")
    res = commit(repo.root, "-m", "tested")
    assert res.returncode == 0, res.stderr


def test_a_team_makes_the_hook_strict_in_the_repo_config(hooked: Callable[..., Repo]) -> None:
    repo = hooked(files={".localpilot.toml": "hook_strict = true\n"})
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    assert commit(repo.root, "-m", "x").returncode == 1


def test_budget_bounds_the_model_step(hooked: Callable[..., Repo], default_llm_path: Path) -> None:
    repo = hooked("--write", "--budget", "3")
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    before = state(repo.root)
    started = time.monotonic()
    res = commit(repo.root, "-m", "budget", env={"LOCALPILOT_LLM": str(default_llm_path)})
    elapsed = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    assert "suggest: test_clamp" in res.stderr  # the mapping came first
    assert "budget" in res.stderr.split("suggest: test_clamp", 1)[1]
    assert elapsed < 3 + 1 + 6, (
        f"{elapsed:.1f}s"
    )  # budget + grace + start-up on a busy 2-core machine
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def _start_commit(repo: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-m", "k"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,
    )
    lines: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if "writing test_clamp with" in line:
            return proc, lines
    raise AssertionError("".join(lines))


def _hook_python(repo: Path) -> int:
    for pid in _processes_in(repo):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"localpilot" in cmd and b"hook" in cmd and b"run" in cmd:
            return pid
    raise AssertionError("the hook's Python is not running")


def _wait_gone(repo: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while _processes_in(repo) and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture
def mid_model(hooked: Callable[..., Repo]) -> Iterator[tuple[Repo, State, dict[str, str]]]:
    repo = hooked("--write", "--budget", "120")
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    yield repo, state(repo.root), {"LOCALPILOT_LLM": "smollm2-135m"}


def test_killed_mid_run_leaves_nothing_and_the_commit_goes_on(
    mid_model: tuple[Repo, State, dict[str, str]],
) -> None:
    repo, before, env = mid_model
    old = head(repo.root)
    proc, _ = _start_commit(repo.root, env)
    os.kill(_hook_python(repo.root), signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and head(repo.root) != old
    assert "localpilot: hook stopped (status 137); the commit goes on" in err
    _wait_gone(repo.root)
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def test_ctrl_c_mid_run_aborts_cleanly(mid_model: tuple[Repo, State, dict[str, str]]) -> None:
    repo, before, env = mid_model
    old = head(repo.root)
    proc, _ = _start_commit(repo.root, env)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    proc.communicate(timeout=60)
    assert proc.returncode != 0 and head(repo.root) == old
    _wait_gone(repo.root)
    assert_untouched(repo.root, before)  # still staged, nothing lost, no lock


def test_write_adds_a_skeleton_from_the_default_model(
    hooked: Callable[..., Repo], default_llm_path: Path
) -> None:
    repo = hooked("--write", "--budget", "240")
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    before = state(repo.root)
    res = commit(
        repo.root, "-m", "write", env={"LOCALPILOT_LLM": str(default_llm_path)}, timeout=300
    )
    assert res.returncode == 0, res.stderr
    skeleton = res.stderr.split(f"  test_clamp for clamp (by {default_llm_path.name}, ", 1)[1]
    assert "cut at the time budget" not in skeleton.splitlines()[0]
    assert "def test_" in skeleton and "clamp(" in skeleton
    assert_untouched(repo.root, before, committed={"calc/ops.py"})


def test_install_chains_an_existing_hook_and_uninstall_restores_it(
    make_repo: Callable[..., Repo], tmp_path: Path
) -> None:
    repo = make_repo(BASE)
    hook = repo.root / ".git" / "hooks" / "pre-commit"
    original = (
        f'#!/bin/sh\n# team hook\necho ran >> {tmp_path / "ran.txt"}\n[ -z "$FAIL" ]\n'.encode()
    )
    hook.write_bytes(original)
    hook.chmod(0o750)
    assert main(["hook", "install", "--repo", str(repo.root)]) == 0
    assert hooks.is_ours(hook) and (hook.parent / hooks.CHAINED).read_bytes() == original
    assert (
        main(["hook", "install", "--repo", str(repo.root)]) == 0
    )  # again: updates ours, chains nothing new
    assert (hook.parent / hooks.CHAINED).read_bytes() == original
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    res = commit(repo.root, "-m", "blocked", env={"FAIL": "1"})
    assert (
        res.returncode == 1 and "localpilot" not in res.stderr
    )  # the chained hook's verdict stands
    res = commit(repo.root, "-m", "both")
    assert res.returncode == 0 and "clamp  (function, added" in res.stderr
    assert (tmp_path / "ran.txt").read_text() == "ran\nran\n"
    assert main(["hook", "uninstall", "--repo", str(repo.root)]) == 0
    assert hook.read_bytes() == original and stat.S_IMODE(hook.stat().st_mode) == 0o750
    assert not (hook.parent / hooks.CHAINED).exists()
    assert main(["hook", "uninstall", "--repo", str(repo.root)]) == 0  # not ours: left alone
    assert hook.read_bytes() == original


def test_install_refuses_a_managed_hooks_path_and_survives_a_gone_python(
    make_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(BASE)
    git(repo.root, "config", "core.hooksPath", ".githooks")
    assert main(["hook", "install", "--repo", str(repo.root)]) == 1
    assert "core.hooksPath is set to '.githooks'" in capsys.readouterr().err
    assert (
        not (repo.root / ".githooks").exists()
        and not (repo.root / ".git" / "hooks" / "pre-commit").exists()
    )
    git(repo.root, "config", "--unset", "core.hooksPath")
    hooks.install(Git(repo.root), python=str(repo.root / "gone" / "python3"))
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    res = commit(repo.root, "-m", "x")
    assert res.returncode == 0 and "gone/python3 is gone" in res.stderr
    assert main(["hook", "status", "--repo", str(repo.root)]) == 0
    assert "installed in" in capsys.readouterr().out


def test_worktree_and_subdirectory_commits(hooked: Callable[..., Repo], tmp_path: Path) -> None:
    repo = hooked()
    wt = tmp_path / "wt"
    git(repo.root, "worktree", "add", "-q", "-b", "feature", str(wt))
    (wt / "calc" / "ops.py").write_text(OPS + CLAMP)
    git(wt, "add", "calc/ops.py")
    before = state(wt)
    res = commit(wt / "calc", "-m", "in a worktree")
    assert res.returncode == 0 and "clamp  (function, added" in res.stderr, res.stderr
    assert state(wt).files == before.files


def test_pre_commit_framework_manifest(make_repo: Callable[..., Repo]) -> None:
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    ids = {h["id"]: h for h in manifest}
    assert set(ids) == {"localpilot-suggest-tests", "localpilot-suggest-tests-system"}
    for h in manifest:
        assert h["entry"] == "localpilot hook run" and h["pass_filenames"] is False
    repo = make_repo(
        BASE
    )  # run the entry as the framework does: from the repo root, staged files present
    repo.write("calc/ops.py", OPS + CLAMP)
    git(repo.root, "add", "calc/ops.py")
    res = subprocess.run(
        [sys.executable, "-m", "localpilot", *ids["localpilot-suggest-tests"]["entry"].split()[1:]],
        cwd=repo.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and "clamp  (function, added" in res.stdout, res.stderr
    strict = subprocess.run(
        [sys.executable, "-m", "localpilot", "hook", "run", "--strict"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert strict.returncode == 1
