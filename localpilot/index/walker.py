"""Which files a repo holds: what git tracks or would track, never what it ignores."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from localpilot.errors import LocalpilotError, NotAGitRepo


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except FileNotFoundError as exc:
        raise LocalpilotError("git is not installed or not on PATH") from exc


def find_repo_root(path: Path) -> Path:
    """The top of the git work tree containing ``path``."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise NotAGitRepo(f"{path} does not exist")
    start = path if path.is_dir() else path.parent
    res = _git(start, "rev-parse", "--show-toplevel")
    if res.returncode != 0:
        raise NotAGitRepo(f"{path} is not inside a git repository (run `git init` there, or pass --repo)")
    return Path(os.fsdecode(res.stdout.strip())).resolve()


def list_files(root: Path) -> list[str]:
    """Tracked plus untracked-but-not-ignored paths, repo-relative, sorted, deduplicated.

    Paths git prints that are not valid UTF-8 come back with surrogate escapes; callers skip them.
    GIT_OPTIONAL_LOCKS=0 keeps git from refreshing (writing) the index while we only read.
    """
    res = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if res.returncode != 0:
        raise NotAGitRepo(f"git ls-files failed in {root}: {res.stderr.decode(errors='replace').strip()}")
    names = {os.fsdecode(p) for p in res.stdout.split(b"\0") if p}
    return sorted(names)


def head_commit(root: Path) -> str | None:
    """HEAD's commit id, or None in a repo without commits."""
    res = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    return res.stdout.decode().strip() or None if res.returncode == 0 else None
