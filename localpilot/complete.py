"""Inline completion designed around the model's KV cache (what llama.vim and llama.vscode do, in process).

* The prompt's first tokens stay the same while the user types: other-file context first (chosen once per
  window position, from the index and from recently edited buffers), then a window of the current file that
  starts on a line boundary and moves in steps of ``window_step`` lines, then the cursor; llama.cpp reuses the
  cached prefix, so a keystroke costs the few new tokens, the short suffix and the answer.
* At the start of a line (a new spot) the model reads ``lines_after_new`` lines after the cursor, paid for by
  fewer lines before it; mid-line (typing) only ``lines_after``, since every keystroke re-reads them.
* Generation is capped in time: past ``t_max_ms`` it stops at the first line break (llama.vim's
  ``t_max_predict_ms``), past ``t_hard_ms`` it stops (a 1-thread CPU would otherwise spend seconds on one line);
  mid-line the caps are ``t_max_typing_ms`` / ``t_hard_typing_ms``.
* An LRU of completions answers a repeated cursor and text the user typed through (typing the start of the
  shown completion returns the rest at once); after a completion, the one that follows its acceptance is
  computed speculatively while the user reads it, so Tab is a cache hit.
* Secrets are cut out of the window and of every context chunk before the model sees them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from localpilot.experts.llm import Generator
from localpilot.index.secrets import redact
from localpilot.types import Hit

log = logging.getLogger(__name__)
HASH_COMMENT = {"python", "ruby", "bash", "toml", "yaml", "r", "perl", "make", "dockerfile"}
MAX_LINES = 8
LINE_CHARS = 2000  # most of one line the window reads
_IDENT = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]{3,}"
)  # names worth matching between the window and a context chunk
MIN_CONTEXT_CHARS = 120  # a chunk cut to fit shorter than this is not worth its tokens
WINDOW_BUCKETS = (384, 512, 768, 1024, 1536, 2048, 2816)  # window sizes in tokens


@dataclass(frozen=True)
class CompletionConfig:
    lines_before: int = 256  # llama.vim's window
    lines_after: int = 6  # suffix lines mid-line: all re-read on every keystroke (they follow the cursor in the prompt)
    # Suffix lines at the start of a line (a new spot: the prompt is read afresh there anyway). What follows
    # the cursor is the best clue at a new spot; they take their room from the lines before it.
    lines_after_new: int = 24
    window_step: int = 32  # the window's first line moves in steps, so its tokens stay cached
    max_window_chars: int = (
        9_000  # ~2.3k tokens: the window fits a 4k context uncut (a cut would move its start)
    )
    n_predict: int = 64
    t_max_ms: float = 600.0  # generating longer than this, stop at the first line break
    t_hard_ms: float = (
        1500.0  # generating longer than this, stop: a partial line now beats a whole one late
    )
    # Mid-line (text before the cursor on its line: the user is typing) the caps are tighter: the rest of
    # the line is what is wanted there, and every keystroke asks again.
    t_max_typing_ms: float = 200.0
    t_hard_typing_ms: float = 1000.0
    # Other-file chunks read before the window; the product's default comes from Settings.completion_context.
    extra_chunks: int = 3
    extra_lines: int = 24
    # Definitions first: the chunks of other files that define a name used in this many lines before the
    # cursor (nearest use first), then the index's search hits for those lines (0: search hits only).
    definition_lines: int = 12
    # Share of the new-spot prompt budget kept for other-file context: without it the window takes the whole
    # budget and context gets only what a short file leaves (bench/completion_context.py measures both).
    context_share: float = 0.25
    ring_size: int = 16  # recently edited places remembered as context candidates
    cache_size: int = 250
    typed_through_chars: int = 64
    speculate: bool = True
    new_spot_s: float = (
        2.0  # the window holds what the model reads in about this long (measured prompt speed)
    )
    min_window_tokens: int = 384


@dataclass
class Completion:
    text: str
    cached: bool = False
    ms: float = 0.0
    context: list[str] = field(
        default_factory=list
    )  # "path:start-end" of the chunks given as context
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the KV cache


@dataclass(frozen=True)
class Window:
    """The part of the buffer the model reads, and where it starts."""

    path: str
    start_line: int  # 0-based first line of ``prefix``
    prefix: str
    suffix: str


@dataclass(frozen=True)
class Chunk:
    path: str
    start_line: int  # 1-based
    text: str

    @property
    def label(self) -> str:
        return f"{self.path}:{self.start_line}-{self.start_line + self.text.count(chr(10))}"


def _head(text: str, lines: int, chars: int) -> str:
    """The first ``lines`` lines of ``text`` that fit ``chars``, cut on a line boundary."""
    out: list[str] = []
    size = 0
    for line in text.split("\n")[:lines]:
        size += len(line) + 1
        if size > chars:
            break
        out.append(line)
    return "\n".join(out)


def _same_suffix(a: str, b: str) -> bool:
    """Two windows' suffixes cut from the same text after the cursor (a new spot reads more lines of it than
    typing does): one is the other's start."""
    return a.startswith(b) or b.startswith(a)


def comment_for(language: str) -> str:
    return "#" if language in HASH_COMMENT else "//"


def trim(text: str) -> str:
    """A completion ends at a blank line after code, or after a few lines."""
    out: list[str] = []
    for line in text.split("\n"):
        if not line.strip() and any(x.strip() for x in out):
            break
        out.append(line)
        if len(out) >= MAX_LINES:
            break
    return "\n".join(out).rstrip()


def make_window(
    path: str,
    prefix: str,
    suffix: str,
    config: CompletionConfig,
    max_chars: int = 0,
    keep: int | None = None,
) -> Window:
    """Cut the buffer on line boundaries around the cursor: at most ``lines_before`` lines and ``max_chars``
    characters before it; the first line moves in steps (``window_step``, 8 for a small window) so that the
    prompt's head stays cached while the user types. ``keep``: the previous window's first line, kept while it
    is still within twice the budget (typing at one place never moves the head)."""
    budget = min(config.max_window_chars, max_chars or config.max_window_chars)
    step = config.window_step if budget >= config.max_window_chars // 2 else 8
    before = prefix.split("\n")
    cursor = len(before) - 1
    new_spot = not before[cursor].strip()
    after = suffix.split("\n")[: (config.lines_after_new if new_spot else config.lines_after) + 1]
    if new_spot:  # the longer suffix is paid for by the prefix, so a new spot reads as fast
        budget -= min(budget // 2, sum(min(len(x), LINE_CHARS) + 1 for x in after[1:]))
    start = max(0, cursor - config.lines_before)
    size = sum(len(x) + 1 for x in before[start:cursor])
    while start < cursor and size > budget:
        size -= len(before[start]) + 1
        start += 1
    start = min(cursor, -(-start // step) * step)  # up to the next step: within budget, and stable
    if (
        keep is not None
        and keep <= cursor
        and cursor - keep <= config.lines_before
        and sum(len(x) + 1 for x in before[keep:cursor]) <= 2 * budget
    ):
        start = keep
    head = "\n".join(before[start:cursor])
    current = before[cursor][
        -LINE_CHARS:
    ]  # a minified or generated line is read near the cursor only
    rest, tail = after[0][: LINE_CHARS // 4], "\n".join(line[:LINE_CHARS] for line in after[1:])
    line, _ = redact(current + "\0" + rest, path)  # the cursor's line is scanned whole
    current, _, rest = line.partition("\0")
    head = redact(head, path)[0] + "\n" if cursor > start else ""
    tail = "\n" + redact(tail, path)[0] if len(after) > 1 else ""
    return Window(path, start, head + current, rest + tail)


class ContextRing:
    """Recently edited or opened places of other files (llama.vim's ring buffer), newest last. Thread-safe."""

    def __init__(self, size: int, lines: int) -> None:
        self.lines = lines
        self._chunks: deque[Chunk] = deque(maxlen=size)
        self._lock = threading.Lock()

    def note(self, path: str, text: str, line: int) -> None:
        """Remember ``lines`` lines of ``text`` (a buffer of ``path``) around 0-based ``line``."""
        rows = text.split("\n")
        start = max(0, min(line - self.lines // 2, len(rows) - self.lines))
        body = redact("\n".join(rows[start : start + self.lines]), path)[0]
        if not body.strip():
            return
        chunk = Chunk(path, start + 1, body)
        with self._lock:
            for old in list(self._chunks):
                if old.path == path and abs(old.start_line - chunk.start_line) < self.lines:
                    self._chunks.remove(old)
            self._chunks.append(chunk)

    def snapshot(self) -> tuple[Chunk, ...]:
        with self._lock:
            return tuple(self._chunks)


@dataclass
class _Entry:
    path: str
    prefix: str
    suffix: str
    completion: Completion


class Completer:
    """One editor-facing completion engine over one FIM model instance (its own KV cache)."""

    def __init__(
        self,
        generator: Callable[[], Generator],
        search: Callable[[str, int], list[Hit]],
        config: CompletionConfig | None = None,
        definitions: Callable[[Sequence[str]], list[Hit]] | None = None,
    ) -> None:
        self.generator, self.search, self.definitions = generator, search, definitions
        self.config = config or CompletionConfig()
        self.ring = ContextRing(self.config.ring_size, self.config.extra_lines)
        self.cache: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = (
            threading.Lock()
        )  # guards the cache, the context choice and the speculation handle
        self._context: tuple[tuple[str, int], tuple[Chunk, ...]] | None = None
        self._speculation: threading.Event | None = (
            None  # stops the background job (speculation or prewarm)
        )
        self._prompt_rate = 0.0  # prompt tokens/s the model reached lately (sizes the window)
        self._last_window: tuple[str, int] | None = (
            None  # (path, first line) of the last completion's window
        )

    # ------------------------------------------------------------------------------------------ requests

    def complete(
        self,
        path: str,
        language: str,
        prefix: str,
        suffix: str,
        cancel: threading.Event | None = None,
    ) -> Completion:
        started = time.perf_counter()
        self._stop_speculation()
        win = make_window(path, prefix, suffix, self.config, self._window_chars(), self._kept(path))
        with self._lock:
            self._last_window = (path, win.start_line)
        if (hit := self._lookup(win)) is not None:
            return Completion(hit.text, True, (time.perf_counter() - started) * 1000, hit.context)
        extra = self._extra(win)
        result = self._generate(win, language, extra, cancel)
        result.ms = (time.perf_counter() - started) * 1000
        if cancel is None or not cancel.is_set():
            self._remember(win, result)
            if self.config.speculate and result.text:
                self._speculate(win, language, extra, result.text)
        return result

    def prewarm(self, path: str, language: str, prefix: str, suffix: str) -> int:
        """Evaluate the prompt a completion here would use (while the user is idle); returns tokens evaluated."""
        self._stop_speculation()
        win = make_window(path, prefix, suffix, self.config, self._window_chars(), self._kept(path))
        extra = self._extra(win)
        head, pairs = self._layout(win, language, extra)
        stop = threading.Event()
        with self._lock:
            self._speculation = (
                stop  # the next completion request stops the prewarm between two slices
            )
            self._last_window = (path, win.start_line)  # and keeps the window it read
        started = time.perf_counter()
        done = self.generator().prefill(head + win.prefix, win.suffix, pairs, path, stop)
        if done >= 256 and not stop.is_set():
            self._rate(done / max(time.perf_counter() - started, 1e-6))
        return done

    def _kept(self, path: str) -> int | None:
        with self._lock:
            last = self._last_window
        return last[1] if last is not None and last[0] == path else None

    def _budget_tokens(self) -> float:
        """Prompt tokens the model reads in ``new_spot_s`` at its measured speed (a middle size until measured)."""
        if self._prompt_rate <= 0:
            return WINDOW_BUCKETS[2]
        return max(self.config.min_window_tokens, self._prompt_rate * self.config.new_spot_s)

    def _window_chars(self) -> int:
        """The largest window bucket within the budget (~3.2 characters a token); in buckets, so that small
        changes in the measured speed never move the window."""
        share = self.config.context_share if self.config.extra_chunks > 0 else 0.0
        want = self._budget_tokens() * (1.0 - min(max(share, 0.0), 0.9))
        tokens = (
            max(b for b in WINDOW_BUCKETS if b <= want)
            if want >= WINDOW_BUCKETS[0]
            else WINDOW_BUCKETS[0]
        )
        return int(tokens * 3.2)

    def _context_chars(self, win: Window) -> int:
        """What the budget leaves for other-file context beside the window: at a new spot the context is read
        afresh too, so on a slow CPU the window comes first and the context gets what is left."""
        return int(self._budget_tokens() * 3.2) - len(win.prefix) - len(win.suffix)

    def _measure(self, stats: Any) -> None:
        fresh = stats.prompt_tokens - stats.cached_tokens
        if fresh >= 256 and stats.ttft_s > 0:  # a new spot: enough tokens for a meaningful speed
            self._rate(fresh / stats.ttft_s)

    def _rate(self, rate: float) -> None:
        self._prompt_rate = rate if self._prompt_rate <= 0 else 0.7 * self._prompt_rate + 0.3 * rate

    def note_buffer(self, path: str, text: str, line: int) -> None:
        """An editor opened or changed ``path`` near ``line``: a context candidate for other files."""
        self.ring.note(path, text, line)

    # ----------------------------------------------------------------------------------------- internals

    def _generate(
        self, win: Window, language: str, extra: Sequence[Chunk], cancel: threading.Event | None
    ) -> Completion:
        gen = self.generator()
        head, pairs = self._layout(win, language, extra)
        soft, hard = self._caps(win)
        text = ""
        started = 0.0  # the caps count from the first token: reading the prompt is not predicting
        for token in gen.infill(
            head + win.prefix, win.suffix, self.config.n_predict, cancel, pairs, win.path
        ):
            text += token.text
            started = started or time.perf_counter()
            elapsed = (time.perf_counter() - started) * 1000
            if (
                (elapsed > soft and "\n" in text.lstrip("\n"))
                or elapsed > hard
                or text.count("\n") > MAX_LINES
            ):
                break
            if cancel is not None and cancel.is_set():
                break
        stats = gen.last
        self._measure(stats)
        return Completion(
            trim(text),
            False,
            0.0,
            [c.label for c in extra],
            stats.prompt_tokens,
            stats.cached_tokens,
        )

    def _caps(self, win: Window) -> tuple[float, float]:
        """(soft, hard) generation caps in ms: tighter mid-line, where the user is typing."""
        line = win.prefix.rsplit("\n", 1)[-1]
        if line.strip():
            return self.config.t_max_typing_ms, self.config.t_hard_typing_ms
        return self.config.t_max_ms, self.config.t_hard_ms

    def _layout(
        self, win: Window, language: str, extra: Sequence[Chunk]
    ) -> tuple[str, list[tuple[str, str]]]:
        """Other files as the model's repository-level context where it has one, else as comments ahead of
        the window (both before every token that changes while typing)."""
        if not extra:
            return "", []
        if self.generator().repo_context:
            return "", [(c.path, c.text) for c in extra]
        mark = comment_for(language)
        blocks = []
        for c in extra:
            body = "\n".join(f"{mark} {line}" if line else mark for line in c.text.split("\n"))
            blocks.append(f"{mark} Related code from {c.label}\n{body}")
        return "\n".join(blocks) + "\n\n", []

    def _extra(self, win: Window) -> tuple[Chunk, ...]:
        """Context chunks, chosen again only when the window moves (so the prompt's head stays cached)."""
        key = (win.path, win.start_line)
        with self._lock:
            if self._context is not None and self._context[0] == key:
                return self._context[1]
        chunks = self._choose(win)
        with self._lock:
            self._context = (key, chunks)
        return chunks

    def _choose(self, win: Window) -> tuple[Chunk, ...]:
        """The index's best chunks of other files for the last lines before the cursor, then recently edited
        places that share a name with those lines (an unrelated buffer would only be noise for the model)."""
        n, room = self.config.extra_chunks, self._context_chars(win)
        recent = [line.strip() for line in win.prefix.splitlines()[-6:] if line.strip()]
        candidates: list[Chunk] = []
        if recent and room >= MIN_CONTEXT_CHARS and n > 0:
            hits = self._defined(win) + self._searched(" ".join(recent)[-400:])
            candidates = [
                Chunk(h.path, h.start_line, h.snippet) for h in hits if h.path != win.path
            ]
        names = set(_IDENT.findall(" ".join(recent)))
        candidates += [
            c
            for c in reversed(self.ring.snapshot())
            if c.path != win.path and names & set(_IDENT.findall(c.text))
        ]
        picked: list[Chunk] = []
        for c in candidates:
            if len(picked) >= n or room <= 0:
                break
            if any(
                p.path == c.path and abs(p.start_line - c.start_line) < self.config.extra_lines
                for p in picked
            ):
                continue
            whole = "\n".join(c.text.split("\n")[: self.config.extra_lines])
            body = _head(whole, self.config.extra_lines, room)
            if (
                body == whole or len(body) >= MIN_CONTEXT_CHARS
            ):  # whole, or a cut part still worth reading
                picked.append(Chunk(c.path, c.start_line, body))
                room -= len(body) + len(c.path) + 8
        return tuple(picked)

    def _defined(self, win: Window) -> list[Hit]:
        """Other files' definitions of the names used just before the cursor, nearest use first."""
        if self.definitions is None or not self.config.definition_lines:
            return []
        lines = win.prefix.splitlines()[-self.config.definition_lines :]
        names = list(dict.fromkeys(reversed(_IDENT.findall("\n".join(lines)))))
        try:
            return self.definitions(names)
        except Exception:  # no index yet, or a failure: complete with what there is
            log.debug("no definitions for completion context", exc_info=True)
            return []

    def _searched(self, query: str) -> list[Hit]:
        try:
            return self.search(query, 6)
        except Exception:  # no index yet, or a search failure: complete with what there is
            log.debug("no search hits for completion context", exc_info=True)
            return []

    # ------------------------------------------------------------------------------------------- caching

    @staticmethod
    def _key(win: Window) -> str:
        text = f"{win.path}\0{win.prefix}\0{win.suffix}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def _lookup(self, win: Window) -> Completion | None:
        """The exact cursor, or one the user reached by typing the start of a cached completion."""
        with self._lock:
            key = self._key(win)
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key].completion
            for entry in reversed(self.cache.values()):
                if (
                    entry.path != win.path
                    or not _same_suffix(entry.suffix, win.suffix)
                    or not win.prefix.startswith(entry.prefix)
                ):
                    continue
                typed = win.prefix[len(entry.prefix) :]
                text = entry.completion.text
                if (
                    0 < len(typed) <= self.config.typed_through_chars
                    and text.startswith(typed)
                    and text != typed
                ):
                    return Completion(text[len(typed) :], True, 0.0, entry.completion.context)
        return None

    def _remember(self, win: Window, result: Completion) -> None:
        with self._lock:
            self.cache[self._key(win)] = _Entry(win.path, win.prefix, win.suffix, result)
            while len(self.cache) > self.config.cache_size:
                self.cache.popitem(last=False)

    def _speculate(self, win: Window, language: str, extra: Sequence[Chunk], shown: str) -> None:
        """Compute the completion that follows accepting ``shown`` in the background (cancelled by the next
        request), so that Tab lands on a cached answer."""
        accepted = Window(win.path, win.start_line, win.prefix + shown, win.suffix)
        stop = threading.Event()
        with self._lock:
            self._speculation = stop

        def run() -> None:
            try:
                result = self._generate(accepted, language, extra, stop)
            except (
                Exception
            ) as exc:  # a background guess must never surface; the next request retries
                log.debug("speculative completion failed: %s", exc)
                return
            if not stop.is_set():
                self._remember(accepted, result)

        threading.Thread(target=run, name="fim-speculate", daemon=True).start()

    def _stop_speculation(self) -> None:
        with self._lock:
            stop, self._speculation = self._speculation, None
        if stop is not None:
            stop.set()
