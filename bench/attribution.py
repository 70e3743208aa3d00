"""Attribution replayed on recorded answers, no LLM: tune how answers are cited in seconds, on dev sets only.

Reads a ``bench/grounding.py`` results file (``--fit`` → ``dev``: requests; ``--dev-js`` → ``dev_js``: koa),
indexes the same repository in the same work directory, retrieves each question again and rebuilds the prompt's
snippets exactly as ``ask`` does (same hits, same token budget), strips the attribution marks from the recorded
answer and attributes it again with the current ``localpilot.attribute`` and each ``--prior`` weight. Scored
as grounding.py scores: a citation inside the target (of the answers whose target was in the prompt), every
citation inside a shown snippet. The recorded score is printed beside the replay at the shipped settings as a
check that the replay reproduces the run (it differs only where retrieval changed since the recording).

Never point it at the evaluation sets' results to tune: that would fit the held-out questions.

Usage: .venv/bin/python bench/attribution.py RESULTS.json --workdir DIR [--prior 0 0.1 0.2]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import emit, run_bench
from grounding import Question, assistant, in_prompt, inside, shown

ROOTS = {"dev": "requests", "dev_js": "koa"}
MARK = re.compile(r" \[(?:unsupported|[^\]\s]+:\d+-\d+)\]")


def question_of(row: dict[str, Any]) -> Question:
    where, symbol = row["target"].split(" ", 1)
    path, lines = where.rsplit(":", 1)
    start, end = (int(x) for x in lines.split("-"))
    return Question(row["question"], path, symbol, start, end)


def replay_rows(a: Any, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per answered question: its question, the text without marks and the prompt's visible snippets."""
    from localpilot.answer import Budget, Conversation, build_prompt
    from localpilot.asking import CONTEXT_HITS

    gen = a.generator("small")
    budget = Budget(gen.n_ctx, a.settings.answer_tokens, a.settings.context_tokens)
    out = []
    for r in rows:
        if not r["target"] or r["not_found"] or r["expert"] == "search":
            continue
        q = question_of(r)
        hits = a.retriever.search(q.q, CONTEXT_HITS).hits
        prompt = build_prompt(q.q, hits, Conversation(), gen, budget)
        out.append({"q": q, "text": MARK.sub("", r["answer"]), "visible": prompt.visible, "row": r})
    return out


def score_prior(
    a: Any, items: Sequence[dict[str, Any]], prior: float, named: float
) -> dict[str, Any]:
    from localpilot import attribute
    from localpilot.answer import sources

    attribute.PRIOR, attribute.NAMED = prior, named
    given = [it for it in items if in_prompt(it["q"], it["visible"])]
    inside_n, shown_n, cites_n, misses, on_named = 0, 0, 0, [], []
    for it in given:
        attribution = a.parts.attributor.attribute(it["text"], it["visible"])
        on_named += named_claims(attribution, it["visible"])
        cites = sources(it["text"], it["visible"], attribution)
        ok = any(inside(c, it["q"]) for c in cites)
        inside_n += ok
        shown_n += sum(shown(c, it["visible"]) for c in cites)
        cites_n += len(cites)
        if not ok:
            misses.append(f"{it['q'].path}:{it['q'].start_line} {it['q'].symbol}")
    return {
        "prior": prior,
        "named": named,
        "given_in_prompt": len(given),
        "cites_inside_given_in_prompt": round(inside_n / max(1, len(given)), 3),
        "citations_inside_shown": round(shown_n / max(1, cites_n), 3),
        "named_claims_on_their_snippet": f"{sum(on_named)} / {len(on_named)}",
        "misses": misses,
    }


def named_claims(attribution: Any, visible: Sequence[Any]) -> list[bool]:
    """For each supported claim naming exactly one shown snippet's symbol: is it cited to that snippet?
    (Precision per claim, which "a citation inside the target" does not see.)"""
    out = []
    for c in attribution.claims:
        if not c.supported:
            continue
        owners = [
            h
            for h in visible
            if len(name := h.symbol.rsplit(".", 1)[-1]) >= 4
            and re.search(rf"\b{re.escape(name)}\b", c.text)
        ]
        if len({(h.path, h.start_line) for h in owners}) == 1:
            h = owners[0]
            out.append(
                c.path == h.path and c.start_line <= h.end_line and c.end_line >= h.start_line
            )
    return out


def answer_features(a: Any, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Full-answer signals (``localpilot.asking.answer_signals``) beside each answer's label (a citation inside
    the target or its name), and each signal's AUROC alone: what a correctness estimate could read."""
    from sklearn.metrics import roc_auc_score

    from localpilot.answer import sources
    from localpilot.asking import answer_signals

    rows = []
    for it in items:
        if not in_prompt(it["q"], it["visible"]):
            continue
        att = a.parts.attributor.attribute(it["text"], it["visible"])
        cites = sources(it["text"], it["visible"], att)
        label = any(inside(c, it["q"]) for c in cites) or bool(it["row"]["names_target"])
        feats = it["row"]["signals"] | answer_signals(it["text"], it["visible"], att)
        rows.append({"label": label, "names_target": it["row"]["names_target"], "signals": feats})
    names = sorted({k for r in rows for k in r["signals"]})
    labels = [r["label"] for r in rows]
    aurocs = {}
    if len(set(labels)) == 2:
        for n in names:
            values = [float(r["signals"].get(n, 0.0)) for r in rows]
            aurocs[n] = round(float(roc_auc_score(labels, values)), 3)
    return {"answers": len(rows), "correct": sum(labels), "auroc": aurocs, "rows": rows}


def _run(args: argparse.Namespace, work: Path) -> int:
    report: dict[str, Any] = {"benchmark": "attribution-replay", "results": str(args.results)}
    data = json.loads(args.results.read_text())
    for key, name in ROOTS.items():
        if key not in data:
            continue
        rows = data[key]["rows"]
        a = assistant(work / name, work)
        items = replay_rows(a, rows)
        recorded = [r for r in rows if r["target"] and r.get("in_prompt") and not r["not_found"]]
        report[name] = {
            "recorded_cites_inside_given_in_prompt": round(
                sum(r["cites_inside"] for r in recorded) / max(1, len(recorded)), 3
            ),
            "replays": [score_prior(a, items, p, n) for n in args.named for p in args.prior],
        }
        if args.features:
            report[name]["features"] = answer_features(a, items)
        a.close()
    return emit(report, args.out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="a grounding.py --fit or --dev-js results file")
    p.add_argument("--prior", type=float, nargs="+", default=[0.0])
    p.add_argument("--named", type=float, nargs="+", default=[1.0])
    p.add_argument("--features", action="store_true", help="full-answer signals and their AUROC")
    return run_bench(p, argv, "lp-attribution-", _run)


if __name__ == "__main__":
    raise SystemExit(main())
