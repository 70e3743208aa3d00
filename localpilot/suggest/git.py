"""Read a change from git without writing anything: the staged index, a revision range, or the work tree.

Every git call here reads, through :mod:`localpilot.gitrepo` (``GIT_OPTIONAL_LOCKS=0`` keeps git from refreshing
the index, the one write a read command may do), and nothing runs ``stash``, ``checkout`` or ``add``. Inside a
hook git hands us the index to read through ``GIT_INDEX_FILE`` (a temporary one for ``git commit <path>``,
``index.lock`` for ``commit -a``); :func:`localpilot.gitrepo.take_git_env` moves such repository variables out of
``os.environ`` so that they reach our git calls (as :class:`Git`'s ``env``) and no other child process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from localpilot.errors import GitError
from localpilot.gitrepo import ZERO_OID, GitRepo

#: The read-only git commands of one repository (with the hook's repository variables), as this layer names it.
Git = GitRepo
#: Larger files are listed but not analysed (generated code, data).
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class FileChange:
    """One path in a change: ``status`` A(dded), M(odified), D(eleted), R(enamed), T(ype change), U(nmerged)."""

    path: str
    status: str
    old_path: str | None = None
    old_oid: str | None = None
    new_oid: str | None = None  # None: read the new content from the work tree
    old_mode: str = ""
    new_mode: str = ""

    @property
    def kind(self) -> str:
        """regular | submodule | symlink (from the modes)."""
        mode = self.new_mode if self.status != "D" else self.old_mode
        return {"160000": "submodule", "120000": "symlink"}.get(mode, "regular")


class Snapshot:
    """Where the new side of a change lives, and how to read and search it."""

    label = "snapshot"
    whole_files = False  # every definition counts as changed (PATH mode)

    def __init__(self, git: Git) -> None:
        self.git = git
        self.notes: list[str] = []
        self._entries: dict[str, str] | None = None

    def changes(self) -> list[FileChange]:
        raise NotImplementedError

    def contents(self, changes: list[FileChange]) -> dict[tuple[str, str], bytes]:
        """("old" | "new", path) -> bytes for each change, in one batch per side (files too big left out)."""
        blobs = self.git.cat_blobs(
            [c.old_oid for c in changes if c.old_oid] + [c.new_oid for c in changes if c.new_oid],
            MAX_FILE_BYTES,
        )
        from_disk = self.read_many(
            [c.path for c in changes if c.new_oid is None and c.status != "D"]
        )
        out: dict[tuple[str, str], bytes] = {}
        for c in changes:
            old = blobs.get(c.old_oid or "")
            new = blobs.get(c.new_oid or "") if c.new_oid else from_disk.get(c.path)
            if old is not None:
                out[("old", c.path)] = old
            if new is not None:
                out[("new", c.path)] = new
        return out

    def entries(self) -> dict[str, str]:
        """Every file in the snapshot: path -> blob id ("" when it is read from disk)."""
        raise NotImplementedError

    def files(self) -> list[str]:
        if self._entries is None:
            self._entries = self.entries()
        return sorted(self._entries)

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes]:
        """Contents of ``paths`` that exist in the snapshot (files over MAX_FILE_BYTES left out)."""
        if self._entries is None:
            self._entries = self.entries()
        oids = {p: self._entries[p] for p in paths if self._entries.get(p)}
        blobs = self.git.cat_blobs(oids.values(), MAX_FILE_BYTES)
        out = {
            p: blobs[o] for p, o in oids.items() if o in blobs and len(blobs[o]) <= MAX_FILE_BYTES
        }
        for p in paths:
            if p in self._entries and not self._entries[p]:
                data = _read_disk(self.git.root, p)
                if data is not None:
                    out[p] = data
        return out

    def grep_args(self) -> list[str]:
        """Where ``git grep`` should look."""
        raise NotImplementedError

    def grep(self, words: Sequence[str], pathspecs: Sequence[str]) -> dict[str, list[int]]:
        """Files containing any of ``words`` (whole words): path -> matching line numbers."""
        if not words:
            return {}
        args = ["grep", "-n", "-z", "-I", "-w", "-F", "--no-color", "--full-name"]
        for w in words:
            args += ["-e", w]
        res = self.git.run(*args, *self.grep_args(), "--", *pathspecs, check=False)
        if res.returncode not in (0, 1):
            raise GitError(f"git grep failed in {self.git.root}: {res.message()}")
        out: dict[str, list[int]] = {}
        prefix = self.grep_prefix()
        for line in res.stdout.split(b"\n"):
            parts = line.split(b"\0", 2)
            if len(parts) < 3 or not parts[1].isdigit():
                continue
            path = os.fsdecode(parts[0])
            if prefix and path.startswith(prefix):
                path = path[len(prefix) :]
            out.setdefault(path, []).append(int(parts[1]))
        return out

    def grep_prefix(self) -> str:
        return ""


class StagedSnapshot(Snapshot):
    """What ``git commit`` is about to record: the index (``GIT_INDEX_FILE``) against HEAD."""

    label = "staged"

    def changes(self) -> list[FileChange]:
        base = ["HEAD"] if self.git.has_head() else []
        return _parse_raw(
            self.git.out(
                "diff",
                "--cached",
                "--raw",
                "-z",
                "-M",
                "--no-abbrev",
                "--no-ext-diff",
                "--ignore-submodules=none",
                *base,
            ),
            worktree=False,
        )

    def entries(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for rec in self.git.out("ls-files", "-s", "-z").split(b"\0"):
            if not rec:
                continue
            meta, _, path = rec.partition(b"\t")
            mode, oid, stage = meta.decode().split()
            if mode != "160000" and stage in ("0", "2"):  # stage 2: ours, during a conflicted merge
                out.setdefault(os.fsdecode(path), oid)
        return out

    def grep_args(self) -> list[str]:
        return ["--cached"]


class RangeSnapshot(Snapshot):
    """``A..B``: the commits between two revisions, read from B's tree."""

    def __init__(self, git: Git, base: str, head: str) -> None:
        super().__init__(git)
        self.base, self.head = git.rev(base), git.rev(head)
        self.label = f"{base}..{head}"

    def changes(self) -> list[FileChange]:
        return _parse_raw(
            self.git.out(
                "diff", "--raw", "-z", "-M", "--no-abbrev", "--no-ext-diff", self.base, self.head
            ),
            worktree=False,
        )

    def entries(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for rec in self.git.out("ls-tree", "-r", "-z", "--full-tree", self.head).split(b"\0"):
            meta, _, path = rec.partition(b"\t")
            fields = meta.decode().split()
            if len(fields) == 3 and fields[1] == "blob":
                out[os.fsdecode(path)] = fields[2]
        return out

    def grep_args(self) -> list[str]:
        return [self.head]

    def grep_prefix(self) -> str:
        return f"{self.head}:"


class WorktreeSnapshot(Snapshot):
    """The work tree against a revision (``git diff REV``), or given paths as if every line had changed."""

    def __init__(self, git: Git, base: str | None = None, paths: Sequence[str] = ()) -> None:
        super().__init__(git)
        self.base = git.rev(base) if base else None
        self.paths = list(paths)
        self.whole_files = self.base is None
        self.label = f"{base}..work tree" if base else "work tree"

    def changes(self) -> list[FileChange]:
        if self.base is None:
            files = self.files()
            wanted = [
                p
                for p in files
                if any(
                    p == q or p.startswith(q.rstrip("/") + "/") or q in ("", ".")
                    for q in self.paths
                )
            ]
            return [FileChange(path=p, status="A", new_mode="100644") for p in wanted]
        return _parse_raw(
            self.git.out("diff", "--raw", "-z", "-M", "--no-abbrev", "--no-ext-diff", self.base),
            worktree=True,
        )

    def entries(self) -> dict[str, str]:
        res = self.git.out("ls-files", "-z", "--cached", "--others", "--exclude-standard")
        return {
            os.fsdecode(p): ""
            for p in res.split(b"\0")
            if p and (self.git.root / os.fsdecode(p)).is_file()
        }

    def grep_args(self) -> list[str]:
        return ["--untracked"]


def _read_disk(root: Path, rel: str) -> bytes | None:
    path = root / rel
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _parse_raw(raw: bytes, worktree: bool) -> list[FileChange]:
    """``git diff --raw -z`` records: ``:old_mode new_mode old_oid new_oid status\\0path\\0[new_path\\0]``."""
    fields = raw.split(b"\0")
    out: list[FileChange] = []
    i = 0
    while i < len(fields):
        head = fields[i].decode(errors="replace")
        if not head.startswith(":"):
            i += 1
            continue
        old_mode, new_mode, old_oid, new_oid, status = head[1:].split()[:5]
        letter = status[0]
        if letter in "RC":
            old, new = os.fsdecode(fields[i + 1]), os.fsdecode(fields[i + 2])
            i += 3
        else:
            old = new = os.fsdecode(fields[i + 1])
            i += 2
        out.append(
            FileChange(
                path=new,
                status=letter,
                old_path=old if letter in "RC" else None,
                old_oid=None if old_oid == ZERO_OID else old_oid,
                new_oid=None if (new_oid == ZERO_OID or worktree) else new_oid,
                old_mode=old_mode,
                new_mode=new_mode,
            )
        )
    return out
