"""Attribution by the encoders: which shown snippet, and which of its lines, support each sentence of an answer.

A 0.5B model cannot be trusted to write ``[path:start-end]`` (measured: it never wrote a line range itself), so
citations are computed after the answer, from what the experts already have:

* the embedder's vector of each sentence against the snippet's stored vector (the embedding cache keeps the
  vector of every indexed chunk by content hash, so only the sentences are encoded: a few short texts);
* the code terms the sentence shares with the snippet, weighted by how rare each is among the shown snippets
  (a name such as ``compile_path`` is strong evidence; "request", in every snippet, is none).

The best snippet of a supported sentence is cited with the lines that carry the sentence's terms (a window of
at most ``CITE_LINES``), not the whole chunk. A sentence no snippet supports is marked unsupported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from localpilot.text import query_terms
from localpilot.types import Chunk, Hit

CITE_LINES = 8  # most lines one claim's citation spans
LEXICAL_WEIGHT = 0.6  # support = 0.6 * shared rare terms + 0.4 * vector similarity (rescaled)
SIM_FLOOR, SIM_CEIL = 0.15, 0.65  # code-minilm cosine of a sentence to unrelated / matching code
SUPPORTED = 0.3  # support a claim needs to be cited (bench/answer.py: dev questions of requests)
# Among snippets that support a claim, one the sentence names wins (the model said what it relied on), and
# retrieval's own ranking breaks near-ties: a sentence restating the question belongs to the snippet that
# answers the question best (choice = support + NAMED if named + PRIOR * score / best score)
NAMED = 1.0
PRIOR = 1.0
UNSUPPORTED = "[unsupported]"
COMMENT_MARKS = (
    "//",
    "/*",
    "*",
    "#",
    "--",
)  # a line starting so is a comment in most indexed languages
COMMENT_KEEPS = (
    0.25  # share of its weight a comment line keeps; the rest goes to the code it documents
)
MIN_WORDS = 4  # shorter sentences ("Here is how.") are not claims
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[*-])|\n+")
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
_CITED = re.compile(r"\[[^\]\s]+:\d+(?:-\d+)?\]")

Embed = Callable[[Sequence[str]], np.ndarray]
Vectors = Callable[[Sequence[Hit]], list[np.ndarray | None]]


@dataclass(frozen=True)
class Claim:
    """A sentence of the answer and what supports it: ``path:start-end`` or None (unsupported)."""

    text: str
    start: int  # character offsets in the answer
    end: int
    path: str = ""
    start_line: int = 0
    end_line: int = 0
    support: float = 0.0

    @property
    def supported(self) -> bool:
        return bool(self.path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Attribution:
    claims: tuple[Claim, ...]

    @property
    def coverage(self) -> float:
        """Share of the answer's claims some snippet supports (1.0 for an answer with no claims)."""
        return sum(c.supported for c in self.claims) / len(self.claims) if self.claims else 1.0

    def sources(self) -> list[tuple[str, int, int, float]]:
        """(path, start, end, support) of every supporting span, best supported first, each once."""
        best: dict[tuple[str, int, int], float] = {}
        for c in self.claims:
            if c.supported:
                key = (c.path, c.start_line, c.end_line)
                best[key] = max(best.get(key, 0.0), c.support)
        return [(*k, s) for k, s in sorted(best.items(), key=lambda kv: -kv[1])]

    def annotate(self, text: str) -> str:
        """``text`` with ``[path:start-end]`` after each supported sentence that cites nothing itself, and
        ``[unsupported]`` after each sentence no shown snippet supports."""
        out, at = [], 0
        for c in self.claims:
            if _CITED.search(c.text) or c.text.startswith("```"):
                continue
            mark = f"[{c.path}:{c.start_line}-{c.end_line}]" if c.supported else UNSUPPORTED
            out += [text[at : c.end], f" {mark}"]
            at = c.end
        return "".join(out) + text[at:]


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the answer's sentences; a fenced code block is one unit."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for fence in [*_FENCE.finditer(text), None]:
        stop = fence.start() if fence else len(text)
        spans += _split(text, pos, stop)
        if fence:
            spans.append((fence.start(), fence.end()))
            pos = fence.end()
    return [
        (s, e)
        for s, e in spans
        if len(text[s:e].split()) >= MIN_WORDS or text[s:e].startswith("```")
    ]


def _split(text: str, start: int, stop: int) -> list[tuple[int, int]]:
    out, at = [], start
    for m in _SENTENCE.finditer(text, start, stop):
        out.append((at, m.start()))
        at = m.end()
    out.append((at, stop))
    return [
        (s + len(text[s:e]) - len(text[s:e].lstrip()), s + len(text[s:e].rstrip()))
        for s, e in out
        if text[s:e].strip()
    ]


class Attributor:
    """Scores an answer's sentences against the snippets its prompt showed; uses only loaded encoders."""

    def __init__(self, embed: Embed, vectors: Vectors) -> None:
        self.embed, self.vectors = embed, vectors

    def attribute(self, text: str, snippets: Sequence[Hit]) -> Attribution:
        spans = sentences(text)
        if not spans or not snippets:
            return Attribution(tuple(Claim(text[s:e], s, e) for s, e in spans))
        claims = [text[s:e] for s, e in spans]
        terms = [set(query_terms(c)) for c in claims]
        lines = [[set(query_terms(line)) for line in h.snippet.split("\n")] for h in snippets]
        bags = [set().union(*rows) if rows else set() for rows in lines]
        idf = _idf(bags)
        sims = self._similarities(claims, snippets)
        prior = _prior(snippets)
        out = []
        for i, (s, e) in enumerate(spans):
            scores = [_support(terms[i], bag, idf, float(sims[i, j])) for j, bag in enumerate(bags)]
            if max(scores) < SUPPORTED:
                out.append(Claim(claims[i], s, e, support=round(max(scores), 3)))
                continue
            j = int(
                np.argmax(
                    [
                        _choice(claims[i], h, sc, p)
                        for h, sc, p in zip(snippets, scores, prior, strict=True)
                    ]
                )
            )
            hit = snippets[j]
            start, end = _span(hit, terms[i], lines[j], idf)
            out.append(Claim(claims[i], s, e, hit.path, start, end, round(scores[j], 3)))
        return Attribution(tuple(out))

    def _similarities(self, claims: Sequence[str], snippets: Sequence[Hit]) -> np.ndarray:
        stored = self.vectors(snippets)
        missing = [i for i, v in enumerate(stored) if v is None]
        fresh = self.embed([*claims, *(embed_text(snippets[i]) for i in missing)])
        vecs = list(stored)
        for row, i in enumerate(missing):
            vecs[i] = fresh[len(claims) + row]
        return np.asarray(fresh[: len(claims)]) @ np.stack([np.asarray(v) for v in vecs]).T


def _choice(claim: str, hit: Hit, support: float, prior: float) -> float:
    """How strongly a claim points at a snippet that supports it (-1: it does not support the claim)."""
    if support < SUPPORTED:
        return -1.0
    return support + NAMED * names(claim, hit.symbol) + PRIOR * prior


def names(text: str, symbol: str) -> bool:
    """Does ``text`` name the symbol's last part: in backticks or as a call at any length, else as a word of
    at least 4 characters (koa's ``is`` or ``get`` are everyday words)."""
    name = symbol.rsplit(".", 1)[-1]
    if not name:
        return False
    quoted = re.escape(name)
    if re.search(rf"`{quoted}(?:\(\))?`|\b{quoted}\(", text):
        return True
    return len(name) >= 4 and re.search(rf"\b{quoted}\b", text) is not None


def _prior(snippets: Sequence[Hit]) -> list[float]:
    """Each snippet's retrieval score as a share of the best one's (0 where scores are not positive)."""
    top = max(h.score for h in snippets)
    return [max(0.0, h.score) / top if top > 0 else 0.0 for h in snippets]


def embed_text(hit: Hit) -> str:
    return as_chunk(hit).embed_text()


def as_chunk(hit: Hit) -> Chunk:
    """The indexed chunk a hit came from (its content hash finds the stored vector)."""
    return Chunk(
        hit.path, hit.start_line, hit.end_line, hit.language, hit.symbol, hit.kind, hit.snippet
    )


def _idf(bags: Sequence[set[str]]) -> dict[str, float]:
    n = len(bags)
    df: dict[str, int] = {}
    for bag in bags:
        for t in bag:
            df[t] = df.get(t, 0) + 1
    return {t: math.log(1 + n / d) for t, d in df.items()} | {"": math.log(1 + n)}


def _support(terms: set[str], bag: set[str], idf: dict[str, float], sim: float) -> float:
    """Shared rare terms (share of the sentence's term weight found in the snippet) blended with the
    rescaled vector similarity."""
    unseen = idf[
        ""
    ]  # a term no snippet has weighs like the rarest: generic prose earns little support
    total = sum(idf.get(t, unseen) for t in terms)
    lexical = sum(idf[t] for t in terms & bag) / total if total else 0.0
    semantic = min(1.0, max(0.0, (sim - SIM_FLOOR) / (SIM_CEIL - SIM_FLOOR)))
    return LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * semantic


def _span(
    hit: Hit, terms: set[str], rows: Sequence[set[str]], idf: dict[str, float]
) -> tuple[int, int]:
    """File lines of the citation. A snippet whose text is not the file's lines one for one (a class or module
    header chunk, summarised with elisions) is cited from its first line, never past its last."""
    text = hit.snippet.split("\n")
    if len(text) != hit.end_line - hit.start_line + 1:
        return hit.start_line, min(hit.end_line, hit.start_line + CITE_LINES - 1)
    first, last = _best_lines(terms, rows, idf, text)
    return hit.start_line + first, min(hit.end_line, hit.start_line + last)


def _best_lines(
    terms: set[str], rows: Sequence[set[str]], idf: dict[str, float], text: Sequence[str] = ()
) -> tuple[int, int]:
    """0-based first and last line of the window (at most ``CITE_LINES``) carrying most of the sentence's
    term weight, trimmed to lines that carry some; the snippet's head when no line shares a term. A comment
    line passes most of its weight to the code line it documents (the next one that is not a comment): an
    answer repeats the doc comment, but the citation belongs on the code."""
    weights = [sum(idf.get(t, 0.0) for t in terms & row) for row in rows]
    if not any(weights):
        return 0, min(len(rows), CITE_LINES) - 1
    comment = _to_code(weights, text)
    size = min(CITE_LINES, len(rows))
    sums = [sum(weights[i : i + size]) for i in range(len(rows) - size + 1)]
    start = int(np.argmax(sums))
    used = [i for i in range(start, start + size) if weights[i] > 0]
    code = [i for i in used if i not in comment]
    return (code or used)[0], (code or used)[-1]


def _to_code(weights: list[float], text: Sequence[str]) -> set[int]:
    """Move comment lines' weight onto the code line below them; returns the comment lines."""
    target = None  # the code line below the current run of comment lines
    comments: set[int] = set()
    for i in range(min(len(text), len(weights)) - 1, -1, -1):
        line = text[i].strip()
        if not line:
            continue
        if not line.startswith(COMMENT_MARKS):
            target = i
            continue
        comments.add(i)
        if target is not None and weights[i] > 0:
            weights[target] += (1 - COMMENT_KEEPS) * weights[i]
            weights[i] *= COMMENT_KEEPS
    return comments
