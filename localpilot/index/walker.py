"""Which files a repo holds: what git tracks or would track, never what it ignores (git via localpilot.gitrepo)."""

from __future__ import annotations

from pathlib import Path

from localpilot.gitrepo import GitRepo, find_repo_root

__all__ = ["find_repo_root", "head_commit", "list_files", "recent_paths"]


def list_files(root: Path) -> list[str]:
    """Tracked plus untracked-but-not-ignored paths, repo-relative, sorted, deduplicated.

    Paths git prints that are not valid UTF-8 come back with surrogate escapes; callers skip them.
    GIT_OPTIONAL_LOCKS=0 (set by GitRepo) keeps git from refreshing (writing) the index while we only read.
    """
    return GitRepo(root).ls_files()


def head_commit(root: Path) -> str | None:
    """HEAD's commit id, or None in a repo without commits."""
    return GitRepo(root).head_commit()


def recent_paths(root: Path, commits: int = 100) -> list[str]:
    """Paths recent commits touched, most recent first: what a user is likely to ask about."""
    return GitRepo(root).recent_paths(commits)
