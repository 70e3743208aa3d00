#!/usr/bin/env python3
"""Check the tree-sitter definition queries in this directory.

For every language in languages.toml: load the grammar, compile <lang>.scm,
run it on the matching sample in tests/fixtures/polyglot/, compute qualified
names by node containment and assert every symbol listed in expected.toml is
found.  Also fails on parse errors in a sample and on a node captured twice
with different names or kinds.

Usage: python grammars/check_queries.py [-v]   (-v prints every symbol found)
Stdlib + tree_sitter (0.26 API) only.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import tomllib
from tree_sitter import Language, Parser, Query, QueryCursor

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "polyglot"
KINDS = {"function", "method", "class", "interface", "struct", "enum",
         "trait", "impl", "module", "type", "macro"}


def load_language(cfg: dict) -> Language:
    mod = importlib.import_module(cfg["module"])
    return Language(getattr(mod, cfg["function"])())


def node_key(node) -> tuple:
    return (node.start_byte, node.end_byte, node.type)


def definitions(lang: Language, query_src: str, source: bytes):
    """Return (defs, problems); defs maps node_key -> (node, kind, name)."""
    tree = Parser(lang).parse(source)
    problems = []
    if tree.root_node.has_error:
        problems.append("sample has parse errors")
    cursor = QueryCursor(Query(lang, query_src))
    defs: dict[tuple, tuple] = {}
    for _idx, caps in cursor.matches(tree.root_node):
        def_caps = [c for c in caps if c.startswith("definition.")]
        if len(def_caps) != 1 or "name" not in caps:
            problems.append(f"pattern {_idx}: bad captures {sorted(caps)}")
            continue
        kind = def_caps[0].split(".", 1)[1]
        if kind not in KINDS:
            problems.append(f"pattern {_idx}: unknown kind {kind!r}")
        node = caps[def_caps[0]][0]
        name = caps["name"][0].text.decode("utf-8", "replace")
        key = node_key(node)
        if key in defs and defs[key][1:] != (kind, name):
            problems.append(
                f"node {node.type}@{node.start_point[0] + 1} captured twice: "
                f"{defs[key][1:]} vs {(kind, name)}")
        defs.setdefault(key, (node, kind, name))
    return defs, problems


def qualified_names(defs: dict) -> list[tuple[str, str, int]]:
    out = []
    for node, kind, name in defs.values():
        parts = [name]
        parent = node.parent
        while parent is not None:
            hit = defs.get(node_key(parent))
            if hit is not None:
                parts.append(hit[2])
            parent = parent.parent
        out.append((".".join(reversed(parts)), kind, node.start_point[0] + 1))
    out.sort(key=lambda t: t[2])
    return out


def main() -> int:
    verbose = "-v" in sys.argv[1:]
    languages = tomllib.loads((HERE / "languages.toml").read_text())
    expected = tomllib.loads((FIXTURES / "expected.toml").read_text())
    samples = {p.suffix.lower(): p for p in FIXTURES.iterdir()
               if p.name in expected}
    failed = 0
    rows = []
    for key, cfg in languages.items():
        status, detail, nfound, nexp = "ok", "", 0, 0
        try:
            lang = load_language(cfg)
            query_src = (HERE / cfg["query"]).read_text()
            sample = next((samples[e] for e in cfg["extensions"] if e in samples), None)
            if sample is None:
                raise RuntimeError(f"no sample for extensions {cfg['extensions']}")
            defs, problems = definitions(lang, query_src, sample.read_bytes())
            found = qualified_names(defs)
            names = {q for q, _, _ in found}
            want = expected[sample.name]
            missing = [s for s in want if s not in names]
            nfound, nexp = len(names), len(want)
            if missing:
                problems.append("missing: " + ", ".join(missing))
            if problems:
                status, detail = "FAIL", "; ".join(problems)
            if verbose:
                print(f"--- {key} ({sample.name})")
                for q, kind, line in found:
                    mark = "" if q in want else "  (extra)"
                    print(f"  {line:4d}  {kind:9s} {q}{mark}")
        except Exception as exc:
            status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
            sample = None
        if status != "ok":
            failed += 1
        rows.append((key, sample.name if sample else "-", nfound, nexp, status, detail))

    print(f"{'language':11s} {'sample':12s} {'found':>5s} {'expect':>6s}  status")
    for key, name, nfound, nexp, status, detail in rows:
        line = f"{key:11s} {name:12s} {nfound:5d} {nexp:6d}  {status}"
        print(line + (f"  {detail}" if detail else ""))
    print(f"\n{len(rows) - failed}/{len(rows)} languages passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
