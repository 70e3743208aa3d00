"""Which functions and classes a change touches, found with the chunker's tree-sitter definitions.

The chunker is asked for one-line chunks (every line costs one "token", the budget is one), so each
non-blank line comes back labelled with its innermost definition's qualified name; a second pass with an
unlimited budget gives each top-level definition its kind. No second parser.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from localpilot.index.chunker import chunk_file
from localpilot.index.languages import detect_language, has_grammar

_CONTAINER_KINDS = {"class", "struct", "interface", "trait", "impl", "module", "enum"}
_NO_KIND = {"header", "code"}


@dataclass
class Symbol:
    """A definition in one version of a file."""

    name: str  # qualified, e.g. "Client.send"
    kind: str  # function, method, class, ...
    start: int  # 1-based first line (decorators and doc comments above included)
    end: int  # 1-based last line, members included
    own: set[int] = field(
        default_factory=set
    )  # lines that belong to it and not to a nested definition

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def parent(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name else ""


def _one_per_line(lines: Sequence[str]) -> list[int]:
    return [1] * len(lines)


def _unlimited(lines: Sequence[str]) -> list[int]:
    return [0] * len(lines)


def outline(path: str, text: str, language: str | None = None) -> list[Symbol]:
    """Every definition in ``text``, outermost first; [] for files without a grammar."""
    language = language or detect_language(path)
    if not has_grammar(language) or not text.strip():
        return []
    symbols: dict[str, Symbol] = {}
    for c in chunk_file(path, text, language, _one_per_line, 1):
        if not c.symbol:
            continue
        s = symbols.get(c.symbol)
        if s is None:
            s = symbols[c.symbol] = Symbol(c.symbol, c.kind, c.start_line, c.end_line)
        elif s.kind in _NO_KIND and c.kind not in _NO_KIND:
            s.kind = c.kind
        s.own.update(range(c.start_line, c.end_line + 1))
        s.start, s.end = min(s.start, c.start_line), max(s.end, c.end_line)
    top_kinds = {
        c.symbol: c.kind for c in chunk_file(path, text, language, _unlimited, 1 << 30) if c.symbol
    }
    for s in symbols.values():  # a container's extent covers its members
        for other in symbols.values():
            if other.name.startswith(s.name + "."):
                s.start, s.end = min(s.start, other.start), max(s.end, other.end)
    for s in symbols.values():
        if s.kind in _NO_KIND:
            s.kind = (
                top_kinds.get(s.name, "class") if top_kinds.get(s.name) not in _NO_KIND else "class"
            )
        parent = symbols.get(s.parent)
        if s.kind == "function" and parent is not None and parent.kind in _CONTAINER_KINDS:
            s.kind = "method"
    return sorted(symbols.values(), key=lambda s: (s.start, -s.end))


def innermost(symbols: Sequence[Symbol], line: int) -> Symbol | None:
    """The definition that owns ``line`` (for blank lines: the smallest one spanning it)."""
    owner = next((s for s in symbols if line in s.own), None)
    if owner is not None:
        return owner
    spanning = [s for s in symbols if s.start <= line <= s.end]
    return min(spanning, key=lambda s: s.end - s.start) if spanning else None


def changed_lines(old: str, new: str) -> tuple[set[int], set[int]]:
    """(lines of ``new`` that are added or changed, deletion points: new lines that lost a neighbour)."""
    a, b = old.split("\n"), new.split("\n")
    touched: set[int] = set()
    deleted_at: set[int] = set()
    for op, _i1, _i2, j1, j2 in difflib.SequenceMatcher(
        None, a, b, autojunk=len(a) > 2000
    ).get_opcodes():
        if op in ("replace", "insert"):
            touched.update(range(j1 + 1, j2 + 1))
        elif op == "delete":
            deleted_at.add(j1)  # 1-based: the line above the deletion; j1 + 1 is the line below
    return touched, deleted_at


@dataclass
class SymbolChange:
    """A definition the change adds, modifies or removes."""

    path: str
    language: str
    status: str  # added | modified | removed
    symbol: Symbol
    old: Symbol | None = None  # the previous version (modified, removed)
    lines: list[int] = field(default_factory=list)  # changed lines of the new version


def symbol_changes(
    path: str,
    old_text: str | None,
    new_text: str | None,
    old_path: str | None = None,
) -> list[SymbolChange]:
    """Definitions of ``path`` that differ between the two versions (None: the file is new / deleted)."""
    language = detect_language(path if new_text is not None else (old_path or path))
    if not has_grammar(language):
        return []
    new_syms = outline(path, new_text, language) if new_text is not None else []
    old_syms = outline(old_path or path, old_text, language) if old_text is not None else []
    old_by_name = {s.name: s for s in old_syms}
    new_names = {s.name for s in new_syms}
    out: list[SymbolChange] = []
    if new_text is not None:
        if old_text is None:
            touched, deleted_at = set(range(1, new_text.count("\n") + 2)), set[int]()
        else:
            touched, deleted_at = changed_lines(old_text, new_text)
        hit: dict[str, list[int]] = {}
        for line in sorted(touched):
            s = innermost(new_syms, line)
            if s is not None:
                hit.setdefault(s.name, []).append(line)
        for above in sorted(deleted_at):
            up, down = innermost(new_syms, above), innermost(new_syms, above + 1)
            if up is not None and down is not None and up.name == down.name:
                hit.setdefault(up.name, []).append(above)
        for s in new_syms:
            if s.name in hit:
                old = old_by_name.get(s.name)
                out.append(
                    SymbolChange(
                        path,
                        language,
                        "modified" if old else "added",
                        s,
                        old,
                        sorted(set(hit[s.name])),
                    )
                )
    for s in old_syms:
        if s.name not in new_names and not (
            s.parent and s.parent not in new_names and s.parent in old_by_name
        ):
            out.append(SymbolChange(path, language, "removed", s, s))
    return out


def decode(data: bytes) -> str | None:
    """Text of a blob, or None for binary content."""
    if b"\0" in data[:8000]:
        return None
    return data.decode("utf-8", errors="replace")
