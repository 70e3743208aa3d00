"""From a change to a test report: changed symbols, their existing tests, and a suggested test for the rest."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from localpilot.suggest import cases as casing
from localpilot.suggest.finder import TestRef, find_tests, is_test_path
from localpilot.suggest.git import MAX_FILE_BYTES, FileChange, Snapshot
from localpilot.suggest.skeleton import example_excerpt, pick_example
from localpilot.suggest.symbols import Symbol, SymbolChange, decode, outline, symbol_changes

#: Kinds that carry behaviour worth a test (containers' members are reported on their own).
TESTABLE = {"function", "method", "class", "struct", "macro"}
MAX_FILES = 200
MAX_SUGGESTIONS = 40


@dataclass
class Suggestion:
    """One changed symbol: its tests, or the test it deserves."""

    path: str
    language: str
    symbol: str
    kind: str
    status: str  # added | modified | removed | present (PATH mode: the file as it is)
    start: int
    end: int
    lines: list[int] = field(default_factory=list)
    tests: list[TestRef] = field(default_factory=list)
    private: bool = False
    test_name: str = ""  # a new test to write (untested symbols)
    target: str = ""  # where it would go
    cases: list[str] = field(
        default_factory=list
    )  # what to check (new test, or added to the existing ones)
    run: str | None = None  # a command running the existing tests
    code: str = ""  # the symbol's source, for the model
    example_path: str | None = None  # the repo's test file shown to the model as the style example
    example: str | None = None
    skeleton: str | None = None  # filled in by the model (--write)

    @property
    def untested(self) -> bool:
        return not self.tests and self.status != "removed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "language": self.language,
            "symbol": self.symbol,
            "kind": self.kind,
            "status": self.status,
            "start_line": self.start,
            "end_line": self.end,
            "changed_lines": self.lines,
            "private": self.private,
            "tested": bool(self.tests),
            "tests": [t.to_dict() for t in self.tests],
            "run": self.run,
            "test_name": self.test_name or None,
            "target": self.target or None,
            "cases": self.cases,
            "skeleton": self.skeleton,
        }


@dataclass
class TestReport:
    """What ``suggest-tests`` and the pre-commit hook print."""

    source: str  # staged | A..B | REV..work tree | work tree
    suggestions: list[Suggestion] = field(default_factory=list)
    notes: list[str] = field(
        default_factory=list
    )  # files left out and why (binary, submodule, ...)
    test_changes: list[str] = field(default_factory=list)  # tests the change itself adds or edits
    files: int = 0
    found_by: str = "git grep"
    more: int = 0  # suggestions beyond MAX_SUGGESTIONS, counted but not detailed
    seconds: float = 0.0

    def untested_public(self) -> list[Suggestion]:
        return [s for s in self.suggestions if s.untested and not s.private]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": self.files,
            "found_by": self.found_by,
            "symbols": [s.to_dict() for s in self.suggestions],
            "notes": self.notes,
            "test_changes": self.test_changes,
            "more": self.more,
            "seconds": round(self.seconds, 3),
            "untested": [f"{s.path}::{s.symbol}" for s in self.untested_public()],
        }


def build_report(snapshot: Snapshot, state: Any = None) -> TestReport:
    """The report for ``snapshot``'s change. ``state`` is the index's bookkeeping when the repo is indexed."""
    started = time.perf_counter()
    report = TestReport(source=snapshot.label)
    whole = snapshot.whole_files
    changes = [c for c in snapshot.changes() if _keep(c, report)]
    report.notes.extend(snapshot.notes)
    report.files = len(changes)
    if len(changes) > MAX_FILES:
        report.notes.append(
            f"{len(changes) - MAX_FILES} more changed files not analysed (over {MAX_FILES})"
        )
        changes = changes[:MAX_FILES]
    texts = _contents(snapshot, changes)
    symbol_level: list[SymbolChange] = []
    for c in changes:
        old, new = texts.get(("old", c.path)), texts.get(("new", c.path))
        if c.status == "R":
            report.notes.append(f"{c.old_path} renamed to {c.path}")
        if (c.old_oid and old is None and c.status != "A") or (c.status != "D" and new is None):
            why = (
                "binary"
                if texts.get(("why", c.path)) == "binary"
                else f"over {MAX_FILE_BYTES // 1000} kB"
            )
            report.notes.append(f"{c.path}: {why}, not analysed")
            continue
        symbol_level.extend(
            symbol_changes(
                c.path,
                old if c.status != "A" else None,
                new if c.status != "D" else None,
                c.old_path,
            )
        )
    for sc in symbol_level:
        if is_test_path(sc.path) and sc.status != "removed":
            report.test_changes.append(f"{sc.path}::{sc.symbol.name}")
    kept = _fold_members(
        [sc for sc in symbol_level if not is_test_path(sc.path) and sc.symbol.kind in TESTABLE]
    )
    if len(kept) > MAX_SUGGESTIONS:
        report.more = len(kept) - MAX_SUGGESTIONS
        kept = kept[:MAX_SUGGESTIONS]
    changed_tests = sorted({c.path for c in changes if is_test_path(c.path) and c.status != "D"})
    found, report.found_by = find_tests(snapshot, kept, state, changed_tests)
    all_tests = [f for f in snapshot.files() if is_test_path(f)]
    files = set(snapshot.files())
    by_source: dict[str, Counter[str]] = {}
    for i, sc in enumerate(kept):
        for ref in found.get(i, []):
            by_source.setdefault(sc.path, Counter())[ref.path] += 1
    examples: dict[str, str | None] = {}
    outlines: dict[str, list[Symbol]] = {}
    for i, sc in enumerate(kept):
        s = _suggestion(
            sc,
            found.get(i, []),
            texts.get(("new", sc.path)) or texts.get(("old", sc.path)) or "",
            texts.get(("old", sc.path)),
            whole,
        )
        if s.untested and s.status != "removed":
            related = [p for p, _ in by_source.get(sc.path, Counter()).most_common()]
            s.test_name = casing.test_name(sc.symbol.name, s.kind, sc.language)
            s.target = related[0] if related else casing.target_file(sc.path, sc.language, files)
            s.example_path = pick_example(sc.language, s.target, related, all_tests, sc.path)
            if s.example_path is not None and s.example_path not in examples:
                data = snapshot.read_many([s.example_path]).get(s.example_path)
                text = decode(data) if data is not None else None
                examples[s.example_path] = example_excerpt(s.example_path, text) if text else None
            s.example = examples.get(s.example_path) if s.example_path else None
            if sc.symbol.parent and texts.get(("new", sc.path)):
                s.code = _with_owner(sc, texts[("new", sc.path)], outlines)
        report.suggestions.append(s)
    report.seconds = time.perf_counter() - started
    return report


def _keep(c: FileChange, report: TestReport) -> bool:
    if c.kind == "submodule":
        report.notes.append(f"{c.path}: submodule, not analysed")
        return False
    if c.kind == "symlink":
        return False
    if c.status == "U":
        report.notes.append(f"{c.path}: unmerged, not analysed")
        return False
    return c.status in "AMDRT"


def _contents(snapshot: Snapshot, changes: list[FileChange]) -> dict[tuple[str, str], str]:
    """Old and new text of each change (binary ones marked)."""
    out: dict[tuple[str, str], str] = {}
    for (side, path), data in snapshot.contents(changes).items():
        if len(data) > MAX_FILE_BYTES:
            continue
        text = decode(data)
        if text is None:
            out[("why", path)] = "binary"
        else:
            out[(side, path)] = text
    return out


def _with_owner(sc: SymbolChange, text: str, outlines: dict[str, list[Symbol]]) -> str:
    """A member's code with what a test needs to build its owner: the owner's own lines (its header and
    fields, members elided) and the constructor's signature."""
    if sc.path not in outlines:
        outlines[sc.path] = outline(sc.path, text, sc.language)
    by_name = {s.name: s for s in outlines[sc.path]}
    owner = by_name.get(sc.symbol.parent)
    lines = text.split("\n")
    if owner is None:
        return "\n".join(lines[sc.symbol.start - 1 : sc.symbol.end])
    keep = sorted(n for n in owner.own if n < sc.symbol.start)[:20]
    for ctor in ("__init__", "constructor", "new", "initialize"):
        c = by_name.get(f"{owner.name}.{ctor}")
        if c is not None and c.name != sc.symbol.name:
            keep += list(range(c.start, min(c.end, c.start + 3) + 1))
    keep = sorted(set(keep))
    out: list[str] = []
    prev = None
    for n in keep:
        if prev is not None and n != prev + 1:
            out.append("    ...")
        out.append(lines[n - 1])
        prev = n
    out.append("    ...")
    out.extend(lines[sc.symbol.start - 1 : sc.symbol.end])
    return "\n".join(out)


def _fold_members(changes: list[SymbolChange]) -> list[SymbolChange]:
    """A new class is one suggestion: its new members are its cases, not suggestions of their own."""
    added_containers = {
        (c.path, c.symbol.name)
        for c in changes
        if c.status == "added" and c.symbol.kind in ("class", "struct")
    }
    return [
        c
        for c in changes
        if not (
            c.symbol.parent
            and (c.path, c.symbol.parent) in added_containers
            and c.status == "added"
        )
    ]


def _private(name: str, language: str) -> bool:
    short = name.rsplit(".", 1)[-1]
    if short.startswith("__") and short.endswith("__"):
        return False
    if language == "go":
        return short[:1].islower()
    return short.startswith(("_", "#"))


def _suggestion(
    sc: SymbolChange, tests: list[TestRef], new_text: str, old_text: str | None, whole: bool
) -> Suggestion:
    sym = sc.symbol
    text = new_text if sc.status != "removed" else (old_text or "")
    code = "\n".join(text.split("\n")[sym.start - 1 : sym.end])
    s = Suggestion(
        path=sc.path,
        language=sc.language,
        symbol=sym.name,
        kind=sym.kind,
        status="present" if whole else sc.status,
        start=sym.start,
        end=sym.end,
        lines=sc.lines,
        tests=tests,
        private=_private(sym.name, sc.language),
        code=code,
    )
    if sc.status == "removed":
        return s
    new_sig = casing.signature(code, sym.short, sc.language)
    if tests:
        ids = [i for t in tests for i in t.ids()]
        s.run = casing.run_command(sc.language, ids)
        if sc.status == "modified" and sc.old is not None and old_text is not None:
            old_code = "\n".join(old_text.split("\n")[sc.old.start - 1 : sc.old.end])
            s.cases = casing.changed_cases(
                casing.signature(old_code, sym.short, sc.language), new_sig, sc.lines
            )
    else:
        s.cases = casing.cases(new_sig, sym.kind)
    return s
