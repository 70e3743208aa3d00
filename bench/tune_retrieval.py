"""Tune the retriever's channel weights and rerank blend on dev packages, never on evaluation ones.

Dev corpus: sdists that are neither installed here (so not in the embedder's or reranker's training data),
nor in ``retrieval.py``'s evaluation set (requests, attrs, flask), nor reserved (``../shared/reserved-
packages.txt``: ``_corpus.fetch_sdist`` refuses those by name). Same queries and hit rule as ``retrieval.py``.

Each query's channels are computed once and each (query, chunk) reranker score once; every grid point then
runs ``Retriever.rank`` itself, so the numbers are exactly what ``Assistant.search`` would return with those
settings. The best is the highest mean of MRR@10 and R@10; the shipped setting is printed beside it, from the
same run.

Usage: .venv/bin/python bench/tune_retrieval.py [--max-queries 400] [--out bench/results-tuning.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import build_corpus
from retrieval import first_hit, metrics, parse_packages

log = logging.getLogger("bench.tune_retrieval")
DEV_PACKAGES = ["bottle==0.13.4", "itsdangerous==2.2.0", "cachetools==8.0.2", "pyparsing==3.3.3"]
LEXICAL = (0.0, 0.05, 0.1, 0.2, 0.3)
SYMBOL = (0.0, 0.05, 0.1)
BLEND = (0.5, 1.0, 2.0, 4.0)
TOP = (8, 10, 12, 16, 20)  # candidates reranked: the reranker is most of a query's time on a CPU


class CachedReranker:
    """The real reranker, each (query, text) scored once across the grid."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.memo = inner, {}

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        todo = [t for t in dict.fromkeys(texts) if (query, t) not in self.memo]
        if todo:
            self.memo.update(
                zip(((query, t) for t in todo), self.inner.score(query, todo), strict=True)
            )
        return [self.memo[(query, t)] for t in texts]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", nargs="+", default=DEV_PACKAGES)
    ap.add_argument("--max-queries", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--rerank-max-length",
        type=int,
        default=0,
        help="tokens the reranker reads (default: shipped)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="lp-tune-") as tmp:
        report = tune(
            Path(tmp),
            parse_packages(args.packages),
            args.max_queries,
            args.seed,
            args.rerank_max_length,
        )
    report["packages"] = args.packages
    print(json.dumps({k: v for k, v in report.items() if k != "grid"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def rank_metrics(
    retriever: Any, queries: Sequence[str], channels: Sequence[Any], targets: Sequence[Any]
) -> dict[str, float]:
    """MRR@10 / R@1 / R@10 of ``retriever.rank`` over precomputed channels (one query each)."""
    ranks = []
    for q, ch, t in zip(queries, channels, targets, strict=True):
        hits = retriever.rank(q, ch, 10).hits
        ranks.append(first_hit([(h.path, h.start_line, h.end_line) for h in hits], t))
    return metrics(ranks, 10)


def tune(
    work: Path, packages: dict[str, str], max_queries: int, seed: int, rerank_max_length: int = 0
) -> dict[str, Any]:
    from localpilot.config import load_settings
    from localpilot.retrieve import clean_query
    from localpilot.service import Assistant

    corpus = build_corpus(work / "repo", packages)
    pool = sorted(corpus.targets(), key=lambda f: f.key)
    targets = random.Random(seed).sample(pool, min(max_queries, len(pool)))
    with Assistant(work / "repo", load_settings(work / "repo", cache_dir=work / "cache")) as a:
        log.info("index: %s", a.index().summary())
        retriever = a.retriever
        if rerank_max_length:
            retriever.reranker.max_length = rerank_max_length  # read when the model loads
        retriever.reranker = CachedReranker(retriever.reranker)
        shipped = retriever.config
        queries = [clean_query(t.query or "") for t in targets]
        channels = [retriever.channels(q) for q in queries]

        def score(lexical: float, symbol: float, blend: float, top: int) -> dict[str, float]:
            weights = {**shipped.weights, "lexical": lexical, "symbol": symbol}
            retriever.config = dataclasses.replace(
                shipped, weights=weights, rerank_blend=blend, rerank_top=top
            )
            return rank_metrics(retriever, queries, channels, targets)

        grid = [
            {"lexical": lx, "symbol": sy, "blend": bl, "top": top, **score(lx, sy, bl, top)}
            for lx, sy, bl, top in itertools.product(LEXICAL, SYMBOL, BLEND, TOP)
        ]
        retriever.config = shipped
    now = {"lexical": shipped.weights["lexical"], "symbol": shipped.weights["symbol"]}
    current = next(
        g
        for g in grid
        if (g["lexical"], g["symbol"], g["blend"], g["top"])
        == (now["lexical"], now["symbol"], shipped.rerank_blend, shipped.rerank_top)
    )

    def quality(g: dict[str, Any]) -> float:
        return float(g["mrr@10"] + g["r@10"])  # rank quality and recall, equally

    best = max(grid, key=quality)
    by_top = {top: max((g for g in grid if g["top"] == top), key=quality) for top in TOP}
    return {
        "queries": len(targets),
        "rerank_max_length": rerank_max_length or "shipped",
        "shipped": current,
        "best": best,
        "best_by_top": by_top,
        "grid": grid,
    }


if __name__ == "__main__":
    raise SystemExit(main())
