"""Retrieval quality, CodeSearchNet style: docstring first sentence -> its (docstring-stripped) function.

Corpus: pinned sdists of third-party packages (default requests, attrs, flask), docstrings removed, one
combined git repo (see ``_corpus.py``). Systems, in one run:

* ``localpilot``: ``Assistant.index()`` then ``Assistant.search(query, k)``; a hit is a result in the
  target's file whose lines overlap the target function (lenient: a whole-class chunk counts).
  ``localpilot (chunk in fn)`` is the strict variant: the result's lines lie inside the function.
* ``bm25``: bm25s over one document per function (its stripped source), identifiers split on
  snake_case/camelCase and lowercased, the query tokenized the same way.
* ``minilm-raw``: all-MiniLM-L6-v2 as published, ``encode`` of each function's stripped source (no header),
  cosine; and the same with localpilot's own embedder (``code-minilm``, fine-tuned from it).

Usage: .venv/bin/python bench/retrieval.py [--max-queries 300] [--seed 0] [--out results.json]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import DEFAULT_PACKAGES, Function, build_corpus, run_bench, write_report

log = logging.getLogger("bench.retrieval")

# A ranker maps a query to a ranked list of (path, start_line, end_line).
Span = tuple[str, int, int]


# ------------------------------------------------------------------------------------------ tokenizing

_IDENT = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def code_tokens(text: str) -> list[str]:
    """Split on non-alphanumerics, then camelCase and digits; lowercase.

    ``getHTTPResponse_v2`` -> ``get http response v 2``.
    """
    return [piece.lower() for word in _IDENT.findall(text) for piece in _CAMEL.findall(word)]


# ----------------------------------------------------------------------------------------------- metrics


def first_hit(ranked: Sequence[Span], target: Function, strict: bool = False) -> int | None:
    """1-based rank of the first result that hits ``target``, or None."""
    for rank, (path, lo, hi) in enumerate(ranked, 1):
        if path != target.path:
            continue
        if strict and target.start_line <= lo and hi <= target.end_line:
            return rank
        if not strict and lo <= target.end_line and hi >= target.start_line:
            return rank
    return None


def metrics(ranks: Sequence[int | None], k: int) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        f"mrr@{k}": sum(1.0 / r for r in ranks if r is not None and r <= k) / n,
        "r@1": sum(r == 1 for r in ranks) / n,
        f"r@{k}": sum(r is not None and r <= k for r in ranks) / n,
    }


# ----------------------------------------------------------------------------------------------- systems


#: Channel-weight ablations of localpilot's hybrid retriever (extra rows; skipped if the retriever has none).
# name -> (channel weights to use, or None for the configured ones; keep the reranker?)
ABLATIONS: dict[str, tuple[dict[str, float] | None, bool]] = {
    "no rerank": (None, False),
    "no lexical": ({"lexical": 0.0}, True),
    "no symbol": ({"symbol": 0.0}, True),
    "vector only, no rerank": ({"vector": 1.0, "lexical": 0.0, "symbol": 0.0}, False),
    "lexical only, no rerank": ({"vector": 0.0, "lexical": 1.0, "symbol": 0.0}, False),
    "symbol only, no rerank": ({"vector": 0.0, "lexical": 0.0, "symbol": 1.0}, False),
}


def run_localpilot(
    repo: Path,
    cache: Path,
    queries: Sequence[str],
    k: int,
    ablate: bool,
    only: Sequence[str] | None = None,
    rerankers: Sequence[str] = (),
) -> tuple[dict[str, list[list[Span]]], dict, Any]:
    """Index ``repo`` and search each query; returns ({variant: rankings}, info, the loaded model).

    ``ablate`` adds the ABLATIONS rows (those named in ``only`` when given); each of ``rerankers`` (a
    cross-encoder directory) adds a "reranker DIR" row: the same index and candidates, reranked by it."""
    import dataclasses

    from localpilot.config import load_settings
    from localpilot.service import Assistant

    a = Assistant(repo, load_settings(repo, cache_dir=cache))
    t = time.perf_counter()
    model = a.embedder.model
    model.encode(["warm up"], show_progress_bar=False)
    load_s = time.perf_counter() - t
    stats = a.index()
    log.info("localpilot index: %s", stats.summary())

    def search_all() -> tuple[list[list[Span]], dict[str, float]]:
        ranked, times = [], []
        for q in queries:
            t = time.perf_counter()
            ranked.append([(h.path, h.start_line, h.end_line) for h in a.search(q, k=k)])
            times.append(time.perf_counter() - t)
        return ranked, _latency(times)

    ranked, latency = search_all()
    out = {"": ranked}
    info = {
        "embedder": a.embedder.name,
        "model_load_s": load_s,
        "index_s": stats.seconds,
        "chunks": stats.chunks_written,
        "chunks_embedded": stats.chunks_embedded,
        "chunks_truncated": stats.chunks_truncated,
        "files_indexed": stats.files_indexed,
        **latency,
        "variants": {},
    }
    config = getattr(getattr(a, "retriever", None), "config", None)
    if ablate and config is not None and hasattr(config, "weights"):
        reranker = a.retriever.reranker
        for name, (weights, rerank) in ABLATIONS.items():
            if only is not None and name not in only:
                continue
            if not rerank and reranker is None and weights is None:
                continue  # "no rerank" is the main row already
            a.retriever.config = dataclasses.replace(
                config, weights={**config.weights, **(weights or {})}
            )
            a.retriever.reranker = reranker if rerank else None
            out[name], info["variants"][name] = search_all()
        a.retriever.config, a.retriever.reranker = config, reranker
    for path in rerankers:
        from localpilot.experts.registry import load_reranker

        shipped = a.retriever.reranker
        a.retriever.reranker = load_reranker(path, a.settings.device, a.settings.precision)
        name = f"reranker {Path(path).name}"
        out[name], info["variants"][name] = search_all()
        a.retriever.reranker = shipped
    a.close()
    return out, info, model


def base_minilm() -> Any:
    """The baseline: all-MiniLM-L6-v2 as published (not localpilot's fine-tuned embedder)."""
    from sentence_transformers import SentenceTransformer

    from localpilot.experts.registry import resolve_embedder

    return SentenceTransformer(str(resolve_embedder("minilm").path), device="cpu")


def run_bm25(
    functions: Sequence[Function], queries: Sequence[str], k: int
) -> tuple[list[list[Span]], dict]:
    import bm25s

    t = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index([code_tokens(f.source) for f in functions], show_progress=False)
    index_s = time.perf_counter() - t
    ranked, times = [], []
    for q in queries:
        t = time.perf_counter()
        docs, scores = retriever.retrieve(
            [code_tokens(q)], k=min(k, len(functions)), show_progress=False
        )
        ranked.append(
            [_span(functions[int(d)]) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
        )
        times.append(time.perf_counter() - t)
    return ranked, {"index_s": index_s, **_latency(times)}


def run_minilm(
    model: Any, functions: Sequence[Function], queries: Sequence[str], k: int, batch_size: int
) -> tuple[list[list[Span]], dict]:
    t = time.perf_counter()
    docs = model.encode(
        [f.source for f in functions],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    index_s = time.perf_counter() - t
    ranked, times = [], []
    for q in queries:  # one at a time, like an interactive search
        t = time.perf_counter()
        vec = model.encode(
            [q], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )[0]
        top = np.argsort(-(docs @ vec), kind="stable")[:k]
        ranked.append([_span(functions[int(i)]) for i in top])
        times.append(time.perf_counter() - t)
    return ranked, {"index_s": index_s, **_latency(times)}


def _latency(times: Sequence[float]) -> dict[str, float]:
    """Per-query latency; the median is the headline (shared 2-core machines make the mean noisy)."""
    ms = np.asarray(times or [0.0]) * 1000
    return {
        "query_ms": float(np.median(ms)),
        "query_ms_mean": float(ms.mean()),
        "query_ms_p90": float(np.percentile(ms, 90)),
    }


def _span(f: Function) -> Span:
    return (f.path, f.start_line, f.end_line)


# -------------------------------------------------------------------------------------------------- main


def parse_packages(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, version = item.partition("==")
        if not sep or not version:
            raise SystemExit(f"--packages wants NAME==VERSION, got {item!r}")
        out[name] = version
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--packages",
        nargs="+",
        default=[f"{n}=={v}" for n, v in DEFAULT_PACKAGES.items()],
        metavar="NAME==VERSION",
        help="sdists to use (default: %(default)s)",
    )
    p.add_argument(
        "--max-queries",
        type=int,
        default=300,
        help="sample at most this many queries (default 300)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    p.add_argument("--batch-size", type=int, default=32, help="raw MiniLM encode batch size")
    p.add_argument(
        "--no-ablations",
        action="store_true",
        help="skip the localpilot vector-only / lexical-only rows",
    )
    p.add_argument(
        "--rerankers", nargs="*", default=[], help="cross-encoder dirs to compare on the same index"
    )
    return run_bench(p, argv, "lp-bench-retrieval-", _run)


def _run(args: argparse.Namespace, work: Path) -> int:
    started = time.perf_counter()
    load_start = os.getloadavg()
    packages = parse_packages(args.packages)
    repo = work / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    corpus = build_corpus(repo, packages)
    pool = sorted(corpus.targets(), key=lambda f: f.key)
    targets = random.Random(args.seed).sample(pool, min(args.max_queries, len(pool)))
    queries = [t.query or "" for t in targets]
    functions = corpus.functions
    log.info(
        "%d functions, %d candidate queries, %d sampled", len(functions), len(pool), len(targets)
    )

    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    results: dict[str, dict] = {}
    lp_runs, info_lp, model = run_localpilot(
        repo, cache, queries, args.k, not args.no_ablations, rerankers=args.rerankers
    )
    ranked_lp = lp_runs[""]
    log.info("localpilot done")
    ranked_bm, info_bm = run_bm25(functions, queries, args.k)
    log.info("bm25 done")
    ranked_mini, info_mini = run_minilm(base_minilm(), functions, queries, args.k, args.batch_size)
    log.info("minilm-raw done")
    ranked_own, info_own = run_minilm(model, functions, queries, args.k, args.batch_size)

    runs: list[
        tuple[str, list[list[Span]], dict, Callable[[Sequence[Span], Function], int | None]]
    ] = [
        ("localpilot", ranked_lp, info_lp, first_hit),
        ("localpilot (chunk in fn)", ranked_lp, info_lp, lambda r, t: first_hit(r, t, strict=True)),
        *[
            (
                f"localpilot [{name}]",
                lp_runs[name],
                {
                    **{k: v for k, v in info_lp.items() if k != "variants"},
                    **info_lp["variants"][name],
                },
                first_hit,
            )
            for name in lp_runs
            if name
        ],
        ("bm25", ranked_bm, info_bm, first_hit),
        ("minilm-raw", ranked_mini, info_mini, first_hit),
        (f"{info_lp['embedder']}-raw (localpilot's embedder)", ranked_own, info_own, first_hit),
    ]
    for name, ranked, info, judge in runs:
        ranks = [judge(r, t) for r, t in zip(ranked, targets, strict=True)]
        by_pkg = {}
        for pkg in packages:
            sel = [r for r, t in zip(ranks, targets, strict=True) if t.package == pkg]
            by_pkg[pkg] = {"queries": len(sel), **metrics(sel, args.k)}
        results[name] = {**metrics(ranks, args.k), "timing": info, "by_package": by_pkg}

    report = {
        "benchmark": "retrieval",
        "packages": packages,
        "seed": args.seed,
        "k": args.k,
        "queries": len(targets),
        "candidate_queries": len(pool),
        "functions": len(functions),
        "files": len(corpus.files),
        "docstrings_removed": corpus.docstrings_removed,
        "results": results,
        "seconds_total": time.perf_counter() - started,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "examples": [
            {
                "query": t.query,
                "target": f"{t.path}:{t.start_line}-{t.end_line} {t.qualname}",
                "localpilot_top": [f"{p}:{lo}-{hi}" for p, lo, hi in r[:3]],
            }
            for t, r in list(zip(targets, ranked_lp, strict=True))[:5]
        ],
    }
    print_report(report)
    write_report(report, args.out)
    return 0


def print_report(r: dict) -> None:
    k = r["k"]
    pk = ", ".join(f"{n}=={v}" for n, v in r["packages"].items())
    print(
        f"retrieval: {pk}; {r['files']} files, {r['functions']} functions, "
        f"{r['queries']} queries (of {r['candidate_queries']}), seed {r['seed']}"
    )
    lp = r["results"]["localpilot"]["timing"]
    print(
        f"localpilot index: {lp['chunks']} chunks, {lp['chunks_embedded']} embedded "
        f"({lp['chunks_truncated']} truncated), model load {lp['model_load_s']:.1f}s"
    )
    print()
    head = f"{'system':<38} {'MRR@' + str(k):>8} {'R@1':>7} {'R@' + str(k):>7} {'index s':>9} {'query ms (median)':>18}"
    print(head)
    print("-" * len(head))
    for name, res in r["results"].items():
        t = res["timing"]
        print(
            f"{name:<38} {res[f'mrr@{k}']:>8.3f} {res['r@1']:>7.3f} {res[f'r@{k}']:>7.3f} "
            f"{t['index_s']:>9.1f} {t['query_ms']:>18.1f}"
        )
    print()
    pkgs = list(r["packages"])
    counts = r["results"]["bm25"]["by_package"]
    labels = [f"{p} ({counts[p]['queries']})" for p in pkgs]
    head = f"{'MRR@' + str(k) + ' by package':<38} " + " ".join(f"{label:>16}" for label in labels)
    print(head)
    print("-" * len(head))
    for name, res in r["results"].items():
        print(f"{name:<38} " + " ".join(f"{res['by_package'][p][f'mrr@{k}']:>16.3f}" for p in pkgs))
    print(f"\ntotal {r['seconds_total']:.0f}s")


if __name__ == "__main__":
    raise SystemExit(main())
