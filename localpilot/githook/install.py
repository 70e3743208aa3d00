"""Install and remove the pre-commit hook: a small POSIX sh script that runs this Python's localpilot.

An existing pre-commit hook is chained, never overwritten: it is renamed to ``pre-commit.localpilot-chained``
(bytes and mode untouched) and runs first; ``uninstall`` renames it back.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from localpilot.errors import LocalpilotError
from localpilot.suggest.git import Git

MARKER = "# localpilot pre-commit hook"
CHAINED = "pre-commit.localpilot-chained"
#: The Python exits with this when --strict finds untested code; the script turns it into 1 and every other
#: failure (a crash, a kill, a missing install) into 0, so only a deliberate verdict can block a commit.
STRICT_EXIT = 99

SCRIPT = """#!/bin/sh
{marker} (v1): suggests tests for the staged change; advisory unless --strict.
# Installed by `localpilot hook install`; `localpilot hook uninstall` removes it and restores a chained hook.
# Skip it once with LOCALPILOT_SKIP=1 git commit ... or git commit --no-verify.
LOCALPILOT_PYTHON={python}
chained="$(dirname "$0")/{chained}"
if [ -f "$chained" ] && [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
case "${{LOCALPILOT_SKIP:-}}" in 1|true|yes|on) exit 0 ;; esac
if [ ! -x "$LOCALPILOT_PYTHON" ]; then
    echo "localpilot: hook skipped: $LOCALPILOT_PYTHON is gone (run \\`localpilot hook install\\` again)" >&2
    exit 0
fi
"$LOCALPILOT_PYTHON" -I -m localpilot hook run --strict-exit {strict_exit}{args} </dev/null
status=$?
[ "$status" -eq 0 ] && exit 0
[ "$status" -eq {strict_exit} ] && exit 1
echo "localpilot: hook stopped (status $status); the commit goes on" >&2
exit 0
"""


@dataclass
class HookPaths:
    hooks_dir: Path
    hook: Path
    chained: Path


def hook_paths(git: Git) -> HookPaths:
    """Where this repository's pre-commit hook lives; refuses when ``core.hooksPath`` manages hooks."""
    configured = git.run("config", "--get", "core.hooksPath", check=False).stdout.decode().strip()
    if configured:
        raise LocalpilotError(
            f"core.hooksPath is set to {configured!r}, so another tool manages this repository's hooks; "
            f"localpilot leaves them alone. Add `{sys.executable} -m localpilot hook run` to the pre-commit hook "
            "there, or use the pre-commit framework (repo: localpilot, id: localpilot-suggest-tests)"
        )
    raw = git.out("rev-parse", "--git-path", "hooks").decode().strip()
    hooks = Path(raw) if os.path.isabs(raw) else git.root / raw
    return HookPaths(hooks, hooks / "pre-commit", hooks / CHAINED)


def is_ours(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return MARKER.encode() in fh.read(400)
    except OSError:
        return False


def script(python: str, args: list[str]) -> str:
    extra = "".join(f" {shlex.quote(a)}" for a in args)
    return SCRIPT.format(
        marker=MARKER,
        python=shlex.quote(python),
        chained=CHAINED,
        strict_exit=STRICT_EXIT,
        args=extra,
    )


def install(git: Git, args: list[str] | None = None, python: str | None = None) -> str:
    """Install (or update) the hook; returns what was done, for the user."""
    paths = hook_paths(git)
    paths.hooks_dir.mkdir(parents=True, exist_ok=True)
    note = ""
    if os.path.lexists(paths.hook) and not is_ours(paths.hook):
        if os.path.lexists(paths.chained):
            raise LocalpilotError(
                f"{paths.hook} exists and so does {paths.chained}; move one of them away first"
            )
        os.rename(paths.hook, paths.chained)  # bytes, mode and symlinks kept as they are
        note = f"; your existing hook now runs first, from {paths.chained}"
    elif os.path.lexists(paths.hook):
        note = " (updated)"
    tmp = paths.hook.with_name(f".pre-commit.localpilot-{os.getpid()}.tmp")
    try:
        tmp.write_text(script(python or sys.executable, args or []), encoding="utf-8")
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.replace(paths.hook)
    finally:
        tmp.unlink(missing_ok=True)
    return f"installed the localpilot pre-commit hook in {paths.hook}{note}"


def uninstall(git: Git) -> str:
    """Remove our hook and put back the one it chained, byte for byte."""
    paths = hook_paths(git)
    if not os.path.lexists(paths.hook) or not is_ours(paths.hook):
        if os.path.lexists(paths.hook):
            return f"{paths.hook} was not installed by localpilot; left alone"
        return "no localpilot pre-commit hook is installed"
    paths.hook.unlink()
    if os.path.lexists(paths.chained):
        os.rename(paths.chained, paths.hook)
        return (
            f"removed the localpilot pre-commit hook; restored your previous hook in {paths.hook}"
        )
    return "removed the localpilot pre-commit hook"


def status(git: Git) -> str:
    paths = hook_paths(git)
    if not is_ours(paths.hook):
        return "not installed" + (
            " (another pre-commit hook is)" if os.path.lexists(paths.hook) else ""
        )
    line = next(
        (ln for ln in paths.hook.read_text(encoding="utf-8").splitlines() if " hook run " in ln), ""
    )
    chained = f"; chains {paths.chained}" if os.path.lexists(paths.chained) else ""
    return f"installed in {paths.hook}{chained}\n  runs: {line.strip()}"
