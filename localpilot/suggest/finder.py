"""Find the existing tests of changed symbols: test files whose code names them.

The index (when there is one) nominates test chunks through its full-text table; ``git grep`` over the
snapshot's test files finds the rest and needs no index. Either way the verdict comes from the snapshot's own
content (the staged blobs in a hook), so a stale index cannot invent or hide a test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from localpilot.index.languages import detect_language
from localpilot.suggest.git import Snapshot
from localpilot.suggest.symbols import SymbolChange, decode, innermost, outline

TEST_DIRS = {"test", "tests", "__tests__", "spec", "specs", "testing"}
NOT_TEST_DIRS = {
    "fixtures",
    "fixture",
    "testdata",
    "test_data",
    "__snapshots__",
    "snapshots",
    "data",
    "resources",
}
_TEST_NAME = re.compile(
    r"^(test_.+\.py|.+_test\.py|conftest\.py|.+_test\.go|.+\.(test|spec)\.[cm]?[jt]sx?|.+_(spec|test)\.rb|test_.+\.rb"
    r"|.+Tests?\.(java|kt|cs|php|scala|swift)|.+_test\.(c|cc|cpp|rs|ex|exs)|test_.+\.(c|cc|cpp)|.+\.bats)$"
)
#: Where ``git grep`` looks; :func:`is_test_path` has the last word.
TEST_PATHSPECS = tuple(
    f":(glob){g}"
    for g in (
        "**/test_*",
        "**/*_test.*",
        "**/*_spec.*",
        "**/*.test.*",
        "**/*.spec.*",
        "**/*Test.*",
        "**/*Tests.*",
        "**/conftest.py",
        "**/*.bats",
        *(f"**/{d}/**" for d in sorted(TEST_DIRS)),
    )
)
#: Member names that stand for their class (constructors): their tests name the class.
CONSTRUCTORS = {"__init__", "__new__", "constructor", "new", "initialize", "__post_init__"}


def is_test_path(path: str) -> bool:
    """Test code by the usual conventions: tests/ dirs, test_*.py, *_test.go, *.test.ts, *_spec.rb, FooTest.java."""
    pure = PurePosixPath(path)
    dirs = {p.lower() for p in pure.parts[:-1]}
    if dirs & NOT_TEST_DIRS:
        return False
    return bool(_TEST_NAME.match(pure.name)) or (
        bool(dirs & TEST_DIRS) and detect_language(path) != "text"
    )


@dataclass
class TestRef:
    """Where a test file refers to a symbol."""

    path: str
    tests: list[str] = field(default_factory=list)  # enclosing test definitions ("TestX.test_y")
    lines: list[int] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [f"{self.path}::{t.replace('.', '::')}" for t in self.tests] or [self.path]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "tests": self.tests, "lines": self.lines}


def search_words(change: SymbolChange) -> tuple[str, str | None]:
    """(the word a test must contain, a word the same file must also contain or None)."""
    s = change.symbol
    if s.short in CONSTRUCTORS and s.parent:
        return s.parent.rsplit(".", 1)[-1], None
    if s.kind == "method" and s.parent:
        return s.short, s.parent.rsplit(".", 1)[-1]
    return s.short, None


def find_tests(
    snapshot: Snapshot,
    changes: Sequence[SymbolChange],
    state: Any = None,
    extra_tests: Sequence[str] = (),
) -> tuple[dict[int, list[TestRef]], str]:
    """Tests referring to each change (keyed by position in ``changes``), and how they were found."""
    wanted = [(i, *search_words(c)) for i, c in enumerate(changes) if not is_test_path(c.path)]
    if not wanted:
        return {}, "none needed"
    words = sorted({w for _, w, _ in wanted})
    candidates: set[str] = set(p for p in extra_tests if is_test_path(p))
    how = "git grep"
    if state is not None:
        nominated = _from_index(state, words)
        if nominated is not None:
            candidates |= nominated
            how = "index"
    contents = _texts(snapshot, sorted(candidates))
    found = _match(contents, wanted)
    missing = [w for w in words if not any(w == word and i in found for i, word, _ in wanted)]
    if missing:  # the index may be stale: confirm every negative against the snapshot itself
        grep = {
            p: ln for p, ln in snapshot.grep(missing, TEST_PATHSPECS).items() if is_test_path(p)
        }
        new = sorted(set(grep) - set(contents))
        if new:
            contents.update(_texts(snapshot, new))
            how = "index + git grep" if how == "index" else how
        found = _match(contents, wanted)
    return found, how


def _from_index(state: Any, words: Sequence[str]) -> set[str] | None:
    try:
        ids = [cid for cid, _ in state.lexical(list(words), 2000)]
        rows = state.chunk_rows(ids)
    except Exception:  # an index being rebuilt or from another version: git grep does the job
        return None
    return {r.path for r in rows.values() if is_test_path(r.path)}


def _texts(snapshot: Snapshot, paths: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for path, data in snapshot.read_many(paths).items():
        text = decode(data)
        if text is not None:
            out[path] = text
    return out


def _match(
    contents: dict[str, str], wanted: Sequence[tuple[int, str, str | None]]
) -> dict[int, list[TestRef]]:
    found: dict[int, list[TestRef]] = {}
    outlines: dict[str, list[Any]] = {}
    for path, text in sorted(contents.items()):
        lines = text.split("\n")
        for i, word, owner in wanted:
            pattern = re.compile(rf"(?<![\w$]){re.escape(word)}(?![\w$])")
            if owner is not None and not re.search(rf"(?<![\w$]){re.escape(owner)}(?![\w$])", text):
                continue
            hits = [n + 1 for n, line in enumerate(lines) if pattern.search(line)]
            if not hits:
                continue
            if path not in outlines:
                outlines[path] = outline(path, text)
            tests: list[str] = []
            for line in hits:
                s = innermost(outlines[path], line)
                if s is not None and _is_test_name(s.name) and s.name not in tests:
                    tests.append(s.name)
            found.setdefault(i, []).append(TestRef(path, tests, hits[:20]))
    return found


def _is_test_name(qualified: str) -> bool:
    parts = qualified.split(".")
    return any(p.lower().startswith("test") or p.endswith(("Test", "Tests", "Spec")) for p in parts)
