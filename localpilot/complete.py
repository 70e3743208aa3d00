"""Inline completion: fill in the middle at the cursor, with a few snippets from other files as context.

Results are cached by a hash of what the model would see, so re-asking at the same spot (editors do) is free.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from localpilot.experts.llm import Generator
from localpilot.index.secrets import redact
from localpilot.types import Hit

HASH_COMMENT = {"python", "ruby", "bash", "toml", "yaml", "r", "perl", "make", "dockerfile"}
MAX_LINES = 8
CONTEXT_SNIPPETS = 2
CONTEXT_LINES = 30
#: Most of the buffer a completion reads: more than a 4k-token model context holds, cut on line boundaries.
WINDOW_BEFORE_CHARS = 24_000
WINDOW_AFTER_CHARS = 8_000


@dataclass
class Completion:
    text: str
    cached: bool = False
    ms: float = 0.0
    context: list[str] = field(default_factory=list)  # "path:start-end" of snippets given as context


def comment_for(language: str) -> str:
    return "#" if language in HASH_COMMENT else "//"


def context_header(hits: Sequence[Hit], language: str) -> str:
    """Snippets from other files, commented out so they cannot break the code being completed."""
    mark = comment_for(language)
    blocks = []
    for h in hits:
        lines = h.snippet.splitlines()[:CONTEXT_LINES]
        body = "\n".join(f"{mark} {line}" if line else mark for line in lines)
        blocks.append(f"{mark} Related code from {h.path}:{h.start_line}-{h.end_line}\n{body}")
    return "\n".join(blocks) + "\n\n" if blocks else ""


def window(prefix: str, suffix: str, path: str) -> tuple[str, str]:
    """The part of the buffer around the cursor a completion may read, with secrets cut out of it (whole
    lines only, so a secret is never split at the window's edge)."""
    if len(prefix) > WINDOW_BEFORE_CHARS:
        cut = prefix[-WINDOW_BEFORE_CHARS:]
        prefix = cut[cut.find("\n") + 1 :] if "\n" in cut else ""
    if len(suffix) > WINDOW_AFTER_CHARS:
        cut = suffix[:WINDOW_AFTER_CHARS]
        suffix = cut[: cut.rfind("\n")] if "\n" in cut else ""
    head, _, current = prefix.rpartition("\n")
    rest, newline, tail = suffix.partition("\n")
    line, _ = redact(current + "\0" + rest, path)  # the cursor's line is scanned whole
    current, _, rest = line.partition("\0")
    head = redact(head, path)[0] + "\n" if prefix.count("\n") else ""
    return head + current, rest + newline + redact(tail, path)[0]


def trim(text: str) -> str:
    """A completion ends at a blank line after code, or after a few lines."""
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if not line.strip() and any(x.strip() for x in out):
            break
        out.append(line)
        if len(out) >= MAX_LINES:
            break
    return "\n".join(out).rstrip()


class Completer:
    def __init__(self, generator: Callable[[], Generator], search: Callable[[str, int], list[Hit]],
                 max_tokens: int = 48, cache_size: int = 256) -> None:
        self.generator, self.search, self.max_tokens = generator, search, max_tokens
        self.cache: OrderedDict[str, Completion] = OrderedDict()
        self.cache_size = cache_size
        self._cache_lock = threading.Lock()  # the LRU is shared by every editor thread
    def complete(self, path: str, language: str, prefix: str, suffix: str,
                 cancel: threading.Event | None = None) -> Completion:
        started = time.perf_counter()
        prefix, suffix = window(prefix, suffix, path)
        hits = self._context(path, prefix)
        head = context_header(hits, language)
        key = hashlib.sha256(f"{path}\0{head}\0{prefix[-4000:]}\0{suffix[:1000]}".encode()).hexdigest()
        if (hit := self._cached(key)) is not None:
            return Completion(hit.text, True, (time.perf_counter() - started) * 1000, hit.context)
        text = ""
        for token in self.generator().infill(head + prefix, suffix, self.max_tokens, cancel):
            text += token.text
            if text.count("\n") > MAX_LINES or (cancel is not None and cancel.is_set()):
                break
        result = Completion(trim(text), False, (time.perf_counter() - started) * 1000,
                            [f"{h.path}:{h.start_line}-{h.end_line}" for h in hits])
        if cancel is None or not cancel.is_set():
            self._remember(key, result)
        return result

    def _cached(self, key: str) -> Completion | None:
        with self._cache_lock:
            hit = self.cache.get(key)
            if hit is not None:
                self.cache.move_to_end(key)
            return hit

    def _remember(self, key: str, result: Completion) -> None:
        with self._cache_lock:
            self.cache[key] = result
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)

    def _context(self, path: str, prefix: str) -> list[Hit]:
        recent = [line.strip() for line in prefix.splitlines()[-6:] if line.strip()]
        if not recent:
            return []
        try:
            hits = self.search(" ".join(recent)[-400:], 6)
        except Exception:  # no index yet, or a search failure: complete without context
            return []
        return [h for h in hits if h.path != path][:CONTEXT_SNIPPETS]
