"""Per-language rerank blend on dev packages, never on evaluation ones: does the reranker help each language?

Dev corpora: ``_polyglot.DEV_PACKAGES`` (npm tarballs and Debian packages that are neither ``languages.py``'s
benchmark packages, nor the embedder's training packages, nor reserved) and, for Python, ``tune_retrieval``'s
dev sdists. Same queries, stripping and hit rule as ``languages.py``. Each query's channels are computed once
and each (query, chunk) reranker score once (``tune_retrieval.CachedReranker``); every setting then runs
``Retriever.rank`` itself, so the numbers are what ``Assistant.search`` returns with it. "off" is the same
fused ranking with no reranker. The best setting is the highest mean of MRR@10 and R@10; the shipped one is
printed beside it, from the same run.

``--anonymous 1 0.8 0.6`` also scores factors for code outside every definition (imports, module constants),
at the shipped blend.

Usage: .venv/bin/python bench/tune_languages.py [--languages typescript go] [--anonymous 1 0.8]
       [--out bench/results-tune-languages.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import Corpus, build_corpus
from _polyglot import DEV_PACKAGES, build_language
from retrieval import parse_packages
from tune_retrieval import DEV_PACKAGES as PYTHON_DEV
from tune_retrieval import CachedReranker, rank_metrics

log = logging.getLogger("bench.tune_languages")
BLENDS: tuple[float | None, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, None)  # None: no reranker


def dev_corpus(dest: Path, language: str) -> Corpus:
    if language == "python":
        return build_corpus(dest, parse_packages(PYTHON_DEV))
    return build_language(dest, language, sources=DEV_PACKAGES[language])


def tune_language(
    work: Path, language: str, max_queries: int, seed: int, anonymous: Sequence[float] = ()
) -> dict[str, Any]:
    from localpilot.config import load_settings
    from localpilot.retrieve import clean_query
    from localpilot.service import Assistant

    repo = work / language / "repo"
    corpus = dev_corpus(repo, language)
    pool = sorted(corpus.targets(), key=lambda f: f.key)
    targets = random.Random(seed).sample(pool, min(max_queries, len(pool)))
    with Assistant(repo, load_settings(repo, cache_dir=work / language / "cache")) as a:
        log.info("%s index: %s", language, a.index().summary())
        chunks = a.state.chunk_count()
        retriever = a.retriever
        reranker = CachedReranker(retriever.reranker)
        shipped = retriever.config
        queries = [clean_query(t.query or "") for t in targets]
        channels = [retriever.channels(q) for q in queries]

        def score(blend: float | None, weight: float | None = None) -> dict[str, float]:
            retriever.reranker = None if blend is None else reranker  # type: ignore[assignment]
            retriever.config = dataclasses.replace(
                shipped,
                rerank_blend=blend or 0.0,
                anonymous_weight=shipped.anonymous_weight if weight is None else weight,
            )
            return rank_metrics(retriever, queries, channels, targets)

        grid = [{"blend": "off" if b is None else b, **score(b)} for b in BLENDS]
        weights = [{"anonymous_weight": w, **score(shipped.rerank_blend, w)} for w in anonymous]
        retriever.config, retriever.reranker = shipped, reranker.inner
    best = max(grid, key=lambda g: g["mrr@10"] + g["r@10"])
    return {
        "packages": corpus.packages,
        "functions": len(corpus.functions),
        "queries": len(targets),
        "chunks": chunks,
        "shipped_blend": shipped.rerank_blend,
        "best": best,
        "grid": grid,
        "shipped_anonymous_weight": shipped.anonymous_weight,
        "anonymous": weights,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--languages",
        nargs="+",
        default=["python", *DEV_PACKAGES],
        choices=["python", *DEV_PACKAGES],
    )
    ap.add_argument("--max-queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--anonymous",
        nargs="*",
        type=float,
        default=[],
        help="also score these factors for chunks outside every definition, at the shipped blend",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    report: dict[str, Any] = {"benchmark": "tune_languages", "seed": args.seed, "languages": {}}
    with tempfile.TemporaryDirectory(prefix="lp-tune-lang-") as tmp:
        for language in args.languages:
            report["languages"][language] = tune_language(
                Path(tmp), language, args.max_queries, args.seed, args.anonymous
            )
    print(f"{'language':<12} {'queries':>7}  " + "  ".join(f"{b!s:>13}" for b in BLENDS))
    for language, r in report["languages"].items():
        cells = "  ".join(f"{g['mrr@10']:.3f} / {g['r@10']:.3f}" for g in r["grid"])
        print(f"{language:<12} {r['queries']:>7}  {cells}   best {r['best']['blend']}")
    for language, r in report["languages"].items():
        if r["anonymous"]:
            cells = "  ".join(
                f"{g['anonymous_weight']}: {g['mrr@10']:.3f} / {g['r@10']:.3f}"
                for g in r["anonymous"]
            )
            print(f"{language:<12} anonymous weight  {cells}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
