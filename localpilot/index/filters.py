"""Decide which files are indexed (secret values inside files are cut out by ``secrets.redact``).

Each check returns a human-readable skip reason, or None when the file may be indexed.
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from pathlib import Path, PurePosixPath

import pathspec

BINARY_SNIFF_BYTES = 8192
#: Bump when these rules change: files are re-examined on the next run (no re-embedding of unchanged chunks).
RULES_VERSION = 4

#: File names that hold secrets: never read, never indexed.
SECRET_NAMES = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pgpass",
    ".htpasswd",
    "*.gpg",
    "credentials",
    "credentials.json",
    "secrets.yml",
    "secrets.yaml",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
    ".envrc",
    "*.ppk",
    ".dockercfg",
    "kubeconfig",
    "*.kubeconfig",
    "*.asc",
    "*.der",
    "*.crt",
    "*.cer",
)
#: Generated files with no value for search.
GENERATED_NAMES = (
    "*.min.js",
    "*.min.css",
    "*.map",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "Cargo.lock",
    "uv.lock",
    "Pipfile.lock",
    "composer.lock",
    "Gemfile.lock",
    "go.sum",
)
PROSE = {"markdown", "text", "rst"}


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns)


@lru_cache(maxsize=32)
def exclude_spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    """User excludes with git's own .gitignore semantics (pathspec): anchored ``/vendor``, negated ``!keep.py``,
    ``**``, directory-only ``build/``, last match wins."""
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def _excluded(path: str, patterns: tuple[str, ...]) -> bool:
    return exclude_spec(tuple(patterns)).match_file(path)


def name_reason(path: str, exclude: tuple[str, ...] = ()) -> str | None:
    """Skip by name alone (no reading): secrets, generated files, user excludes."""
    name = PurePosixPath(path).name
    if _matches(name, SECRET_NAMES):
        return "looks like a secret (by file name)"
    if _matches(name, GENERATED_NAMES):
        return "generated file (lockfile/minified/source map)"
    if exclude and _excluded(path, exclude):
        return "excluded by config"
    return None


DECLARATION_SOURCES = (".ts", ".tsx", ".mts", ".js", ".mjs", ".cjs", ".jsx")


def declaration_reason(root: Path, path: str) -> str | None:
    """A ``.d.ts`` next to the file it was generated from repeats that file's signatures without bodies:
    indexing it only puts a second, emptier hit in front of the real one. A hand-written ``.d.ts`` (no
    source beside it) is kept."""
    if not path.endswith((".d.ts", ".d.mts", ".d.cts")):
        return None
    stem = path[: path.rindex(".d.")]
    for ext in DECLARATION_SOURCES:
        if (root / f"{stem}{ext}").is_file():
            return f"generated declarations ({PurePosixPath(stem).name}{ext} beside it)"
    return None


def bytes_reason(data: bytes) -> str | None:
    if not data.strip():
        return "empty"
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return "binary"
    return None


def decode(data: bytes) -> str | None:
    """UTF-8 (BOM tolerated) or None."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def text_reason(text: str, language: str) -> str | None:
    """Minified or generated text (Tabby's heuristics, loosened for prose)."""
    head = text[:2000]
    if "@generated" in head or "DO NOT EDIT" in head:
        return "generated (marked @generated / DO NOT EDIT)"
    lines = text.splitlines() or [""]
    longest = max(len(line) for line in lines)
    average = len(text) / len(lines)
    alnum = sum(c.isalnum() for c in text) / max(len(text), 1)
    if alnum < 0.25:
        return f"generated/minified (alphanumeric fraction {alnum:.2f} < 0.25)"
    if language in PROSE:
        return f"minified (line of {longest} chars)" if longest > 10_000 else None
    if longest > 1000 or average > 150:
        return f"minified (longest line {longest} chars, average {average:.0f})"
    return None
