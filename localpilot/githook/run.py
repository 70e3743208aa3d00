"""Run the report: inside ``git commit`` (``hook run``) or on demand (``suggest-tests``).

In the hook, nothing may get in the way of the commit: every failure becomes a one-line note and exit 0,
a time budget bounds the run (the symbol/test mapping comes first and needs no model; a watchdog prints what
there is when the budget is spent and exits), and only ``--strict`` with untested public code fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localpilot.errors import LocalpilotError
from localpilot.githook.render import render, render_skeleton
from localpilot.gitrepo import take_git_env
from localpilot.suggest.git import Git, Snapshot, StagedSnapshot

#: Seconds the model step needs at least; with less budget left it is skipped with a note.
MIN_MODEL_S = 2.0
#: Skeletons per run at most (each is one model call).
MAX_SKELETONS = 3
#: After the budget, the model gets this long to stop at a token boundary before the watchdog exits.
GRACE_S = 1.0
#: Hard stop (SIGALRM, default action) this long after the budget, should the process not answer at all.
HARD_EXTRA_S = 5


@dataclass
class Options:
    write: bool = False
    strict: bool = False
    budget: float = 0.0  # seconds; 0: none
    strict_exit: int = 1
    as_json: bool = False
    hook: bool = False  # running inside git commit
    out: Callable[[str], None] = field(default=lambda line: _print(line))


def _print(line: str) -> None:
    """One line to stdout, whatever its encoding (file names need not be UTF-8)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(line.encode(encoding, "backslashreplace").decode(encoding, "replace"), flush=True)


class Output:
    """Serialised printing shared by the main thread and the watchdog."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.lock = threading.Lock()
        self._write = write
        self.finished = False
        self.mapping_done = False
        self.untested = 0

    def lines(self, lines: list[str]) -> None:
        with self.lock:
            for line in lines:
                self._write(line)


class Watchdog:
    """Sets ``cancel`` when the budget is spent; exits the process if the work has not finished soon after."""

    def __init__(self, budget: float, output: Output, opts: Options) -> None:
        self.cancel = threading.Event()
        self.started = time.monotonic()
        self.budget = budget
        self._output, self._opts = output, opts
        self._timer: threading.Timer | None = None
        if budget > 0:
            self._timer = threading.Timer(budget, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def left(self) -> float:
        return float("inf") if self.budget <= 0 else self.budget - (time.monotonic() - self.started)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        self.cancel.set()
        time.sleep(GRACE_S)
        if not self._output.lock.acquire(timeout=GRACE_S):
            pass  # the main thread is stuck mid-print: exit regardless
        elif self._output.finished:
            self._output.lock.release()
            return
        what = "the model step" if self._output.mapping_done else "the symbol/test mapping"
        with contextlib.suppress(Exception):  # a closed pipe must not keep us alive
            self._output._write(
                f"localpilot: time budget of {self.budget:g}s spent during {what}; stopped there "
                "(hook_budget_s / --budget)"
            )
        code = (
            self._opts.strict_exit
            if self._opts.strict and self._output.mapping_done and self._output.untested
            else 0
        )
        _stop_children()
        os._exit(code)


def _stop_children() -> None:
    """Kill our own child processes (a model file check, a git call) so that nothing outlives the hook."""
    me = str(os.getpid())
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[1].decode() == me:
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGKILL)


def _on_signal(signum: int, _frame: Any) -> None:
    _stop_children()
    os._exit(128 + signum)


def hook_main(opts: Options, repo: Path | None = None) -> int:
    """``localpilot hook run``: the report for the staged change; exit 0 unless strict finds untested code."""
    git_env = take_git_env()  # first: no child process of ours may see GIT_INDEX_FILE & co. but git
    skip = os.environ.get("LOCALPILOT_SKIP", "").strip().lower()
    if skip in {"1", "true", "yes", "on"}:
        return 0
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    try:
        git = Git.discover(repo or Path.cwd(), git_env)
        settings = _settings(git.root, opts)
    except Exception as exc:  # never in the way of a commit
        opts.out(f"localpilot: no test suggestions ({_one_line(exc)})")
        return 0
    opts = Options(
        write=opts.write or settings.hook_write,
        strict=opts.strict or settings.hook_strict,
        budget=opts.budget or float(settings.hook_budget_s),
        strict_exit=opts.strict_exit,
        as_json=opts.as_json,
        hook=True,
        out=opts.out,
    )
    if opts.budget > 0 and threading.current_thread() is threading.main_thread():
        signal.alarm(int(opts.budget + HARD_EXTRA_S + 0.999))
    try:
        return report_main(git, StagedSnapshot(git), opts, settings)
    except KeyboardInterrupt:  # Ctrl-C in the terminal: git stops the commit itself
        _stop_children()
        return 130
    except Exception as exc:
        opts.out(f"localpilot: no test suggestions ({_one_line(exc)})")
        return 0
    finally:
        signal.alarm(0)


def _settings(root: Path, opts: Options) -> Any:
    from localpilot.config import load_settings

    return load_settings(root)  # --budget, --strict and --write (flags) are merged by the caller


def report_main(git: Git, snapshot: Snapshot, opts: Options, settings: Any = None) -> int:
    """Build, print and (with ``write``) extend the report; the exit status for ``strict``."""
    output = Output(opts.out)
    watchdog = Watchdog(opts.budget, output, opts)
    try:
        assistant = _assistant(git.root, settings)
        report = _report(assistant, snapshot)
        untested = report.untested_public()
        with output.lock:
            output.mapping_done, output.untested = True, len(untested)
        if not opts.as_json:
            output.lines(render(report))
        if opts.write and untested:
            _write_tests(assistant, untested[:MAX_SKELETONS], output, watchdog, opts)
        if opts.as_json:
            output.lines([json.dumps(report.to_dict(), indent=2)])
        failed = opts.strict and bool(untested)
        if failed and not opts.as_json:
            output.lines(
                [
                    f"localpilot: strict: {len(untested)} changed function(s)/class(es) without tests; add "
                    "tests, or skip once with LOCALPILOT_SKIP=1 (or git commit --no-verify)"
                ]
            )
        with output.lock:
            output.finished = True
        return opts.strict_exit if failed else 0
    finally:
        watchdog.stop()


def _assistant(root: Path, settings: Any) -> Any:
    from localpilot.service import Assistant

    try:
        return Assistant(root, settings)
    except LocalpilotError:
        return None


def _report(assistant: Any, snapshot: Snapshot) -> Any:
    if assistant is not None:
        return assistant.suggest_tests(snapshot)
    from localpilot.suggest.report import (
        build_report,
    )  # e.g. a work tree git only finds through GIT_DIR

    return build_report(snapshot, None)


def _write_tests(
    assistant: Any, todo: list[Any], output: Output, watchdog: Watchdog, opts: Options
) -> None:
    from localpilot.suggest.skeleton import extract_code, finished, keep_test, parses, trim_repeats

    if assistant is None:
        output.lines(["localpilot: no test skeletons: this repository could not be opened"])
        return
    for s in todo:
        if watchdog.left() < MIN_MODEL_S:
            output.lines(
                [
                    f"localpilot: skipped the skeleton for {s.symbol}: {max(watchdog.left(), 0):.1f}s of the "
                    f"{watchdog.budget:g}s budget left (raise hook_budget_s)"
                ]
            )
            return
        try:
            generator = assistant.generator("small")
        except LocalpilotError as exc:
            output.lines([f"localpilot: no test skeletons: {_one_line(exc)}"])
            return
        model = Path(generator.name.removeprefix("local:")).name
        if opts.hook:
            output.lines([f"localpilot: writing {s.test_name} with {model} ..."])
        started = time.monotonic()
        pieces: list[str] = []
        stream = assistant.write_test(s, cancel=watchdog.cancel)
        try:
            for piece in stream:
                pieces.append(piece)
                if "\n" in piece and finished("".join(pieces), s.test_name, s.language):
                    break
        except LocalpilotError as exc:
            output.lines([f"localpilot: no skeleton for {s.symbol}: {_one_line(exc)}"])
            continue
        finally:
            stream.close()  # stops the model at once
        code = keep_test(trim_repeats(extract_code("".join(pieces))), s.test_name, s.language)
        s.skeleton = code
        complete = not watchdog.cancel.is_set()
        if not opts.as_json:
            output.lines(
                render_skeleton(
                    s,
                    code,
                    model,
                    time.monotonic() - started,
                    complete,
                    parses(code, s.language) if complete else None,
                )
            )
        if not complete:
            return


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def suggest_main(
    repo: Path,
    mode: str,
    rev: str | None,
    paths: list[str],
    opts: Options,
    overrides: dict[str, Any] | None = None,
) -> int:
    """``localpilot suggest-tests``: the same report outside a commit."""
    from localpilot.config import load_settings
    from localpilot.suggest.git import RangeSnapshot, WorktreeSnapshot

    git = Git.discover(repo.expanduser().resolve(), take_git_env())  # e.g. run from another hook
    settings = load_settings(git.root, **(overrides or {}))
    snapshot: Snapshot
    if paths:
        rel = [_relative(git.root, p) for p in paths]
        snapshot = WorktreeSnapshot(git, paths=rel)
    elif mode == "diff" and rev and ".." in rev:
        base, head = rev.split("..", 1)
        snapshot = RangeSnapshot(git, base or "HEAD", head or "HEAD")
    elif mode == "diff":
        snapshot = WorktreeSnapshot(git, base=rev or "HEAD")
    else:
        snapshot = StagedSnapshot(git)
        if mode == "auto" and not snapshot.changes() and git.has_head():
            print("localpilot: nothing staged; showing the work tree against HEAD", file=sys.stderr)
            snapshot = WorktreeSnapshot(git, base="HEAD")
    return report_main(git, snapshot, opts, settings)


def _relative(root: Path, path: str) -> str:
    full = Path(path).expanduser().resolve()
    if not full.exists():
        raise LocalpilotError(f"{path} does not exist")
    try:
        rel = full.relative_to(root).as_posix()
    except ValueError as exc:
        raise LocalpilotError(f"{path} is outside the repository {root}") from exc
    return "" if rel == "." else rel
