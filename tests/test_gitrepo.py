"""localpilot.gitrepo against real git repositories: discovery, listings, ignores, HEAD, the hook's environment,
exact bytes, and errors that carry git's message."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Repo, git

from localpilot.errors import GitError, NotAGitRepo
from localpilot.gitrepo import NO_GIT, GitRepo, find_repo_root
from localpilot.index.walker import list_files
from localpilot.index.watcher import git_ignored

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_enclosing_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git must not walk up out of tmp_path into a repository that happens to enclose it."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def test_discovery_from_a_subdirectory_or_a_file(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo({"pkg/mod.py": "x = 1\n"})
    root = repo.root.resolve()
    assert find_repo_root(repo.root / "pkg") == root
    assert find_repo_root(repo.root / "pkg" / "mod.py") == root
    assert GitRepo.discover(repo.root / "pkg").root == root


def test_discovery_outside_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(
        NotAGitRepo, match=r"not inside a git repository \(run `git init` there, or pass --repo\)$"
    ):
        find_repo_root(plain)
    with pytest.raises(NotAGitRepo, match="does not exist"):
        GitRepo.discover(tmp_path / "missing")


def test_ls_files_lists_tracked_and_untracked_never_ignored(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo(
        {"a.py": "a\n", ".gitignore": "build/\n*.log\n", "dir with space/ünï côde.py": "u\n"}
    )
    repo.write("new file.txt", "untracked\n")
    repo.write("build/out.o", "ignored\n")
    repo.write("debug.log", "ignored\n")
    expected = [".gitignore", "a.py", "dir with space/ünï côde.py", "new file.txt"]
    assert GitRepo(repo.root).ls_files() == expected
    assert list_files(repo.root) == expected


def test_check_ignore_names_only_ignored_paths(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo({".gitignore": "*.log\nbuild/\n", "kept.log": "tracked despite the rule\n"})
    git(repo.root, "add", "-f", "kept.log")
    asked = {"build/out.o", "a b.log", "src/main.py", "kept.log", "ünï.log"}
    assert GitRepo(repo.root).check_ignore(asked) == {"build/out.o", "a b.log", "ünï.log"}
    assert GitRepo(repo.root).check_ignore([]) == set()
    assert git_ignored(repo.root, asked) == {"build/out.o", "a b.log", "ünï.log"}


def test_head_commit_is_none_before_the_first_commit(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo()
    gr = GitRepo(repo.root)
    assert gr.head_commit() is None and not gr.has_head()
    repo.write("a.py", "a\n")
    repo.commit()
    head = git(repo.root, "rev-parse", "HEAD").strip()
    assert gr.head_commit() == head and len(head) == 40 and gr.has_head()
    assert gr.rev("main") == head
    with pytest.raises(GitError, match="'nope' is not a commit"):
        gr.rev("nope")


def test_recent_paths_are_most_recent_first(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo()
    gr = GitRepo(repo.root)
    assert gr.recent_paths() == []  # no commits yet
    repo.write("old.py", "a\n")
    repo.write("dir/with space.py", "b\n")
    repo.commit()
    repo.write("new.py", "c\n")
    repo.commit()
    assert gr.recent_paths() == ["new.py", "dir/with space.py", "old.py"]
    assert gr.recent_paths(commits=1) == ["new.py"]


def test_git_index_file_in_env_is_honoured_and_nothing_else_sees_it(
    make_repo: Callable[..., Repo], tmp_path: Path
) -> None:
    """The hook's case: git names a temporary index; our commands must read that one, not .git/index."""
    repo = make_repo({"a.py": "a\n"})
    repo.write("b.py", "b\n")
    alt = tmp_path / "alt-index"
    subprocess.run(
        ["git", "-C", str(repo.root), "add", "b.py"],
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_INDEX_FILE": str(alt)},
    )
    real_index = (repo.root / ".git" / "index").read_bytes()
    assert GitRepo(repo.root, {"GIT_INDEX_FILE": str(alt)}).out("ls-files", "-z") == b"b.py\0"
    assert GitRepo(repo.root).out("ls-files", "-z") == b"a.py\0"
    assert "GIT_INDEX_FILE" not in os.environ
    assert (repo.root / ".git" / "index").read_bytes() == real_index


def test_reads_never_write_the_index(make_repo: Callable[..., Repo]) -> None:
    """``git status`` would refresh a stale index; GIT_OPTIONAL_LOCKS=0 keeps it from writing."""
    repo = make_repo({"a.py": "a\n"})
    index = repo.root / ".git" / "index"
    os.utime(repo.root / "a.py", (1, 1))  # stat data no longer matches the index entry
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    gr = GitRepo(repo.root)
    gr.run("status", "--porcelain")
    gr.ls_files()
    gr.check_ignore(["x.log"])
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before


def test_blobs_come_back_byte_for_byte(make_repo: Callable[..., Repo]) -> None:
    data = b"\x00\xff binary\r\n\n\n"
    repo = make_repo({"bin.dat": data, "big.txt": "x" * 100})
    oids = git(repo.root, "ls-files", "-s").split()
    small, big = oids[oids.index("bin.dat") - 2], oids[oids.index("big.txt") - 2]
    assert GitRepo(repo.root).cat_blobs([small, big, small], max_bytes=50) == {small: data}


def test_a_failing_command_raises_with_gits_message(make_repo: Callable[..., Repo]) -> None:
    gr = GitRepo(make_repo({"a.py": "a\n"}).root)
    with pytest.raises(
        GitError, match=r"git cat-file failed in .*: fatal: Not a valid object name deadbeef"
    ):
        gr.run("cat-file", "-p", "deadbeef")
    res = gr.run("-c", "core.quotepath=off", "cat-file", "-p", "deadbeef", check=False)
    assert res.returncode != 0 and res.message() == "fatal: Not a valid object name deadbeef"
    with pytest.raises(GitError, match=r"git slow failed.*did not complete in 0\.2 secs"):
        gr.run("-c", "alias.slow=!sleep 5", "slow", timeout=0.2)


def test_a_missing_git_binary_is_named(make_repo: Callable[..., Repo], tmp_path: Path) -> None:
    """Both ways git can be missing: GitPython's import-time check, and a command that cannot start."""
    repo = make_repo()
    code = (
        "from pathlib import Path\nfrom localpilot.errors import GitError\nfrom localpilot.gitrepo import GitRepo\n"
        f"try:\n    GitRepo(Path({str(repo.root)!r})).head_commit()\nexcept GitError as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "PATH": str(tmp_path / "no-bin"), "PYTHONPATH": str(ROOT)}
    env.pop("GIT_PYTHON_REFRESH", None)
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert res.stdout.strip() == NO_GIT, res.stderr
    env["GIT_PYTHON_REFRESH"] = "quiet"  # the import goes through; the first command finds no git
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert res.stdout.strip() == NO_GIT, res.stderr
