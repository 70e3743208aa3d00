"""Retrieval quality per language: a doc comment's first sentence -> its (doc-stripped) function.

One corpus per language (``_polyglot.py``: Python sdists, npm tarballs for JavaScript and TypeScript,
Debian packages for Go, Rust and Java; every doc comment removed), one localpilot index per corpus, and
in the same run the baselines over the same functions: BM25 over function sources, all-MiniLM-L6-v2 as
published, and localpilot's own embedder alone over one chunk per function. Channel ablations of the
full pipeline as in ``retrieval.py``. A hit is a result in the target's file overlapping the target's
lines; "(chunk in fn)" is the strict variant (the result lies inside the function).

Usage: .venv/bin/python bench/languages.py [--languages go rust] [--max-queries 200] [--out results.json]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import run_bench, write_report
from _polyglot import PACKAGES, build_language
from retrieval import (
    ABLATIONS,
    base_minilm,
    first_hit,
    metrics,
    run_bm25,
    run_localpilot,
    run_minilm,
)

log = logging.getLogger("bench.languages")

#: The ablations run by default (the rest with --all-ablations).
DEFAULT_ABLATIONS = ("no rerank", "vector only, no rerank")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--languages", nargs="+", default=list(PACKAGES), choices=list(PACKAGES))
    p.add_argument("--max-queries", type=int, default=200, help="per language (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--all-ablations", action="store_true")
    p.add_argument(
        "--rerankers", nargs="*", default=[], help="cross-encoder dirs to compare on the same index"
    )
    return run_bench(p, argv, "lp-bench-languages-", _run)


def _run(args: argparse.Namespace, work: Path) -> int:
    started = time.perf_counter()
    load_start = os.getloadavg()
    ablations = list(ABLATIONS) if args.all_ablations else list(DEFAULT_ABLATIONS)
    baseline = base_minilm()
    report: dict[str, Any] = {
        "benchmark": "languages",
        "seed": args.seed,
        "k": args.k,
        "languages": {},
    }
    for language in args.languages:
        report["languages"][language] = _one_language(args, work, language, ablations, baseline)
        log.info("%s done", language)
    report.update(
        seconds_total=time.perf_counter() - started,
        python=platform.python_version(),
        cpus=os.cpu_count(),
        loadavg_start=load_start,
        loadavg_end=os.getloadavg(),
    )
    print_report(report)
    write_report(report, args.out)
    return 0


def _one_language(
    args: argparse.Namespace, work: Path, language: str, ablations: list[str], baseline: Any
) -> dict[str, Any]:
    repo = work / language / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    corpus = build_language(repo, language)
    pool = sorted(corpus.targets(), key=lambda f: f.key)
    targets = random.Random(args.seed).sample(pool, min(args.max_queries, len(pool)))
    queries = [t.query or "" for t in targets]
    cache = work / language / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    lp_runs, info, model = run_localpilot(
        repo, cache, queries, args.k, ablate=True, only=ablations, rerankers=args.rerankers
    )
    runs = {
        "localpilot": (lp_runs[""], False),
        "localpilot (chunk in fn)": (lp_runs[""], True),
        **{f"localpilot [{a}]": (lp_runs[a], False) for a in ablations if a in lp_runs},
        **{f"localpilot [{a}]": (lp_runs[a], False) for a in lp_runs if a.startswith("reranker ")},
        "bm25": (run_bm25(corpus.functions, queries, args.k)[0], False),
        "minilm-raw": (
            run_minilm(baseline, corpus.functions, queries, args.k, args.batch_size)[0],
            False,
        ),
        f"{info['embedder']} over function chunks": (
            run_minilm(model, corpus.functions, queries, args.k, args.batch_size)[0],
            False,
        ),
    }
    results = {}
    for name, (ranked, strict) in runs.items():
        ranks = [first_hit(r, t, strict=strict) for r, t in zip(ranked, targets, strict=True)]
        by_pkg = {
            pkg: metrics(
                [r for r, t in zip(ranks, targets, strict=True) if t.package == pkg], args.k
            )
            for pkg in corpus.packages
        }
        results[name] = {**metrics(ranks, args.k), "by_package": by_pkg}
    return {
        "packages": corpus.packages,
        "files": len(corpus.files),
        "functions": len(corpus.functions),
        "doc_comments_removed": corpus.docstrings_removed,
        "candidate_queries": len(pool),
        "queries": len(targets),
        "queries_by_package": {p: sum(t.package == p for t in targets) for p in corpus.packages},
        "index": {k: v for k, v in info.items() if k != "variants"},
        "results": results,
        "misses": [
            {
                "query": t.query,
                "target": f"{t.path}:{t.start_line}-{t.end_line} {t.qualname}",
                "top": [f"{p}:{lo}-{hi}" for p, lo, hi in r[:3]],
            }
            for t, r in zip(targets, lp_runs[""], strict=True)
            if first_hit(r[:1], t) is None
        ][:15],
    }


def print_report(r: dict) -> None:
    k = r["k"]
    langs = r["languages"]
    systems = list(next(iter(langs.values()))["results"])
    print(f"retrieval per language: MRR@{k} / R@{k} (queries)")
    labels = [f"{lang} ({v['queries']})" for lang, v in langs.items()]
    head = f"{'system':<40}" + "".join(f"{label:>19}" for label in labels)
    print(head)
    print("-" * len(head))
    for name in systems:
        cells = "".join(
            f"{v['results'][name][f'mrr@{k}']:>11.3f} /{v['results'][name][f'r@{k}']:>6.3f}"
            for v in langs.values()
        )
        print(f"{name:<40}{cells}")
    for lang, v in langs.items():
        pk = ", ".join(
            f"{n} {ver} ({v['queries_by_package'][n]})" for n, ver in v["packages"].items()
        )
        print(
            f"{lang}: {pk}; {v['files']} files, {v['functions']} functions, "
            f"{v['index']['chunks']} chunks, index {v['index']['index_s']:.0f}s, "
            f"query p50 {v['index']['query_ms']:.0f} ms"
        )
    print(f"\ntotal {r['seconds_total']:.0f}s")


if __name__ == "__main__":
    raise SystemExit(main())
