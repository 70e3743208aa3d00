"""Answers on a real repo: generation speed and TTFT against raw llama-cpp-python, and answer grounding.

Repo: the requests sdist pinned in ``_corpus.py``, as shipped (docstrings kept), committed as a git repo and
indexed by the real ``Assistant`` (MiniLM, Chroma, the shipped reranker), the default small model
(qwen2.5-coder-0.5b) answering. Three parts, in one process:

1. Speed: per question, the same rendered prompt and max tokens through raw
   ``Llama.create_completion(prompt, stream=True, temperature=0, repeat_penalty=1.1)`` (localpilot samples
   greedily with repeat penalty 1.1, so both produce the same tokens), ``LlamaCppGenerator.stream`` and the full
   ``Assistant.ask(expert="small")`` path, on the same ``Llama`` object, order rotated per question, KV cache
   cleared before every run. Generation tokens/s = (tokens - 1) / (last token - first token), taken the same
   way for all three; the headline is the ratio of medians.
2. TTFT: ``ask``'s ttft_ms (request start -> first shown token) against the floor
   retrieve_ms + rerank_ms + prompt_tokens / raw prompt rate (the raw run's prompt tokens / its time to first
   token, same prompt, same run). Then follow-ups in one conversation, where the KV prefix is reused.
3. Grounding: hand-written questions (``data/grounding_requests.toml``) paraphrasing a documented function's
   first docstring sentence; answered with ``ask(expert="small")``. Grounded = a citation of the answer overlaps
   the target function (same path, overlapping lines); ceiling = the target was among the prompt's snippets.

Usage: .venv/bin/python bench/answer.py [--limit 30] [--rounds 5] [--workdir DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
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
    median,
    overlaps,
    quantiles,
    source_repo,
)
from _corpus import run_bench

log = logging.getLogger("bench.answer")

FOLLOW_UPS = [
    (
        "How is a Response object built from a urllib3 response?",
        "And how is the encoding of that response's text decided?",
    ),
    (
        "How does the session decide whether the Authorization header should be removed when it follows a redirect?",
        "What happens to the proxy settings in the same situation?",
    ),
]


def rate(stamps: Sequence[float]) -> float:
    """Tokens/s between the first and the last token (the first token's latency is TTFT, not generation)."""
    return (
        (len(stamps) - 1) / (stamps[-1] - stamps[0])
        if len(stamps) > 1 and stamps[-1] > stamps[0]
        else 0.0
    )


# ------------------------------------------------------------------------------------------ 1+2: speed


def run_raw(llm: Any, rendered: str, max_tokens: int) -> dict[str, Any]:
    stamps, text = [], []
    started = time.perf_counter()
    for chunk in llm.create_completion(
        rendered, max_tokens=max_tokens, stream=True, temperature=0.0, repeat_penalty=1.1
    ):
        stamps.append(time.perf_counter())
        text.append(chunk["choices"][0]["text"])
    return {
        "ttft_ms": (stamps[0] - started) * 1000,
        "gen_tps": rate(stamps),
        "tokens": len(stamps),
        "text": "".join(text),
    }


def run_stream(gen: Any, messages: Any, max_tokens: int) -> dict[str, Any]:
    stamps, text = [], []
    started = time.perf_counter()
    for token in gen.stream(messages, max_tokens):
        if token.logprob is None:  # an undecodable byte tail, not a generated token
            text.append(token.text)
            continue
        stamps.append(time.perf_counter())
        text.append(token.text)
    return {
        "ttft_ms": (stamps[0] - started) * 1000,
        "gen_tps": rate(stamps),
        "tokens": len(stamps),
        "text": "".join(text),
        "self_reported_tps": gen.last.gen_tokens_per_s,
    }


def run_ask(a: Any, question: str, conversation: Any = None) -> dict[str, Any]:
    stamps, answer = [], None
    started = time.perf_counter()
    for event in a.ask(question, conversation, expert="small"):
        if event.kind == "token":
            stamps.append(time.perf_counter())
        elif event.kind == "done":
            answer = event.answer
    assert answer is not None
    t = answer.timings
    return {
        "ttft_ms": t["ttft_ms"],
        "measured_ttft_ms": (stamps[0] - started) * 1000 if stamps else None,
        "gen_tps": rate(stamps),
        "tokens": len(stamps),
        "text": answer.text,
        "timings": t,
    }


def from_scratch(gen: Any, run: Any) -> dict[str, Any]:
    """``run()`` with the model's KV cache cleared first: nothing of an earlier prompt is reused."""
    forget_kv(gen)
    return run()


def conversation(a: Any, first: str, second: str) -> dict[str, Any]:
    from localpilot.answer import Conversation

    conv = Conversation()
    one = run_ask(a, first, conv)["timings"]
    two = run_ask(a, second, conv)["timings"]
    return {"one": one, "two": two, "conv": conv}


def run_raw_follow_up(llm: Any, first: str, second: str, max_tokens: int) -> dict[str, Any]:
    """Raw first turn (greedy, same penalty: the same answer tokens as localpilot's), then the follow-up."""
    run_raw(llm, first, max_tokens)
    return run_raw(llm, second, 1)


def speed(a: Any, gen: Any, questions: Sequence[str], max_tokens: int) -> dict[str, Any]:
    from localpilot.answer import Budget, Conversation, build_prompt
    from localpilot.asking import CONTEXT_HITS

    llm = gen.llm
    kinds = ["raw", "stream", "ask"]
    rows = []
    forget_kv(gen)
    run_raw(llm, gen.render([{"role": "user", "content": "Say hi."}]), 8)  # warm-up
    for i, q in enumerate(questions):
        hits = a.retriever.search(q, CONTEXT_HITS).hits
        prompt = build_prompt(
            q, hits, Conversation(), gen, Budget(gen.n_ctx, max_tokens, a.settings.context_tokens)
        )
        rendered = gen.render(prompt.messages)
        if llm.tokenize(rendered.encode("utf-8"), special=True) != gen.encode(prompt.messages):
            log.warning(
                "raw tokenization of the rendered prompt differs from localpilot's for %r", q
            )
        row: dict[str, Any] = {
            "question": q,
            "prompt_tokens": prompt.tokens,
            "order": kinds[i % 3 :] + kinds[: i % 3],
        }
        runs = {
            "raw": partial(run_raw, llm, rendered, max_tokens),
            "stream": partial(run_stream, gen, prompt.messages, max_tokens),
            "ask": partial(run_ask, a, q),
        }
        for kind in row["order"]:
            row[kind] = measured(partial(from_scratch, gen, runs[kind]))
        t = row["ask"]["timings"]
        if t["prompt_tokens"] != prompt.tokens:
            log.warning(
                "ask built a different prompt (%s tokens, expected %s)",
                t["prompt_tokens"],
                prompt.tokens,
            )
        row["raw_prompt_tps"] = prompt.tokens / (row["raw"]["ttft_ms"] / 1000)
        row["ttft_floor_ms"] = (
            t.get("retrieve_ms", 0)
            + t.get("rerank_ms", 0)
            + t["prompt_tokens"] / row["raw_prompt_tps"] * 1000
        )
        row["ttft_ratio"] = t["ttft_ms"] / row["ttft_floor_ms"]
        row["same_text"] = row["raw"]["text"].strip() == row["stream"]["text"].strip()
        rows.append(row)
        log.info(
            "speed %d/%d: raw %.1f, stream %.1f, ask %.1f tok/s; ttft %.0f ms vs floor %.0f ms (%s prompt "
            "tokens)",
            i + 1,
            len(questions),
            row["raw"]["gen_tps"],
            row["stream"]["gen_tps"],
            row["ask"]["gen_tps"],
            t["ttft_ms"],
            row["ttft_floor_ms"],
            prompt.tokens,
        )
    med = {k: median([r[k]["gen_tps"] for r in rows]) for k in kinds}
    return {
        "rows": rows,
        "median_gen_tps": med,
        "ratio_stream": med["stream"] / med["raw"],
        "ratio_ask": med["ask"] / med["raw"],
        "median_raw_prompt_tps": median([r["raw_prompt_tps"] for r in rows]),
        "median_ttft_ms": median([r["ask"]["ttft_ms"] for r in rows]),
        "median_ttft_floor_ms": median([r["ttft_floor_ms"] for r in rows]),
        "median_ttft_ratio": median([r["ttft_ratio"] for r in rows]),
        "max_ttft_ratio": max(r["ttft_ratio"] for r in rows),
        "identical_outputs": sum(r["same_text"] for r in rows),
    }


def follow_ups(a: Any, gen: Any, prompt_tps: float, max_tokens: int) -> list[dict[str, Any]]:
    """A question, then a follow-up in the same conversation: the follow-up's prompt starts with the first
    turn (KV prefix reused). Its floor is raw llama-cpp-python doing the same: the first turn's prompt and
    answer generated raw (same tokens), then the follow-up's rendered prompt, prefix reused the same way."""
    from localpilot.answer import SYSTEM

    llm = gen.llm
    out = []
    for first, second in FOLLOW_UPS:
        done = measured(partial(from_scratch, gen, partial(conversation, a, first, second)))
        one, two, (t1, t2) = done["one"], done["two"], done["conv"].turns
        p1 = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t1.user_message}]
        p2 = [
            *p1,
            {"role": "assistant", "content": t1.answer},
            {"role": "user", "content": t2.user_message},
        ]
        if len(gen.encode(p2)) != two["prompt_tokens"]:
            log.warning(
                "follow-up prompt rebuilt with %d tokens, ask had %d",
                len(gen.encode(p2)),
                two["prompt_tokens"],
            )
        # raw: the first turn (same answer tokens: greedy, same penalty), then the follow-up, prefix reused
        reused = measured(
            partial(
                from_scratch,
                gen,
                partial(run_raw_follow_up, llm, gen.render(p1), gen.render(p2), max_tokens),
            )
        )
        fresh = measured(partial(from_scratch, gen, partial(run_raw, llm, gen.render(p2), 1)))
        raw_reused, raw_fresh = reused["ttft_ms"], fresh["ttft_ms"]
        base = two.get("retrieve_ms", 0) + two.get("rerank_ms", 0)
        new = two["prompt_tokens"] - two["cached_prompt_tokens"]
        out.append(
            {
                "question": second,
                "first_ttft_ms": one["ttft_ms"],
                "first_prompt_tokens": one["prompt_tokens"],
                "ttft_ms": two["ttft_ms"],
                "prompt_tokens": two["prompt_tokens"],
                "cached_prompt_tokens": two["cached_prompt_tokens"],
                "retrieve_rerank_ms": base,
                "floor_rate_ms": base + new / prompt_tps * 1000,
                "floor_raw_reused_ms": base + raw_reused,
                "floor_raw_fresh_ms": base + raw_fresh,
                "ratio_raw_reused": two["ttft_ms"] / (base + raw_reused),
                "others_busy": max(
                    done["others_busy"], reused["others_busy"], fresh["others_busy"]
                ),
            }
        )
    return out


# --------------------------------------------------------------------------------------------- 3: grounding


def grounding(
    b: Any, questions: Sequence[dict[str, Any]], targets: dict[tuple[str, str], Any]
) -> dict[str, Any]:
    rows = []
    rec = b.generator("small")
    for i, item in enumerate(questions):
        target = targets[(item["path"], item["function"])]
        started = time.perf_counter()
        answer = next(e.answer for e in b.ask(item["q"], expert="small") if e.kind == "done")
        wall = time.perf_counter() - started
        in_prompt = [
            j
            for j, h in enumerate(answer.hits, 1)
            if overlaps(h.path, h.start_line, h.end_line, target)
        ]
        cited = [c for c in answer.citations if overlaps(c.path, c.start_line, c.end_line, target)]
        rows.append(
            {
                "question": item["q"],
                "target": f"{target.path}:{target.start_line}-{target.end_line} {target.qualname}",
                "in_prompt": bool(in_prompt),
                "prompt_rank": in_prompt[0] if in_prompt else None,
                "grounded": bool(cited),
                "grounded_by_model": any(c.how == "cited" for c in cited),
                "citations": [
                    f"{c.path}:{c.start_line}-{c.end_line} ({c.how})" for c in answer.citations
                ],
                "snippets": len(answer.hits),
                "answer": answer.text,
                "wall_s": wall,
                "probe_logprob": rec.calls[-1]["probe_logprob"],
                "gen_tokens": answer.timings["gen_tokens"],
            }
        )
        log.info(
            "grounding %d/%d: %s%s %s",
            i + 1,
            len(questions),
            "in prompt, " if in_prompt else "",
            "grounded" if cited else "not grounded",
            target.qualname,
        )
    n = len(rows) or 1
    scores = [r["probe_logprob"] for r in rows if r["probe_logprob"] is not None]
    return {
        "rows": rows,
        "questions": len(rows),
        "grounded": sum(r["grounded"] for r in rows) / n,
        "grounded_by_model": sum(r["grounded_by_model"] for r in rows) / n,
        "in_prompt": sum(r["in_prompt"] for r in rows) / n,
        "grounded_given_in_prompt": (
            sum(r["grounded"] for r in rows if r["in_prompt"])
            / max(1, sum(r["in_prompt"] for r in rows))
        ),
        "probe_logprob": quantiles(scores),
        "below_threshold": sum(s < -1.0 for s in scores),
        "median_wall_s": median([r["wall_s"] for r in rows]),
    }


# -------------------------------------------------------------------------------------------------- main


def load_questions(
    targets: dict[tuple[str, str], Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = load_toml("grounding_requests.toml")
    for item in data["question"]:
        key = (item["path"], item["function"])
        if key not in targets:
            raise SystemExit(
                f"grounding_requests.toml: {key} is not a function of {data['package']} "
                f"{data['version']}"
            )
        if targets[key].first_sentence != item["docstring"]:
            raise SystemExit(
                f"grounding_requests.toml: docstring of {key} is {targets[key].first_sentence!r}, "
                f"not {item['docstring']!r}"
            )
    return data, data["question"]


def _run(args: argparse.Namespace, work: Path) -> int:
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    started = time.perf_counter()
    load_start = os.getloadavg()
    repo = work / "repo"
    meta = load_toml("grounding_requests.toml")
    targets = source_repo(repo, meta["package"], meta["version"])
    meta, questions = load_questions(targets)
    settings = load_settings(
        repo, cache_dir=work / "cache", answer_tokens=args.max_tokens, threads=args.threads
    )
    small = load_llm(settings, "small")
    a = Assistant(repo, settings, generators={"small": small})
    stats = a.index()
    log.info("index: %s", stats.summary())
    a.search("warm up the retriever")

    report: dict[str, Any] = {
        "benchmark": "answer",
        "repo": f"{meta['package']}=={meta['version']}",
        "chunks": a.state.chunk_count(),
        "model": small.name,
        "threads": small.threads,
        "max_tokens": args.max_tokens,
        "answer_tokens": args.answer_tokens,
    }
    if args.rounds:
        report["speed"] = speed(
            a, small, [q["q"] for q in questions[: args.rounds]], args.max_tokens
        )
        if not args.no_follow_ups:
            report["follow_ups"] = follow_ups(
                a, small, report["speed"]["median_raw_prompt_tps"], args.max_tokens
            )
    if args.limit:
        b = Assistant(
            repo,
            replace(settings, answer_tokens=args.answer_tokens),
            embedder=a.embedder,
            store=a.store,
            generators={"small": Recording(small)},
        )
        report["grounding"] = grounding(b, questions[: args.limit], targets)
        b.close()
    a.close()
    return finish(report, started, load_start, print_report, args.out)


def print_report(r: dict[str, Any]) -> None:
    print(
        f"answer: {r['repo']} as shipped, {r['chunks']} chunks; {r['model']} on {r['threads']} threads, "
        f"{r['cpus']} CPUs; load avg {r['loadavg_start'][0]:.1f} -> {r['loadavg_end'][0]:.1f}"
    )
    if "speed" in r:
        s = r["speed"]
        n = len(s["rows"])
        print(
            f"\ngeneration, {n} prompts x {r['max_tokens']} tokens, KV cleared before each run, medians "
            f"({s['identical_outputs']}/{n} raw and localpilot outputs identical)"
        )
        print(f"{'path':<44} {'tokens/s':>9} {'vs raw':>7}")
        m = s["median_gen_tps"]
        print(f"{'raw llama-cpp-python create_completion':<44} {m['raw']:>9.1f} {1.0:>7.2f}")
        print(f"{'LlamaCppGenerator.stream':<44} {m['stream']:>9.1f} {s['ratio_stream']:>7.2f}")
        print(f"{'Assistant.ask(expert=small)':<44} {m['ask']:>9.1f} {s['ratio_ask']:>7.2f}")
        busy = max(row[k]["others_busy"] for row in s["rows"] for k in ("raw", "stream", "ask"))
        again = sum(row[k]["attempts"] - 1 for row in s["rows"] for k in ("raw", "stream", "ask"))
        print(
            f"(other processes used at most {busy:.1f} cores during a kept run; {again} runs repeated because "
            "the machine was busy)"
        )
        print(
            f"\nTTFT of ask, fresh prompts (raw prompt rate {s['median_raw_prompt_tps']:.0f} tokens/s)"
        )
        print(
            f"{'prompt tokens':>13} {'retr+rerank ms':>15} {'floor ms':>9} {'ttft ms':>8} {'ratio':>6}"
        )
        for row in s["rows"]:
            t = row["ask"]["timings"]
            print(
                f"{t['prompt_tokens']:>13} {t.get('retrieve_ms', 0) + t.get('rerank_ms', 0):>15.0f} "
                f"{row['ttft_floor_ms']:>9.0f} {t['ttft_ms']:>8.0f} {row['ttft_ratio']:>6.2f}"
            )
        print(
            f"median ttft {s['median_ttft_ms']:.0f} ms vs floor {s['median_ttft_floor_ms']:.0f} ms: ratio "
            f"{s['median_ttft_ratio']:.2f} (max {s['max_ttft_ratio']:.2f})"
        )
    if r.get("follow_ups"):
        print(
            "\nfollow-ups in the same conversation (KV prefix reused); floors = retrieve + rerank + raw TTFT of the "
            "same prompt"
        )
        print(
            f"{'1st ttft ms':>11} {'prompt':>7} {'cached':>7} {'ttft ms':>8} {'floor (raw, reused)':>20} "
            f"{'ratio':>6} {'rate floor':>11} {'raw, no reuse':>14}"
        )
        for f in r["follow_ups"]:
            print(
                f"{f['first_ttft_ms']:>11.0f} {f['prompt_tokens']:>7} {f['cached_prompt_tokens']:>7} "
                f"{f['ttft_ms']:>8.0f} {f['floor_raw_reused_ms']:>20.0f} {f['ratio_raw_reused']:>6.2f} "
                f"{f['floor_rate_ms']:>11.0f} {f['floor_raw_fresh_ms']:>14.0f}"
                + (
                    f"  (other processes: {f['others_busy']:.1f} cores)"
                    if f["others_busy"] > 0.3
                    else ""
                )
            )
    if "grounding" in r:
        g = r["grounding"]
        print(
            f"\ngrounding, {g['questions']} questions, answers up to {r['answer_tokens']} tokens "
            f"(median {g['median_wall_s']:.1f} s each)"
        )
        print(f"  target among the prompt's snippets (ceiling)   {g['in_prompt']:.2f}")
        print(f"  answer cites the target (any citation)         {g['grounded']:.2f}")
        print(
            f"  answer cites the target (model-written [path:lines]) {g['grounded_by_model']:.2f}"
        )
        print(
            f"  cites it when it was in the prompt             {g['grounded_given_in_prompt']:.2f}"
        )
        q = g["probe_logprob"]
        if q:
            print(
                "  small model mean log-prob of its first 12 tokens: "
                + ", ".join(f"{k} {v:.2f}" for k, v in q.items())
                + f"; {g['below_threshold']}/{g['questions']} below -1.0"
            )
    print(f"\ntotal {r['seconds_total']:.0f}s")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--limit", type=int, default=30, help="grounding questions (default all 30; 0 skips)"
    )
    p.add_argument(
        "--rounds", type=int, default=5, help="prompts for the speed and TTFT part (0 skips)"
    )
    p.add_argument("--max-tokens", type=int, default=128, help="tokens generated per speed run")
    p.add_argument(
        "--answer-tokens", type=int, default=160, help="answer_tokens for the grounding answers"
    )
    p.add_argument("--no-follow-ups", action="store_true")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads (default: localpilot's setting)",
    )
    return run_bench(p, argv, "lp-bench-answer-", _run)


if __name__ == "__main__":
    raise SystemExit(main())
