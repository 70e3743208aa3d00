"""Language detection and tree-sitter grammars, driven by grammars/languages.toml."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from localpilot.resources import data_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Text formats without a grammar: chunked by sections/paragraphs.
TEXT_LANGUAGES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".ini": "ini",
    ".cfg": "ini",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
    ".scss": "css",
    ".sql": "sql",
    ".xml": "xml",
    ".kt": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".lua": "lua",
    ".r": "r",
    ".pl": "perl",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".zig": "zig",
    ".proto": "protobuf",
}
TEXT_NAMES = {"Dockerfile": "dockerfile", "Makefile": "make", "README": "text", "LICENSE": "text"}


@dataclass(frozen=True)
class Grammar:
    name: str
    language: Any  # tree_sitter.Language
    query: Any  # tree_sitter.Query


@cache
def _table() -> dict[str, dict[str, Any]]:
    with (data_dir("grammars") / "languages.toml").open("rb") as fh:
        return tomllib.load(fh)


@cache
def _extensions() -> dict[str, str]:
    return {ext: lang for lang, spec in _table().items() for ext in spec["extensions"]}


def detect_language(path: str) -> str:
    """Language key for a repo path: a grammar name, a text format, or ``text``."""
    pure = PurePosixPath(path)
    suffix = pure.suffix.lower()
    return (
        _extensions().get(suffix) or TEXT_LANGUAGES.get(suffix) or TEXT_NAMES.get(pure.name, "text")
    )


def has_grammar(language: str) -> bool:
    return language in _table()


@cache
def grammar(language: str) -> Grammar:
    """Load (once) the tree-sitter grammar and definition query for ``language``."""
    from tree_sitter import Language, Query

    spec = _table()[language]
    module = importlib.import_module(spec["module"])
    lang = Language(getattr(module, spec["function"])())
    files = [spec["query"]] if isinstance(spec["query"], str) else spec["query"]
    source = "\n".join((data_dir("grammars") / f).read_text(encoding="utf-8") for f in files)
    return Grammar(name=language, language=lang, query=Query(lang, source))
