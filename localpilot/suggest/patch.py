"""A unified diff as a change: what an agent or editor proposes (``suggest_tests(diff=...)``), applied in memory
to the work tree (or recognised as already applied). Nothing is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from localpilot.errors import LocalpilotError
from localpilot.suggest.git import MAX_FILE_BYTES, FileChange, Git, WorktreeSnapshot, _read_disk

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class FilePatch:
    old_path: str | None  # None: the patch creates the file
    new_path: str | None  # None: the patch deletes it
    hunks: list[tuple[int, list[str], list[str]]] = field(
        default_factory=list
    )  # (old start, old lines, new lines)


def parse(diff: str) -> list[FilePatch]:
    """The files and hunks of a unified diff (``git diff`` or ``diff -u`` style)."""
    patches: list[FilePatch] = []
    lines = diff.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            patches.append(FilePatch(_path(lines[i][4:]), _path(lines[i + 1][4:])))
            i += 2
            continue
        m = _HUNK.match(lines[i])
        if m and patches:
            old_n = int(m.group(2)) if m.group(2) is not None else 1
            new_n = int(m.group(4)) if m.group(4) is not None else 1
            old: list[str] = []
            new: list[str] = []
            i += 1
            while i < len(lines) and (len(old) < old_n or len(new) < new_n):
                line = lines[i]
                tag, body = (line[:1], line[1:]) if line else (" ", "")
                if tag in (" ", "-"):
                    old.append(body)
                if tag in (" ", "+"):
                    new.append(body)
                if tag not in (" ", "-", "+", "\\"):
                    break
                i += 1
            patches[-1].hunks.append((int(m.group(1)), old, new))
            continue
        i += 1
    if not patches:
        raise LocalpilotError("the diff has no file headers (--- a/path, +++ b/path)")
    return patches


def _path(header: str) -> str | None:
    name = header.split("\t", 1)[0].strip()
    if name == "/dev/null":
        return None
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    return name[2:] if name[:2] in ("a/", "b/") else name


def apply(
    text: str, hunks: list[tuple[int, list[str], list[str]]], reverse: bool = False
) -> str | None:
    """``text`` with the hunks applied (each found near its line number, as patch does); None if one does not fit."""
    lines = text.split("\n")
    offset = 0
    for start, old, new in hunks:
        find, put = (new, old) if reverse else (old, new)
        at = _locate(lines, find, max(start - 1 + offset, 0))
        if at is None:
            return None
        lines[at : at + len(find)] = put
        offset += len(put) - len(find)
    return "\n".join(lines)


def _locate(lines: list[str], block: list[str], guess: int) -> int | None:
    norm = [b.rstrip("\r") for b in block]
    for delta in range(len(lines) + 1):
        for at in (guess - delta, guess + delta) if delta else (guess,):
            if 0 <= at <= len(lines) - len(block) and all(
                lines[at + k].rstrip("\r") == norm[k] for k in range(len(block))
            ):
                return at
    return None


class DiffSnapshot(WorktreeSnapshot):
    """The work tree with a unified diff applied (or, when it already is, the work tree as the new side)."""

    def __init__(self, git: Git, diff: str) -> None:
        super().__init__(git)
        self.label = "proposed"
        self.whole_files = False
        self._texts: dict[tuple[str, str], bytes] = {}
        self._changes: list[FileChange] = []
        for fp in parse(diff):
            self._add(fp)

    def _add(self, fp: FilePatch) -> None:
        path = fp.new_path or fp.old_path or ""
        disk = _read_disk(self.git.root, fp.old_path or path)
        current = disk.decode("utf-8", "replace") if disk is not None else None
        old: str | None
        new: str | None
        if fp.old_path is None:  # creates the file
            created = "\n".join(fp.hunks[0][2]) + "\n" if fp.hunks else ""
            old, new = None, created
        elif current is None:
            self.notes.append(f"{path}: not in the work tree, left out")
            return
        elif fp.new_path is None:
            old, new = current, None
        elif (forward := apply(current, fp.hunks)) is not None:
            old, new = current, forward
        elif (backward := apply(current, fp.hunks, reverse=True)) is not None:
            old, new = backward, current  # the work tree already has it
        else:
            self.notes.append(f"{path}: the diff does not apply to the work tree, left out")
            return
        status = (
            "A"
            if old is None
            else "D"
            if new is None
            else "R"
            if fp.old_path != fp.new_path
            else "M"
        )
        for side, text in (("old", old), ("new", new)):
            if text is not None and len(text) <= MAX_FILE_BYTES:
                self._texts[(side, path)] = text.encode("utf-8")
        self._changes.append(
            FileChange(
                path=path,
                status=status,
                old_path=fp.old_path if status == "R" else None,
                new_mode="100644",
                old_mode="100644",
            )
        )

    def changes(self) -> list[FileChange]:
        return list(self._changes)

    def contents(self, changes: list[FileChange]) -> dict[tuple[str, str], bytes]:
        return {k: v for k, v in self._texts.items() if any(c.path == k[1] for c in changes)}

    def entries(self) -> dict[str, str]:
        out = super().entries()
        for c in self._changes:
            if c.status == "D":
                out.pop(c.path, None)
            else:
                out[c.path] = ""
        return out

    def read_many(self, paths: list[str]) -> dict[str, bytes]:  # type: ignore[override]
        out = super().read_many([p for p in paths if ("new", p) not in self._texts])
        out.update({p: self._texts[("new", p)] for p in paths if ("new", p) in self._texts})
        return out


def change_of(
    root: Path, path: str | None = None, diff: str | None = None
) -> DiffSnapshot | WorktreeSnapshot:
    """The change a tool asks about: a unified ``diff`` against the work tree, or every function and class of
    the file or directory ``path``."""
    git = Git(root)
    if diff:
        return DiffSnapshot(git, diff)
    if not path:
        raise LocalpilotError("give a change: a snapshot, a path or a diff")
    full = (root / path).resolve()
    if not full.exists() or not full.is_relative_to(root):
        raise LocalpilotError(f"{path} is not a file or directory of {root}")
    return WorktreeSnapshot(git, paths=[full.relative_to(root).as_posix()])
