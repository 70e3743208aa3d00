"""Keep secrets out of everything localpilot stores, embeds, prompts with or shows: detect-secrets' detectors.

``redact(text, path)`` replaces each secret value with ``[REDACTED:kind]`` and keeps every line break, so line
numbers stay true. The detectors are detect-secrets' own (keyword detector with its per-language assignment
patterns, base64/hex high-entropy strings, JWT, basic-auth URLs and the provider plugins) and so are the false-
positive filters (UUIDs, sequential strings, templates, indirect references). Two things are ours:

* a multi-line private-key block is cut whole (detect-secrets reports the BEGIN line only);
* a cheap pre-filter: a line is handed to the detectors only if it has something a secret needs (a long
  token, a URL with a user part, or one of the keyword detector's words). Without it scanning costs more than
  chunking; with it a file costs one regex pass over its text (see ``bench/secrets.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

#: detect-secrets plugins not used: a public IP address is not a credential, and addresses are common in code.
SKIPPED_PLUGINS = frozenset({"IPPublicDetector"})
MIN_SECRET_CHARS = 4

_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.S,
)
# A line can hold a secret only if it has credentials in a URL or a keyword-detector word, or a long token with
# a digit in it (a random 32-character base64 key has none with probability 0.1%).
_WORDS = re.compile(
    r"://[^\s/]*:[^\s/]*@|api_?key|auth_?key|service_?key|account_?key|db_?key|database_?key|priv_?key|"
    r"private_?key|client_?key|db_?pass|database_?pass|key_?pass|passw|pwd|secret|contrase",
    re.I,
)
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.~]{16,}")
_DIGIT = re.compile(r"\d")
_SECRET_NAME = r"[\w.-]*(?:token|secret|passw|pwd|api_?key|auth_?key|access_?key|private_?key|credential)[\w.-]*"
_ASSIGNED = re.compile(
    rf"(?i)(?:{_SECRET_NAME}[\"']?\s*(?::\s*[^=\n\"']{{1,24}}?\s*)?(?:=>|:=|=|:)\s*[\"'`]?|\bbearer\s+)"
    r"([^\s\"'`,;()<>{}\[\]]+)"
)
_SECRET_WORD = re.compile(r"(?i)secret|passw|pwd|token|api_?key|auth|credential|private|bearer")
_HASH_CONTEXT = re.compile(
    r"(?i)sha\d*|md5|blake|crc|hash|digest|checksum|integrity|etag|commit|revision|\brev\b|fingerprint|uuid|guid|"
    r"nonce|salt|vector|expected"
)
_TEST_PATH = re.compile(
    r"(?i)(?:^|/)(?:tests?|testing|testdata|test_data|fixtures?|examples?|examplefiles|samples?|spec|__tests__|"
    r"benchmarks?)/|(?:^|/)test_[^/]*$|_tests?\.[^/]+$|\.(?:test|spec)\.[^/]+$"
)
# Credentials in documentation URLs: ``user:pass@``, ``admin:password@``, ``:***@``.
_PLACEHOLDER = re.compile(
    r"(?i)(?:pass(?:word|wd)?|pwd|secret|changeme|example|test|x{3,}|\*{3,})(?:%[0-9a-f]{2}.*)?$"
)
# A value found inside a token (a JWT's lazy third part) is cut out with the whole token around it.
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_\-.~]*")


def worth_scanning(line: str) -> bool:
    return bool(_WORDS.search(line)) or any(_DIGIT.search(m.group()) for m in _TOKEN.finditer(line))


@dataclass(frozen=True)
class Detector:
    kind: str
    plugin: Any


@lru_cache(maxsize=1)
def detectors() -> tuple[Detector, ...]:
    """One instance of every detect-secrets plugin we use (stateless after construction: safe from any thread)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    out: list[Any] = []
    plugins: dict[str, Any] = dict(get_mapping_from_secret_type_to_class())
    for kind, cls in sorted(plugins.items()):
        if cls.__name__ in SKIPPED_PLUGINS:
            continue
        out.append(Detector(kind, cls()))
    return tuple(out)


@lru_cache(maxsize=64)
def _keyword_patterns(suffix: str) -> Any:
    """detect-secrets' assignment patterns for the file type, plus the quoted ``:=`` and C-style forms for every
    code file: a buffer or file is not always in the language its name says (a Go snippet in a .py draft)."""
    from detect_secrets.plugins import keyword as kw
    from detect_secrets.util.filetype import FileType, determine_file_type

    kind = determine_file_type(f"x{suffix}")
    patterns = dict(kw.REGEX_BY_FILETYPE.get(kind, kw.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP))
    if kind not in {
        FileType.YAML,
        FileType.CONFIG,
        FileType.INI,
        FileType.PROPERTIES,
        FileType.TOML,
    }:
        patterns.setdefault(kw.FOLLOWED_BY_COLON_EQUAL_SIGNS_REGEX, 4)
        patterns.setdefault(
            kw.FOLLOWED_BY_EQUAL_SIGNS_OPTIONAL_BRACKETS_OPTIONAL_AT_SIGN_QUOTES_REQUIRED_REGEX, 6
        )
    return patterns


def _values(detector: Detector, line: str, keyword_patterns: Any) -> Iterator[str]:
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
    from detect_secrets.plugins.keyword import KeywordDetector

    plugin = detector.plugin
    if isinstance(plugin, KeywordDetector):
        yield from plugin.analyze_string(line, denylist_regex_to_group=keyword_patterns)
    elif isinstance(plugin, HighEntropyStringsPlugin):
        yield from (
            v
            for v in plugin.analyze_string(line)
            if plugin.calculate_shannon_entropy(v) > plugin.entropy_limit
        )
    else:
        yield from plugin.analyze_string(line)


def _data_not_secret(line: str, path: str) -> bool:
    """A random-looking string that only the entropy detectors found, with no secret-ish name on its line, is
    data when the line says it is a hash (sha256, digest, etag, commit, ...) or the file is a test, fixture or
    example (test vectors, expected outputs). Keyword, provider and assignment findings are kept everywhere."""
    if _SECRET_WORD.search(line):
        return False
    return bool(_HASH_CONTEXT.search(line) or _TEST_PATH.search(path))


def _is_false_positive(detector: Detector, value: str, line: str) -> bool:
    from detect_secrets.filters import heuristic
    from detect_secrets.plugins.keyword import KeywordDetector

    if len(value) < MIN_SECRET_CHARS or value not in line:
        return True
    if _is_provider(
        detector
    ):  # a provider's own token shape (ghp_, xoxb-, AKIA, eyJ): trusted as found
        return detector.kind == "Basic Auth Credentials" and bool(_PLACEHOLDER.match(value))
    if heuristic.is_sequential_string(value) or heuristic.is_potential_uuid(value):
        return True
    if heuristic.is_templated_secret(value) or heuristic.is_not_alphanumeric_string(value):
        return True
    if isinstance(detector.plugin, KeywordDetector):
        return heuristic.is_prefixed_with_dollar_sign(value) or heuristic.is_indirect_reference(
            line
        )
    return False


def _is_provider(detector: Detector) -> bool:
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.keyword import KeywordDetector

    return isinstance(detector.plugin, RegexBasedDetector) and not isinstance(
        detector.plugin, KeywordDetector
    )


def scan_line(line: str, path: str) -> list[tuple[str, str]]:
    """(kind, value) of each secret in one line, each value grown to the whole token it sits in (a plugin may
    report only a prefix: ``ghp`` of a GitHub token, a JWT without its signature); [] for most lines without
    running any detector."""
    if not worth_scanning(line):
        return []
    patterns = _keyword_patterns(PurePosixPath(path).suffix.lower())
    found: dict[str, str] = {}
    for detector in detectors():
        for raw in _values(detector, line, patterns):
            value = _grown(line, raw)
            if value and value not in found and not _is_false_positive(detector, value, line):
                found[value] = _kind(detector.kind)
    if (
        found
        and all(k.endswith("high-entropy-string") for k in found.values())
        and _data_not_secret(line, path)
    ):
        found = {}
    for value in _assigned_values(line):
        found.setdefault(value, "secret-assignment")
    return [(kind, value) for value, kind in found.items()]


def _assigned_values(line: str) -> Iterator[str]:
    """Generated-looking values given to secret-named names where detect-secrets' patterns need quotes or do
    not look: ``ENV DB_PASSWORD=...`` in a Dockerfile, ``export NPM_TOKEN=npm_...``, ``SECRET_KEY: &str = ...``
    in Rust, ``Authorization: Bearer ...``. Only values that look generated (see ``_looks_generated``), so
    ``password = self.password`` or ``token: str = "access"`` stay."""
    for match in _ASSIGNED.finditer(line):
        value = _grown(line, match.group(1))
        if _looks_generated(value) and not _keyword_false_positive(value, line):
            yield value


def _looks_generated(value: str) -> bool:
    """12+ characters of high entropy with letters and two digits, or one digit and both letter cases."""
    digits = len(_DIGIT.findall(value))
    mixed = bool(re.search(r"[a-z]", value)) and bool(re.search(r"[A-Z]", value))
    return (
        len(value) >= 12
        and (digits >= 2 or (digits == 1 and mixed))
        and bool(re.search(r"[A-Za-z]", value))
        and _entropy(value) >= 3.5
    )


def _keyword_false_positive(value: str, line: str) -> bool:
    """detect-secrets' own false-positive filters for a value found by a keyword-like rule."""
    keyword = next(d for d in detectors() if d.kind == "Secret Keyword")
    return _is_false_positive(keyword, value, line)


def _entropy(value: str) -> float:
    return -sum(p * math.log2(p) for p in (value.count(c) / len(value) for c in set(value)))


def _grown(line: str, value: str) -> str:
    start = line.find(value)
    if start < 0 or not value:
        return ""
    return line[start : _TOKEN_CHARS.match(line, start + len(value)).end()]  # type: ignore[union-attr]


def _kind(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


def redact(text: str, path: str = "") -> tuple[str, int]:
    """``text`` with every secret replaced by ``[REDACTED:kind]`` (line breaks kept), and how many were replaced.
    ``path`` picks the keyword detector's assignment patterns for the file's language."""
    text, total = _PRIVATE_KEY_BLOCK.subn(
        lambda m: "[REDACTED:private-key]" + "\n" * m.group(0).count("\n"), text
    )
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if secrets := scan_line(line, path):
            lines[i] = _cut(line, secrets)
            total += len(secrets)
    return "\n".join(lines), total


def _cut(line: str, secrets: list[tuple[str, str]]) -> str:
    """Replace every occurrence of each value with its marker, longest value first."""
    for kind, value in sorted(secrets, key=lambda s: -len(s[1])):
        line = line.replace(value, f"[REDACTED:{kind}]")
    return line
