"""Query latency of a warm localpilot process on a ≥5k-chunk index: retrieve (three channels + fusion) and
rerank, p50/p95, with the reranker on and off, on this machine's cores.

Corpus: docstring-stripped sdists (default pygments, click, jinja2, docutils; see ``_corpus.py``); queries: the
first docstring sentences of its functions (a fixed-seed sample), plus a few identifier queries.

Usage: .venv/bin/python bench/latency.py [--queries 100] [--workdir DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import build_corpus, percentile, run_bench

log = logging.getLogger("bench.latency")
PACKAGES = {
    "pygments": "2.19.2",
    "click": "8.5.1",
    "jinja2": "3.1.6",
    "docutils": "0.21.2",
}  # none reserved


def measure(a: Any, queries: Sequence[str]) -> dict[str, float]:
    total, retrieve, rerank = [], [], []
    for q in queries:
        t = time.perf_counter()
        found = a.retriever.search(q, k=10)
        total.append((time.perf_counter() - t) * 1000)
        retrieve.append(found.timings.get("retrieve_ms", 0.0))
        rerank.append(found.timings.get("rerank_ms", 0.0))
    return {
        "p50_ms": percentile(total, 0.5),
        "p95_ms": percentile(total, 0.95),
        "mean_ms": statistics.mean(total),
        "retrieve_p50_ms": percentile(retrieve, 0.5),
        "rerank_p50_ms": percentile(rerank, 0.5),
    }


def _half_the_cores(a: Any, queries: Sequence[str]) -> dict[str, float]:
    """The same searches with query work held to ``query_threads`` even on an idle machine."""
    parts = [p for p in (a.embedder, a.retriever.reranker) if hasattr(p, "idle_cores")]
    for part in parts:
        part.idle_cores = False
    try:
        return measure(a, queries)
    finally:
        for part in parts:
            part.idle_cores = True


def _run(args: argparse.Namespace, work: Path) -> int:
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    repo = work / "repo"
    corpus = build_corpus(repo, PACKAGES) if not (repo / ".git").exists() else None
    a = Assistant(repo, load_settings(repo, cache_dir=work / "cache", reranker=args.reranker))
    stats = a.index()
    log.info("index: %s", stats.summary())
    chunks = a.state.chunk_count()
    if corpus is not None:
        (work / "queries.json").write_text(
            json.dumps([f.query for f in corpus.functions if f.query])
        )
    pool = json.loads((work / "queries.json").read_text())
    queries = random.Random(args.seed).sample(pool, min(args.queries, len(pool)))
    queries += ["render_markup", "HTTPException", "url_for", "Console.print"]
    for q in queries[:5]:  # warm: models loaded, caches built
        a.search(q, k=10)
    name = "reranker " + (a.retriever.reranker.name if a.retriever.reranker else "none")
    results = {name: measure(a, queries)}
    results[f"{name}, half the cores"] = _half_the_cores(a, queries)
    if a.retriever.reranker is not None:
        shipped = a.retriever.config
        for top in args.rerank_tops:
            a.retriever.config = dataclasses.replace(shipped, rerank_top=top)
            results[f"{name}, top {top}"] = measure(a, queries)
        a.retriever.config = shipped
        shipped_batch = a.retriever.reranker.batch_size
        for batch in args.rerank_batches:
            a.retriever.reranker.batch_size = batch
            results[f"{name}, batches of {batch}"] = measure(a, queries)
        a.retriever.reranker.batch_size = shipped_batch
        reranker, a.retriever.reranker = a.retriever.reranker, None
        results["reranker none"] = measure(a, queries)
        a.retriever.reranker = reranker
    report = {
        "benchmark": "latency",
        "chunks": chunks,
        "queries": len(queries),
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "precision": getattr(a.embedder, "precision", "?"),
        "results": results,
    }
    a.close()
    print(
        f"latency: {chunks} chunks, {len(queries)} queries, {os.cpu_count()} CPUs, embedder {report['precision']}"
    )
    print(
        f"{'configuration':<40} {'p50 ms':>8} {'p95 ms':>8} {'retrieve p50':>13} {'rerank p50':>11}"
    )
    for name, r in results.items():
        print(
            f"{name:<40} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['retrieve_p50_ms']:>13.1f} "
            f"{r['rerank_p50_ms']:>11.1f}"
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--rerank-tops", type=int, nargs="*", default=[10], help="also rerank only this many"
    )
    p.add_argument(
        "--rerank-batches",
        type=int,
        nargs="*",
        default=[],
        help="also rerank in length-sorted batches of this many pairs",
    )
    p.add_argument("--reranker", default=None, help="override the configured reranker (e.g. none)")
    return run_bench(p, argv, "lp-bench-latency-", _run)


if __name__ == "__main__":
    raise SystemExit(main())
