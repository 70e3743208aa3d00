"""Path safety for anything that names a file on behalf of a client (editor, agent, TUI)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote


def inside(root: Path, rel: str) -> Path | None:
    """``root/rel`` resolved, or None when it would leave ``root``: ``..`` (also percent-encoded),
    absolute paths, a sibling such as ``/repo-evil``, or a symlink pointing out."""
    decoded = unquote(rel)
    if not decoded or "\0" in decoded or Path(decoded).is_absolute():
        return None
    try:
        base = root.resolve()
        full = (base / decoded).resolve()
        full.relative_to(base)
    except (OSError, ValueError, RuntimeError):
        return None
    return full
