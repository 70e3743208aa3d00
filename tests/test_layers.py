"""The dependency rule, checked by parsing imports (as httpx keeps its surface honest)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "localpilot"
HEAVY = {
    "torch": "experts",
    "sentence_transformers": "experts",
    "llama_cpp": "experts",
    "transformers": "experts",
    "chromadb": "store",
    "textual": "tui",
    "git": "gitrepo",
}  # git: GitPython
LAYER = {
    "config": 0,
    "errors": 0,
    "types": 0,
    "resources": 0,
    "text": 0,
    "paths": 0,
    "gitrepo": 0,
    "__init__": 0,
    "experts": 1,
    "store": 1,
    "index": 2,
    "attribute": 2,
    "confidence": 2,
    "retrieve": 3,
    "answer": 3,
    "router": 3,
    "suggest": 3,
    "complete": 3,
    "asking": 4,
    "components": 4,
    "diagnose": 4,
    "service": 5,
    "tui": 6,
    "editor": 6,
    "githook": 6,
    "cli": 7,  # cli launches the others
    "__main__": 8,
}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def _unit(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def test_heavy_libraries_stay_in_their_module() -> None:
    for path in PKG.rglob("*.py"):
        for mod in _imports(path):
            owner = HEAVY.get(mod.split(".")[0])
            assert owner is None or _unit(path) == owner, f"{path.relative_to(PKG)} imports {mod}"


def test_layers_import_only_downward() -> None:
    for path in PKG.rglob("*.py"):
        unit = _unit(path)
        for mod in _imports(path):
            if not mod.startswith("localpilot."):
                continue
            target = mod.split(".")[1]
            ok = LAYER[target] < LAYER[unit] or target == unit or LAYER[target] == LAYER[unit] == 0
            assert ok, f"{unit} must not import {mod}"
