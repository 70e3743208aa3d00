"""Decide which files are indexed, and keep secrets out of the index.

Each check returns a human-readable skip reason, or None when the file may be indexed.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import PurePosixPath

BINARY_SNIFF_BYTES = 8192
#: Bump when these rules change: files are re-examined on the next run (no re-embedding of unchanged chunks).
RULES_VERSION = 2

#: File names that hold secrets: never read, never indexed.
SECRET_NAMES = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".pgpass", ".htpasswd", "*.gpg",
    "credentials", "credentials.json", "secrets.yml", "secrets.yaml", ".npmrc", ".pypirc",
    ".git-credentials", "*.tfstate", "*.tfstate.*", "*.tfvars", ".envrc", "*.ppk", ".dockercfg", "kubeconfig",
    "*.kubeconfig", "*.asc", "*.der", "*.crt", "*.cer",
)
#: Generated files with no value for search.
GENERATED_NAMES = (
    "*.min.js", "*.min.css", "*.map", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock",
    "Cargo.lock", "uv.lock", "Pipfile.lock", "composer.lock", "Gemfile.lock", "go.sum",
)
PROSE = {"markdown", "text", "rst"}


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns)


def _excluded(path: str, patterns: tuple[str, ...]) -> bool:
    """gitignore-like: ``vendor/*``, ``*.json``, and a bare or trailing-slash directory name (``build/``)."""
    pure = PurePosixPath(path)
    for raw in patterns:
        p = raw.strip().rstrip("/")
        if not p:
            continue
        if fnmatch.fnmatchcase(path, p) or pure.match(p) or path.startswith(p + "/"):
            return True
        if "/" not in p and any(fnmatch.fnmatchcase(part, p) for part in pure.parts[:-1]):
            return True
    return False


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


_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private-key", re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        re.S)),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b")),
    ("aws-secret", re.compile(
        r"(?i)(?<=aws_secret_access_key)(?P<sep>[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b")),
    ("slack-token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("openai-key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{32,}\b")),
    ("stripe-key", re.compile(r"\b[rs]k_live_[0-9a-zA-Z]{24,}\b")),
)


def redact_secrets(text: str) -> tuple[str, int]:
    """Replace key-shaped strings with ``[REDACTED:kind]``, keeping line numbers intact."""
    total = 0
    for kind, pattern in _SECRET_PATTERNS:
        def _sub(m: re.Match[str], kind: str = kind) -> str:
            sep = m.groupdict().get("sep") or ""
            return f"{sep}[REDACTED:{kind}]" + "\n" * m.group(0).count("\n")

        text, n = pattern.subn(_sub, text)
        total += n
    return text, total
