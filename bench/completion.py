"""Inline completion latency (what an editor waits for): `Assistant.complete` at the middle of real function
bodies, p50/p95 uncached and cached, beside raw llama-cpp-python infill on the same model, tokens and
prompt in the same process (retrieval of context snippets is the difference).

Corpus: requests 2.34.2 (docstrings kept out, as in the other benchmarks); cursor after the first half of
each sampled function's body lines.

Usage: .venv/bin/python bench/completion.py [--n 20] [--llm qwen2.5-coder-0.5b] [--workdir DIR] [--out F]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import build_corpus, percentile, run_bench


def cursor_cases(corpus: Any, n: int) -> list[tuple[str, str, str]]:
    """(path, prefix, suffix) with the cursor after half of a function body's lines."""
    rng = random.Random(7)
    funcs = [f for f in corpus.functions if f.end_line - f.start_line >= 6]
    cases = []
    for f in rng.sample(funcs, min(n, len(funcs))):
        lines = (corpus.root / f.path).read_text().splitlines()
        cut = f.start_line + (f.end_line - f.start_line) // 2
        cases.append((f.path, "\n".join(lines[:cut]) + "\n", "\n".join(lines[cut:]) + "\n"))
    return cases


def run(args: argparse.Namespace, work: Path) -> int:
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    corpus = build_corpus(work / "repo", {"requests": "2.34.2"})
    a = Assistant(corpus.root, load_settings(corpus.root, llm=args.llm))
    a.index()
    cases = cursor_cases(corpus, args.n)
    gen = a.generator("small")
    a.complete(*cases[0])  # warm: model loaded, caches filled once
    raw, cold, warm = [], [], []
    for path, prefix, suffix in cases:
        t = time.perf_counter()
        text = "".join(tok.text for tok in gen.infill(prefix, suffix, a.completer.max_tokens))
        raw.append(time.perf_counter() - t)
        a.completer.cache.clear()
        t = time.perf_counter()
        result = a.complete(path, prefix, suffix)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        again = a.complete(path, prefix, suffix)
        warm.append(time.perf_counter() - t)
        assert again.cached and again.text == result.text
        del text
    out = {"n": len(cases), "model": gen.name, "threads": a.settings.threads,
           "raw_infill_s": {"p50": percentile(raw, 0.5), "p95": percentile(raw, 0.95)},
           "complete_s": {"p50": percentile(cold, 0.5), "p95": percentile(cold, 0.95)},
           "cached_ms": {"p50": percentile(warm, 0.5) * 1000, "p95": percentile(warm, 0.95) * 1000},
           "ratio_p50": statistics.median(cold) / statistics.median(raw)}
    print(f"completion latency, {out['n']} cursors in requests, {gen.name}, {out['threads']} threads")
    raw_s = out["raw_infill_s"]
    print(f"  raw llama-cpp-python infill  p50 {raw_s['p50']:.2f}s  p95 {raw_s['p95']:.2f}s")
    print(f"  localpilot complete          p50 {out['complete_s']['p50']:.2f}s  p95 {out['complete_s']['p95']:.2f}s"
          f"  ({out['ratio_p50']:.2f}x raw: context retrieval + a prompt with 2 snippets)")
    print(f"  cached (same cursor again)   p50 {out['cached_ms']['p50']:.1f}ms  p95 {out['cached_ms']['p95']:.1f}ms")
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="cursor positions")
    parser.add_argument("--llm", default="qwen2.5-coder-0.5b")
    return run_bench(parser, argv, "lp-bench-completion-", run)


if __name__ == "__main__":
    sys.exit(main())
