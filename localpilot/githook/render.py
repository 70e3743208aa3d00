"""The test report as a terminal reads it: short, plain ASCII, the same for the hook and ``suggest-tests``."""

from __future__ import annotations

from typing import Any

#: Untested symbols shown with their suggested test and cases; later ones get one line each.
DETAILED = 8


def _span(s: Any) -> str:
    if s.lines and s.status == "modified":
        lo, hi = min(s.lines), max(s.lines)
        return f"lines {lo}-{hi}" if hi > lo else f"line {lo}"
    return f"lines {s.start}-{s.end}"


def _tests(refs: Any) -> str:
    ids = [i for r in refs for i in r.ids()]
    shown = ", ".join(ids[:4])
    return shown + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")


def render(report: Any, detailed: int = DETAILED) -> list[str]:
    """Lines of text for ``report`` (a suggest.report.TestReport)."""
    shown = [s for s in report.suggestions if not (s.status == "removed" and not s.tests)]
    if not shown and not report.notes:
        return []
    out = [
        f"localpilot: tests for the {report.source} change ({report.files} file{'s' if report.files != 1 else ''}"
        f", {len(shown)} changed function{'s' if len(shown) != 1 else ''}/class{'es' if len(shown) != 1 else ''})"
    ]
    current = None
    details = 0
    for s in shown:
        if s.path != current:
            out.append(f"  {s.path}")
            current = s.path
        head = f"    {s.symbol}  ({s.kind}, {s.status}, {_span(s)})"
        if s.status == "removed":
            out.append(f"{head}  [removed] tests still refer to it: {_tests(s.tests)}")
        elif s.tests:
            out.append(f"{head}  [tested] {_tests(s.tests)}")
            if s.run:
                out.append(f"        run: {s.run}")
            if s.cases:
                out.append(f"        check too: {'; '.join(s.cases)}")
        elif s.private:
            out.append(f"{head}  [no direct tests] private: tested through its callers?")
        elif details >= detailed:
            out.append(f"{head}  [no tests] suggest {s.test_name} in {s.target}")
        else:
            details += 1
            out.append(f"{head}  [no tests]")
            out.append(f"        suggest: {s.test_name} in {s.target}, checking")
            out.extend(f"          - {c}" for c in s.cases)
    if report.test_changes:
        tests = report.test_changes
        out.append(
            f"  tests in this change: {', '.join(tests[:5])}"
            + (f" and {len(tests) - 5} more" if len(tests) > 5 else "")
        )
    out.extend(f"  note: {n}" for n in report.notes)
    if report.more:
        out.append(f"  ... and {report.more} more changed symbols (not shown)")
    untested = report.untested_public()
    out.append(
        f"localpilot: {len(untested)} of {len(shown)} without tests · tests found by {report.found_by} · "
        f"{report.seconds:.2f}s"
    )
    return out


def render_skeleton(
    s: Any, code: str, model: str, seconds: float, complete: bool, valid: bool | None
) -> list[str]:
    flags = [] if complete else ["cut at the time budget"]
    if valid is False:
        flags.append("does not parse yet")
    head = f"  {s.test_name} for {s.symbol} (by {model}, {seconds:.1f}s{''.join(f'; {f}' for f in flags)}):"
    return (
        [head, *(f"    {line}" for line in code.split("\n"))]
        if code.strip()
        else [
            f"  {s.test_name}: the model wrote nothing"
            + ("" if complete else " within the time budget")
        ]
    )
