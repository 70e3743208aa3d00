"""Lines of a repository file as they are on disk now, secrets cut out: what tools show beside a hit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localpilot.errors import LocalpilotError
from localpilot.index.secrets import redact
from localpilot.paths import inside


def read_snippet(
    root: Path, path: str, start: int = 1, end: int = 0, max_lines: int = 400
) -> dict[str, Any]:
    """Lines ``start``..``end`` (1-based, inclusive; ``end`` 0: start+100) of ``path``. Raises LocalpilotError
    for a path outside the repository or one that is not a file."""
    full = inside(root, path)
    if full is None:
        raise LocalpilotError(f"{path!r} is outside the repository")
    if not full.is_file():
        raise LocalpilotError(f"{path!r} is not a file in the repository")
    rel = full.relative_to(root.resolve()).as_posix()
    lines = redact(full.read_text(encoding="utf-8", errors="replace"), rel)[0].splitlines()
    start = max(1, int(start))
    end = min(len(lines), int(end) if end and int(end) >= start else start + 100, start + max_lines)
    return {
        "path": rel,
        "start_line": start,
        "end_line": end,
        "text": "\n".join(lines[start - 1 : end]),
    }
