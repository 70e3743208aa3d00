"""Hybrid retrieval: vector + lexical (BM25 over code terms) + symbol channels, fused (normalised scores, or
reciprocal rank), capped per file, then optionally reranked by a cross-encoder blended with the fused score."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from localpilot.experts.embedder import Embedder
from localpilot.experts.reranker import Reranker
from localpilot.index.state import ChunkRow, IndexState, SymbolRows
from localpilot.store import Store
from localpilot.text import QUESTION_WORDS, query_terms, split_identifier
from localpilot.types import Hit

MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 48
RRF_K = 60
#: Per channel: candidates without a vector yet, embedded at query time (see Retriever._with_pending).
PENDING_PEEK = 4
MAX_CHUNKS_PER_DEFINITION = (
    8  # windows of one long function; more chunks than this per file: ambiguous
)


@dataclass(frozen=True)
class RetrievalConfig:
    depth: int = 50  # candidates taken from each channel
    per_file: int = 5  # most hits from one file
    # Candidates the reranker sees: reranking is most of a query's time on a CPU (20 pairs 414 of 446 ms at
    # 13k chunks, 2-core AVX512-BF16). On the dev sdists below 16 scores exactly as 20 (MRR@10 0.601, R@10
    # 0.838), 12 loses 0.003 / 0.010 and 10 loses 0.004 / 0.020; reading 160 or 128 tokens instead of 192
    # loses 0.004-0.005 MRR@10 (bench/tune_retrieval.py, bench/results-tuning.json).
    rerank_top: int = 16
    # final = reranker probability + blend * fused score / best fused score. Channel weights and blend are
    # tuned by bench/tune_retrieval.py on dev sdists that are neither installed here (so in no training data),
    # evaluated, nor reserved (bottle, itsdangerous, cachetools, pyparsing; 197 queries), by the mean of MRR@10
    # and R@10: lexical 0.2-0.3 with symbol 0.05-0.1 and blend 1-2 is a plateau there (0.693-0.706), against
    # 0.681 for the earlier 0.1 / 0.05 / 2.0 (which had been tuned on a package now reserved for evaluation).
    rerank_blend: float = 1.0
    weights: dict[str, float] = field(
        default_factory=lambda: {"vector": 1.0, "lexical": 0.2, "symbol": 0.1}
    )
    fusion: str = "score"  # score (weighted sum of max-normalised channel scores) | rrf
    # Final score factor of code outside every definition (imports, module constants): in JavaScript and
    # TypeScript such chunks name what they import and outrank the definitions (tuned on dev packages only,
    # bench/tune_languages.py --anonymous: MRR@10 1.0 -> 0.6 JS 0.542 -> 0.575, TS 0.668 -> 0.697, Python
    # 0.599 -> 0.602, Go and Rust level; 0.5 scores as 0.6).
    anonymous_weight: float = 0.6


Ranked = list[tuple[str, float]]  # (chunk_id, channel score), best first


def clean_query(query: str) -> str:
    return " ".join(query.split())[:MAX_QUERY_CHARS]


@dataclass(frozen=True)
class SearchResult:
    """One search's hits, best first, what it cost (``retrieve_ms``, ``rerank_ms``) and how sure it is
    (``signals``: the best vector similarity, the reranker's best and second probabilities where it ran, and
    ``term_coverage``, the share of the query's terms that occur anywhere in the index)."""

    hits: list[Hit]
    timings: Mapping[str, float] = field(default_factory=dict)
    signals: Mapping[str, float] = field(default_factory=dict)


class Retriever:
    """Stateless per call: every search returns its own result; the only shared state is the symbol index's
    immutable snapshot, swapped whole when the index changes."""

    def __init__(
        self,
        embedder: Embedder,
        store: Store,
        state: IndexState,
        reranker: Reranker | None = None,
        config: RetrievalConfig | None = None,
    ) -> None:
        self.embedder, self.store, self.state, self.reranker = embedder, store, state, reranker
        self.config = config or RetrievalConfig()
        self._symbols = SymbolIndex()

    def search(
        self, query: str, k: int = 10, explain: bool = False, use_reranker: bool = True
    ) -> SearchResult:
        query = clean_query(query)
        if not query or k <= 0:
            return SearchResult([])
        started = time.perf_counter()
        result = self.rank(query, self.channels(query), k, explain, use_reranker, started)
        about = [t for t in query_terms(query)[:MAX_QUERY_TERMS] if t not in QUESTION_WORDS]
        coverage = self.state.term_coverage(about)
        return replace(
            result, signals=MappingProxyType({**result.signals, "term_coverage": coverage})
        )

    def channels(self, query: str) -> dict[str, Ranked]:
        """Each channel's candidates for a cleaned query: vector, lexical (FTS5 BM25) and symbol names."""
        terms = query_terms(query)[:MAX_QUERY_TERMS]
        qvec = self.embedder.embed_query(query)
        found = {
            "vector": self.store.query(qvec, self.config.depth),
            "lexical": self.state.lexical(terms, self.config.depth),
            "symbol": self._symbols.search(self.state, terms, self.config.depth),
        }
        found["vector"] = self._with_pending(qvec, found)
        return found

    def definitions(self, names: Sequence[str], most: int = 2) -> list[Hit]:
        """Where each of ``names`` is defined (a symbol's last dotted part), in the order of ``names``: per file,
        the first chunk of that symbol (a long function's signature, a split class's header). A name defined
        in more than ``most`` files is too ambiguous to help and is skipped. Needs no embedder: the symbol
        table comes from SQLite."""
        snap = self._symbols.snapshot(self.state)
        wanted = {  # a name with many chunks ("get", "run") is ambiguous before its rows are read
            n: [snap.ids[r] for r in rows]
            for n in dict.fromkeys(names)
            if 0 < len(rows := snap.leaves.get(n, ())) <= most * MAX_CHUNKS_PER_DEFINITION
        }
        found = self.state.chunk_rows([cid for ids in wanted.values() for cid in ids])
        out: list[Hit] = []
        for ids in wanted.values():
            first: dict[str, ChunkRow] = {}
            for row in sorted((found[c] for c in ids if c in found), key=lambda r: r.start_line):
                first.setdefault(row.path, row)
            if 0 < len(first) <= most:
                out += [_hit(row, 1.0, None) for row in first.values()]
        return out

    def _with_pending(self, qvec: np.ndarray, found: dict[str, Ranked]) -> Ranked:
        """While an index run is still embedding, the best keyword and symbol candidates that have no
        vector yet are embedded now (a few, in memory) and join the vector channel on equal terms."""
        have = {cid for cid, _ in found["vector"]}
        ids = [cid for ch in ("symbol", "lexical") for cid, _ in found[ch][:PENDING_PEEK]]
        waiting = self.state.pending_among(dict.fromkeys(c for c in ids if c not in have))
        rows = self.state.chunk_rows(sorted(waiting))
        if not rows:
            return found["vector"]
        vectors = self.embedder.embed([row.chunk().embed_text() for row in rows.values()])
        sims = vectors @ qvec / (np.linalg.norm(qvec) or 1.0)
        extra = [(cid, float(sim)) for cid, sim in zip(rows, sims, strict=True)]
        return sorted([*found["vector"], *extra], key=lambda cs: -cs[1])

    def rank(
        self,
        query: str,
        channels: dict[str, Ranked],
        k: int = 10,
        explain: bool = False,
        use_reranker: bool = True,
        started: float | None = None,
    ) -> SearchResult:
        """Fuse ``channels`` with this retriever's config, cap hits per file, rerank the top and order."""
        started = time.perf_counter() if started is None else started
        fused = (fuse if self.config.fusion == "rrf" else fuse_scores)(
            channels, self.config.weights
        )
        rows = self.state.chunk_rows([cid for cid, _ in fused])
        candidates = cap_per_file(
            [(cid, s) for cid, s in fused if cid in rows], rows, self.config.per_file
        )
        reranker = self.reranker if use_reranker else None
        candidates = candidates[: max(k, self.config.rerank_top if reranker else k)]
        timings = {"retrieve_ms": (time.perf_counter() - started) * 1000}
        started = time.perf_counter()
        rerank = self.rerank(query, [rows[cid] for cid, _ in candidates]) if reranker else None
        if rerank is not None:
            timings["rerank_ms"] = (time.perf_counter() - started) * 1000
        final = [s for _, s in candidates]
        if rerank is not None:
            best = max(final) or 1.0
            final = [
                r + self.config.rerank_blend * s / best for r, s in zip(rerank, final, strict=True)
            ]
        final = _weigh_anonymous(final, [rows[cid] for cid, _ in candidates], self.config)
        order = sorted(range(len(candidates)), key=lambda i: -final[i])[:k]
        hits = [
            _hit(
                rows[candidates[i][0]],
                final[i],
                _explain(
                    candidates[i][0], channels, candidates[i][1], rerank[i] if rerank else None
                )
                if explain
                else None,
            )
            for i in order
        ]
        return SearchResult(
            hits, MappingProxyType(timings), MappingProxyType(_signals(channels, rerank))
        )

    def rerank(self, query: str, rows: Sequence[ChunkRow]) -> list[float] | None:
        if self.reranker is None or not rows:
            return None
        return [float(s) for s in self.reranker.score(query, [rerank_text(r) for r in rows])]


def _weigh_anonymous(
    final: list[float], rows: Sequence[ChunkRow], config: RetrievalConfig
) -> list[float]:
    """``final`` with code chunks that belong to no definition scaled by ``config.anonymous_weight``."""
    w = config.anonymous_weight
    if w == 1.0:
        return final
    return [
        s * w if r.kind == "code" and not r.symbol else s for s, r in zip(final, rows, strict=True)
    ]


def rerank_text(row: ChunkRow) -> str:
    return f"{row.path} {row.symbol}\n{row.text}".strip()


def fuse(channels: dict[str, Ranked], weights: dict[str, float]) -> Ranked:
    """Weighted reciprocal-rank fusion: sum of w / (K + rank) over the channels that found a chunk."""
    scores: dict[str, float] = {}
    for name, ranked in channels.items():
        w = weights.get(name, 1.0)
        for rank, (cid, _) in enumerate(ranked, 1):
            scores[cid] = scores.get(cid, 0.0) + w / (RRF_K + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def fuse_scores(channels: dict[str, Ranked], weights: dict[str, float]) -> Ranked:
    """Weighted sum of each channel's scores scaled to [0, 1] by its best score (0 where absent)."""
    scores: dict[str, float] = {}
    for name, ranked in channels.items():
        top = max((s for _, s in ranked), default=0.0)
        if top <= 0:
            continue
        w = weights.get(name, 1.0)
        for cid, s in ranked:
            scores[cid] = scores.get(cid, 0.0) + w * max(s, 0.0) / top
    return sorted(scores.items(), key=lambda kv: -kv[1])


def cap_per_file(ranked: Ranked, rows: dict[str, ChunkRow], per_file: int) -> Ranked:
    seen: dict[str, int] = {}
    out: Ranked = []
    for cid, score in ranked:
        path = rows[cid].path
        if seen.get(path, 0) < per_file:
            out.append((cid, score))
            seen[path] = seen.get(path, 0) + 1
    return out


@dataclass(frozen=True)
class SymbolSnapshot:
    """The symbol channel's vocabulary for one index generation. Never changed after it is built."""

    generation: int
    ids: tuple[str, ...]
    words: tuple[str, ...]
    postings: Mapping[str, tuple[tuple[int, float], ...]]  # word -> (row in ids, weight)
    # a symbol's last dotted part -> rows (in ids) of that symbol
    leaves: Mapping[str, tuple[int, ...]]

    @classmethod
    def build(cls, symbols: SymbolRows) -> SymbolSnapshot:
        postings: dict[str, list[tuple[int, float]]] = {}
        leaves: dict[str, list[int]] = {}
        for row, (_, symbol, path) in enumerate(symbols.rows):
            if symbol:
                leaves.setdefault(symbol.rsplit(".", 1)[-1], []).append(row)
            stem = re.sub(r"\.[^./]+$", "", path.rsplit("/", 1)[-1])
            words = {w: SymbolIndex.PATH_WEIGHT for w in split_identifier(stem)}
            words.update({w: 1.0 for w in _symbol_words(symbol)})
            for w, weight in words.items():
                postings.setdefault(w, []).append((row, weight))
        frozen = {w: tuple(p) for w, p in postings.items()}
        return cls(
            symbols.generation,
            tuple(cid for cid, _, _ in symbols.rows),
            tuple(frozen),
            MappingProxyType(frozen),
            MappingProxyType({leaf: tuple(rows) for leaf, rows in leaves.items()}),
        )


class SymbolIndex:
    """Fuzzy match of query terms against the words of qualified symbol names and file names.

    Searches read one immutable ``SymbolSnapshot``; when the index generation moves on, one thread builds the
    next snapshot and swaps it in with a single assignment, so a search never sees a half-built vocabulary.
    """

    PATH_WEIGHT = 0.5
    CUTOFF = 80

    def __init__(self) -> None:
        self._snapshot: SymbolSnapshot | None = None
        self._building = threading.Lock()

    def snapshot(self, state: IndexState) -> SymbolSnapshot:
        current = self._snapshot
        generation = state.generation()
        if current is not None and current.generation == generation:
            return current
        with (
            self._building
        ):  # one builder; the others wait for its snapshot instead of building their own
            current = self._snapshot
            if current is None or current.generation != state.generation():
                current = self._snapshot = SymbolSnapshot.build(state.symbols())
            return current

    def search(self, state: IndexState, terms: Sequence[str], n: int) -> Ranked:
        if not terms:
            return []
        from rapidfuzz import fuzz, process

        snap = self.snapshot(state)
        if not snap.words:
            return []
        sims = process.cdist(
            list(terms), snap.words, scorer=fuzz.ratio, score_cutoff=self.CUTOFF, workers=1
        )
        totals: dict[int, float] = {}
        for t in range(len(terms)):
            best: dict[int, float] = {}
            for w in sims[t].nonzero()[0]:
                sim = float(sims[t][w]) / 100.0
                for row, weight in snap.postings[snap.words[w]]:
                    best[row] = max(best.get(row, 0.0), sim * weight)
            for row, s in best.items():
                totals[row] = totals.get(row, 0.0) + s
        ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:n]
        return [(snap.ids[row], score) for row, score in ranked]


def _symbol_words(symbol: str) -> list[str]:
    return [w for part in symbol.split(".") for w in split_identifier(part)]


def _explain(
    cid: str, channels: dict[str, Ranked], fused: float, rerank: float | None
) -> dict[str, object]:
    info: dict[str, object] = {"fused": round(fused, 5)}
    for name, ranked in channels.items():
        for rank, (other, score) in enumerate(ranked, 1):
            if other == cid:
                info[name] = {"rank": rank, "score": round(score, 4)}
                break
    if rerank is not None:
        info["rerank"] = round(rerank, 4)
    return info


def _signals(channels: dict[str, Ranked], rerank: list[float] | None) -> dict[str, float]:
    out = {"vector_best": channels["vector"][0][1] if channels["vector"] else 0.0}
    if rerank:
        ranked = sorted(rerank, reverse=True)
        out |= {"rerank_best": ranked[0], "rerank_second": ranked[1] if len(ranked) > 1 else 0.0}
    return out


def _hit(row: ChunkRow, score: float, explain: dict[str, object] | None) -> Hit:
    return Hit(
        path=row.path,
        start_line=row.start_line,
        end_line=row.end_line,
        symbol=row.symbol,
        language=row.language,
        kind=row.kind,
        score=round(score, 4),
        snippet=row.text,
        explain=explain,
    )
