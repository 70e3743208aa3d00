"""Expert routing: accuracy on hand-labelled requests, and the time saved against always using the big model.

Requests: ``data/router_requests.toml``, written by hand about requests 2.34.2 (pinned in ``_corpus.py``), each
with the route a careful human would pick (search: take me to code; small: a question one or two snippets
answer; big: needs depth, or asks for it). The repo is the sdist as shipped (docstrings kept), indexed by the
real ``Assistant``; small = qwen2.5-coder-0.5b, big = qwen2.5-coder-1.5b (both must be installed).

1. ``Router.decide`` (rules + example neighbours, before retrieval) on every request: accuracy, confusion table.
2. End to end (``--limit`` requests, a fixed-seed random subset when fewer than all): each request through
   ``ask`` as routed (with the post-retrieval context escalation and the small model's confidence probe), and
   through ``ask(expert="big")``; the order of the two alternates, the KV caches of both models are cleared
   before every run, and each run waits for the machine to be quiet. Reports the final expert's accuracy,
   the escalations, the wall-time totals and the saving, and the small model's probe log-probs.

Usage: .venv/bin/python bench/router.py [--limit 41] [--answer-tokens 128] [--workdir DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _asking import (
    Recording,
    finish,
    forget_kv,
    load_llm,
    load_toml,
    measured,
    quantiles,
    source_repo,
)
from _corpus import run_bench

log = logging.getLogger("bench.router")
EXPERTS = ("search", "small", "big")


def confusion(pairs: Sequence[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """{expected: {got: count}}."""
    table = {e: dict.fromkeys(EXPERTS, 0) for e in EXPERTS}
    for expected, got in pairs:
        table[expected][got] += 1
    return table


def accuracy(pairs: Sequence[tuple[str, str]]) -> float:
    return sum(e == g for e, g in pairs) / (len(pairs) or 1)


def ask_timed(
    a: Any, text: str, expert: str | None, small: Recording, big: Recording
) -> dict[str, Any]:
    """One request through ``ask`` from a cold KV cache (a new question in a new session), timed."""
    forget_kv(small, big)
    calls = len(small.calls)
    events: list[Any] = []
    started = time.perf_counter()
    for event in a.ask(text, expert=expert):
        if event.kind != "token":
            events.append(event)
    wall = time.perf_counter() - started
    answer = events[-1].answer
    first = next(e.text for e in events if e.kind == "route").split(":", 1)[0]
    escalate = next((e.text for e in events if e.kind == "escalate"), "")
    probe = small.calls[calls]["probe_logprob"] if len(small.calls) > calls else None
    how = (
        "confidence"
        if answer.escalated_from
        else "context"
        if first == "small" and answer.expert == "big"
        else ""
    )
    return {
        "expert": answer.expert,
        "first": first,
        "reason": answer.reason,
        "escalated": how,
        "escalate_text": escalate,
        "wall_s": wall,
        "probe_logprob": probe,
        "model": answer.model,
        "ttft_ms": answer.timings.get("ttft_ms"),
        "prompt_tokens": answer.timings.get("prompt_tokens"),
        "gen_tokens": answer.timings.get("gen_tokens"),
    }


def _run(args: argparse.Namespace, work: Path) -> int:
    from localpilot.asking import CONTEXT_HITS, relevant_tokens
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    started = time.perf_counter()
    load_start = os.getloadavg()
    data = load_toml("router_requests.toml")
    requests = data["request"]
    bad = [r for r in requests if r["route"] not in EXPERTS]
    if bad:
        raise SystemExit(f"router_requests.toml: unknown route in {bad}")
    repo = work / "repo"
    source_repo(repo, "requests", load_toml("grounding_requests.toml")["version"])
    settings = load_settings(
        repo, cache_dir=work / "cache", answer_tokens=args.answer_tokens, threads=args.threads
    )
    small = Recording(load_llm(settings, "small"))
    big = Recording(load_llm(settings, "big"))
    a = Assistant(repo, settings, generators={"small": small, "big": big})
    log.info("index: %s", a.index().summary())
    router = a.router
    assert router.big_available

    decided = []
    for r in requests:
        t = time.perf_counter()
        route = router.decide(r["text"])
        ms = (time.perf_counter() - t) * 1000
        # the post-retrieval signal: tokens of the hits scoring within context_share of the best one
        relevant = relevant_tokens(
            a.retriever.search(r["text"], CONTEXT_HITS).hits, small, router.config.context_share
        )
        decided.append(
            {
                "text": r["text"],
                "expected": r["route"],
                "route": route.expert,
                "reason": route.reason,
                "ms": ms,
                "relevant_tokens": relevant,
            }
        )
    report: dict[str, Any] = {
        "benchmark": "router",
        "requests": len(requests),
        "small": small.name,
        "big": big.name,
        "threads": small.inner.threads,
        "answer_tokens": args.answer_tokens,
        "min_logprob": router.config.min_logprob,
        "probe_tokens": router.config.probe_tokens,
        "context_share": router.config.context_share,
        "context_tokens": settings.context_tokens,
        "decide": {
            "accuracy": accuracy([(d["expected"], d["route"]) for d in decided]),
            "confusion": confusion([(d["expected"], d["route"]) for d in decided]),
            "relevant_tokens": {
                e: quantiles([d["relevant_tokens"] for d in decided if d["expected"] == e])
                for e in EXPERTS
            },
            "over_context_budget": sum(
                d["relevant_tokens"] > settings.context_tokens for d in decided
            ),
            "rows": decided,
        },
    }

    chosen = list(range(len(requests)))
    random.Random(args.seed).shuffle(chosen)
    chosen = chosen[: args.limit]
    a.search("warm up the retriever")
    rows = []
    for n, i in enumerate(chosen):
        r = requests[i]
        row: dict[str, Any] = {"text": r["text"], "expected": r["route"]}
        for which in ("routed", "big") if n % 2 == 0 else ("big", "routed"):
            run = partial(ask_timed, a, r["text"], None if which == "routed" else "big", small, big)
            row[which] = measured(run, attempts=args.attempts, wait_s=args.wait_quiet)
        rows.append(row)
        log.info(
            "%d/%d %-6s -> %-6s%s routed %.1fs, big %.1fs: %s",
            n + 1,
            len(chosen),
            r["route"],
            row["routed"]["expert"],
            f" ({row['routed']['escalated']} escalation)" if row["routed"]["escalated"] else "",
            row["routed"]["wall_s"],
            row["big"]["wall_s"],
            r["text"][:60],
        )
    if rows:
        pairs = [(r["expected"], r["routed"]["expert"]) for r in rows]
        routed_s = sum(r["routed"]["wall_s"] for r in rows)
        big_s = sum(r["big"]["wall_s"] for r in rows)
        probes = [
            (r["expected"], r["routed"]["probe_logprob"])
            for r in rows
            if r["routed"]["probe_logprob"] is not None
        ]
        by_class = {
            e: {
                "n": sum(r["expected"] == e for r in rows),
                "routed_s": sum(r["routed"]["wall_s"] for r in rows if r["expected"] == e),
                "big_s": sum(r["big"]["wall_s"] for r in rows if r["expected"] == e),
            }
            for e in EXPERTS
        }
        report["end_to_end"] = {
            "requests": len(rows),
            "subset": len(rows) < len(requests),
            "seed": args.seed,
            "accuracy": accuracy(pairs),
            "confusion": confusion(pairs),
            "decide_accuracy_on_subset": accuracy(
                [(r["expected"], r["routed"]["first"]) for r in rows]
            ),
            "escalations": {
                k: sum(r["routed"]["escalated"] == k for r in rows)
                for k in ("context", "confidence")
            },
            "routed_s": routed_s,
            "always_big_s": big_s,
            "saving": 1 - routed_s / big_s if big_s else 0.0,
            "by_expected": by_class,
            "probe_logprob": quantiles([p for _, p in probes]),
            "probe_logprob_by_expected": {
                e: sorted(round(p, 2) for x, p in probes if x == e) for e in EXPERTS
            },
            "below_threshold": sum(p < router.config.min_logprob for _, p in probes),
            "probed": len(probes),
            "others_busy_mean": {
                k: sum(r[k]["others_busy"] for r in rows) / len(rows) for k in ("routed", "big")
            },
            "rows": rows,
        }
    a.close()
    return finish(report, started, load_start, print_report, args.out)


def print_confusion(table: dict[str, dict[str, int]]) -> None:
    head = "expected / got"
    print(f"  {head:<18}" + "".join(f"{e:>8}" for e in EXPERTS))
    for e in EXPERTS:
        print(f"  {e:<18}" + "".join(f"{table[e][g]:>8}" for g in EXPERTS))


def print_report(r: dict[str, Any]) -> None:
    print(
        f"router: {r['requests']} hand-labelled requests about requests 2.34.2; small {r['small']}, big {r['big']}, "
        f"{r['threads']} llama.cpp threads, {r['cpus']} CPUs; answers up to {r['answer_tokens']} tokens"
    )
    d = r["decide"]
    print(f"\nRouter.decide (before retrieval), all {r['requests']}: accuracy {d['accuracy']:.2f}")
    print_confusion(d["confusion"])
    for row in d["rows"]:
        if row["route"] != row["expected"]:
            print(
                f"  miss: {row['expected']:>6} -> {row['route']:<6} {row['text'][:70]!r} ({row['reason']})"
            )
    print(
        f"\nrelevant code after retrieval (tokens of hits within {r['context_share']} of the best score; the "
        f"context escalation needs more than {r['context_tokens']}): {d['over_context_budget']} of "
        f"{r['requests']} requests over"
    )
    for k, v in d["relevant_tokens"].items():
        print(f"  expected {k:<7} " + ", ".join(f"{name} {value:.0f}" for name, value in v.items()))
    e = r.get("end_to_end")
    if e:
        sub = f"a random subset (seed {e['seed']})" if e["subset"] else "all"
        print(
            f"\nend to end through ask, {e['requests']} requests ({sub}): final expert accuracy {e['accuracy']:.2f} "
            f"(decide alone on these: {e['decide_accuracy_on_subset']:.2f}); escalations: "
            f"{e['escalations']['context']} for context size, {e['escalations']['confidence']} for low confidence"
        )
        print_confusion(e["confusion"])
        print(f"\n{'expected':<10} {'n':>3} {'routed s':>9} {'always big s':>13}")
        for k, v in e["by_expected"].items():
            print(f"{k:<10} {v['n']:>3} {v['routed_s']:>9.0f} {v['big_s']:>13.0f}")
        print(
            f"{'total':<10} {e['requests']:>3} {e['routed_s']:>9.0f} {e['always_big_s']:>13.0f}   "
            f"saving {e['saving']:.0%} of the always-big time"
        )
        busy = e["others_busy_mean"]
        print(
            f"(other processes used {busy['routed']:.1f} cores on average during the routed runs, "
            f"{busy['big']:.1f} during the big ones)"
        )
        q = e["probe_logprob"]
        if q:
            print(
                f"\nsmall model's probe (mean log-prob of its first {r['probe_tokens']} tokens), {e['probed']} "
                f"routed runs: "
                + ", ".join(f"{k} {v:.2f}" for k, v in q.items())
                + f"; {e['below_threshold']} below {r['min_logprob']}"
            )
            for k, v in e["probe_logprob_by_expected"].items():
                if v:
                    print(f"  expected {k}: {v}")
    print(f"\ntotal {r['seconds_total']:.0f}s")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--limit",
        type=int,
        default=1000,
        help="requests run end to end (default all; 0: decide only)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the subset and its order")
    p.add_argument(
        "--answer-tokens",
        type=int,
        default=128,
        help="answer_tokens for both the routed and big runs",
    )
    p.add_argument(
        "--attempts",
        type=int,
        default=2,
        help="runs of a request (routed or big) while other processes use >0.3 cores (default 2)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        metavar="S",
        help="wait up to S seconds for a quiet machine before each run (default 60; 0: never)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads (default: localpilot's setting)",
    )
    return run_bench(p, argv, "lp-bench-router-", _run)


if __name__ == "__main__":
    raise SystemExit(main())
