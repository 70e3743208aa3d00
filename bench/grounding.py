"""Answers judged, not routes: do they cite a line range inside the code that answers the question?

Repositories, each a new git repo of the real source as it ships, indexed by the real ``Assistant`` (default
embedder, reranker, Chroma, SQLite) and answered by the default small model through ``Assistant.ask``:

* dev, for fitting ``models/confidence.toml`` only (``--fit``): requests (the hand-written questions of
  ``data/grounding_requests.toml``) and the unanswerable questions of ``data/unanswerable.toml`` [dev];
* evaluation, never fitted or tuned on: python-dateutil (PyPI), ws (npm, JSDoc) and google/uuid (Debian's
  golang-github-google-uuid-dev), 40 questions each, written automatically from documented functions (the
  first sentence of the doc comment, Go's leading name dropped, as "What in this repository does this, and
  how? <sentence>"), the function's lines recorded as the target; plus each repository's unanswerable
  questions. None is in ``../shared/reserved-packages.txt``.

Scored per answer: the target among the prompt's snippets; a citation inside the target (overlapping it, at
least half of its lines within it); the target's name in the answer; every citation inside a shown snippet;
unanswerable questions answered "not found". Beside it, in the same run, the same answers scored with the
citations the model wrote or named only (what localpilot cited before attribution). The confidence estimate's
AUROC (correct vs incorrect small answers) on the evaluation questions; attribution's added time.

Usage: .venv/bin/python bench/grounding.py [--fit] [--per-repo 40] [--workdir DIR] [--out F]
"""

from __future__ import annotations

import argparse
import ast
import logging
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _asking import load_toml, source_repo
from _corpus import CACHE, emit, init_repo, percentile, run_bench
from completion import go_repo, python_repo

log = logging.getLogger("bench.grounding")
ROOT = Path(__file__).resolve().parent.parent
ANSWER_TOKENS = (
    160  # "a few sentences"; the default 512 would triple the run for the same first sentences
)
MIN_WORDS = 5


@dataclass(frozen=True)
class Question:
    q: str
    path: str = ""  # empty: nothing in the repository answers it
    symbol: str = ""
    start_line: int = 0
    end_line: int = 0


# ------------------------------------------------------------------------------------------ questions


def ask_for(sentence: str) -> str:
    return f"What in this repository does this, and how? {sentence}"


def python_questions(root: Path) -> list[Question]:
    from _corpus import first_sentence, functions_of, span_of

    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if "test" in rel:
            continue
        for qual, node in functions_of(ast.parse(p.read_text(encoding="utf-8"))):
            doc = ast.get_docstring(node, clean=False)
            sentence = first_sentence(doc) if doc else ""
            if len(sentence.split()) >= MIN_WORDS and not node.name.startswith("__"):
                out.append(Question(ask_for(sentence), rel, qual, *span_of(node)))
    return out


JS_DEF = re.compile(
    r"^\s*(?:static\s+)?(?:async\s+)?(?:function\s+(\w+)|(?:get\s+|set\s+)?(\w+))\s*\([^;]*$"
)
GO_DEF = re.compile(r"^func\s+(?:\([^)]*\)\s*)?(\w+)\s*[\[(]")
KEYWORDS = {"if", "for", "while", "switch", "catch", "return", "function", "constructor"}


def brace_end(lines: Sequence[str], start: int) -> int:
    """0-based line where the block opened on or after ``start`` closes (strings and comments ignored)."""
    depth, opened = 0, False
    for i in range(start, len(lines)):
        code = re.sub(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|`[^`]*`|//.*", "", lines[i])
        depth += code.count("{") - code.count("}")
        opened = opened or "{" in code
        if opened and depth <= 0:
            return i
    return start


def jsdoc_sentence(block: Sequence[str]) -> str:
    text = []
    for line in block:
        line = line.strip().removeprefix("/**").removesuffix("*/").lstrip("*").strip()
        if line.startswith("@"):
            break
        text.append(line)
    para = " ".join(" ".join(text).split())
    m = re.match(r"(.+?[.!?])(?=\s|$)", para)
    return (m.group(1) if m else para).strip()


def go_sentence(block: Sequence[str], name: str) -> str:
    para = " ".join(" ".join(line.strip().removeprefix("//").strip() for line in block).split())
    m = re.match(r"(.+?[.!?])(?=\s|$)", para)
    sentence = (m.group(1) if m else para).strip()
    words = sentence.split(" ", 1)
    if words[0] == name and len(words) > 1:  # "NewRandom returns ..." would give the name away
        sentence = words[1][:1].upper() + words[1][1:]
    return sentence


def brace_questions(root: Path, suffix: str) -> list[Question]:
    out = []
    for p in sorted(root.rglob(f"*{suffix}")):
        rel = p.relative_to(root).as_posix()
        if "test" in rel or "example" in rel or "bench" in rel:
            continue
        lines = p.read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines):
            m = (GO_DEF if suffix == ".go" else JS_DEF).match(line)
            name = m and next((g for g in m.groups() if g), "")
            if not name or name in KEYWORDS or not line.rstrip().endswith("{"):
                continue
            block = _comment_above(lines, i, suffix)
            sentence = go_sentence(block, name) if suffix == ".go" else jsdoc_sentence(block)
            if len(sentence.split()) >= MIN_WORDS:
                out.append(Question(ask_for(sentence), rel, name, i + 1, brace_end(lines, i) + 1))
    return out


def _comment_above(lines: Sequence[str], i: int, suffix: str) -> list[str]:
    j = i - 1
    if suffix == ".go":
        while j >= 0 and lines[j].startswith("//"):
            j -= 1
        return list(lines[j + 1 : i])
    while (
        j >= 0 and not lines[j].strip()
    ):  # koa leaves a blank line between a JSDoc block and its function
        j -= 1
    if j < 0 or not lines[j].strip().endswith("*/"):
        return []
    while j >= 0 and "/**" not in lines[j]:
        j -= 1
    return list(lines[j:i]) if j >= 0 else []


def js_repo(dest: Path, package: str = "ws", version: str = "8.18.3") -> Path:
    import subprocess
    import tarfile

    tgz = CACHE / f"{package}-{version}.tgz"
    if not tgz.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", f"{package}@{version}"], cwd=CACHE, check=True, capture_output=True
        )
    with tarfile.open(tgz) as tf:
        for member in tf.getmembers():
            if member.isfile() and member.name.endswith(".js"):
                out = dest / member.name.removeprefix("package/")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(tf.extractfile(member).read())  # type: ignore[union-attr]
    return dest


def unanswerable(repo: str) -> list[Question]:
    return [Question(q) for q in load_toml("unanswerable.toml")[repo]]


def eval_sets(work: Path, per_repo: int) -> dict[str, tuple[Path, list[Question]]]:
    rng = random.Random(16)
    sets = {}
    for name, build, finder in (
        ("python-dateutil", python_repo, python_questions),
        ("ws", js_repo, lambda r: brace_questions(r, ".js")),
        ("google-uuid", go_repo, lambda r: brace_questions(r, ".go")),
    ):
        root = work / name
        if not (root / ".git").is_dir():
            build(root)
            init_repo(root)
        found = finder(root)
        chosen = rng.sample(found, min(per_repo, len(found)))
        log.info("%s: %d documented functions, %d questions", name, len(found), len(chosen))
        sets[name] = (root, chosen + unanswerable(name))
    return sets


def dev_js_set(work: Path) -> tuple[Path, list[Question]]:
    """koa: 30 questions written the evaluation sets' way from its JSDoc (a JavaScript dev set)."""
    root = work / "koa"
    if not (root / ".git").is_dir():
        js_repo(root, "koa", "2.16.1")
        init_repo(root)
    found = brace_questions(root, ".js")
    return root, random.Random(16).sample(found, min(30, len(found)))


def dev_set(work: Path, n_auto: int = 30) -> tuple[Path, list[Question]]:
    """requests: the hand-written questions, as many written the evaluation sets' way from other documented
    functions (the harder kind, so that the fit sees wrong answers too), and the unanswerable ones."""
    meta = load_toml("grounding_requests.toml")
    root = work / "requests"
    targets = source_repo(root, meta["package"], meta["version"])
    out = []
    for item in meta["question"]:
        t = targets[(item["path"], item["function"])]
        out.append(Question(item["q"], t.path, t.qualname, t.start_line, t.end_line))
    taken = {(q.path, q.symbol) for q in out}
    auto = [q for q in python_questions(root) if (q.path, q.symbol) not in taken]
    out += random.Random(16).sample(auto, min(n_auto, len(auto)))
    return root, out + unanswerable("requests")


# ---------------------------------------------------------------------------------------------- scoring


def inside(c: Any, q: Question) -> bool:
    if c.path != q.path:
        return False
    overlap = min(c.end_line, q.end_line) - max(c.start_line, q.start_line) + 1
    return overlap > 0 and overlap * 2 >= c.end_line - c.start_line + 1


def in_prompt(q: Question, hits: Sequence[Any]) -> bool:
    """Some shown snippet overlaps the target."""
    return any(
        h.path == q.path and h.start_line <= q.end_line and h.end_line >= q.start_line for h in hits
    )


def shown(c: Any, hits: Sequence[Any]) -> bool:
    return any(
        h.path == c.path and h.start_line <= c.start_line and c.end_line <= h.end_line for h in hits
    )


def score(q: Question, answer: Any) -> dict[str, Any]:
    not_found = answer.expert == "search" and answer.reason.startswith("not found")
    row: dict[str, Any] = {
        "question": q.q,
        "target": f"{q.path}:{q.start_line}-{q.end_line} {q.symbol}" if q.path else "",
        "expert": answer.expert,
        "not_found": not_found,
        "signals": answer.signals,
        "answer": answer.text,
        "attribute_ms": answer.timings.get("attribute_ms"),
        "citations": [f"{c.path}:{c.start_line}-{c.end_line} ({c.how})" for c in answer.citations],
    }
    if not q.path:
        return row
    name = q.symbol.rsplit(".", 1)[-1]
    legacy = [c for c in answer.citations if c.how != "attributed"]
    row |= {
        "in_prompt": in_prompt(q, answer.hits),
        "cites_inside": any(inside(c, q) for c in answer.citations),
        "legacy_cites_inside": any(inside(c, q) for c in legacy),
        "names_target": bool(re.search(rf"\b{re.escape(name)}\b", answer.text)),
        "citations_shown": [shown(c, answer.hits) for c in answer.citations],
    }
    row["correct"] = row["cites_inside"] or row["names_target"]
    return row


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    real = [r for r in rows if r["target"]]
    missing = [r for r in rows if not r["target"]]
    given = [r for r in real if r["in_prompt"] and not r["not_found"]]
    cites = [ok for r in real for ok in r["citations_shown"]]
    ms = [r["attribute_ms"] for r in rows if r["attribute_ms"] is not None]

    def share(items: Sequence[dict[str, Any]], key: str) -> float:
        return round(sum(bool(r[key]) for r in items) / max(1, len(items)), 3)

    return {
        "questions": len(real),
        "unanswerable": len(missing),
        "in_prompt": share(real, "in_prompt"),
        "cites_inside_given_in_prompt": share(given, "cites_inside"),
        "legacy_cites_inside_given_in_prompt": share(given, "legacy_cites_inside"),
        "cites_inside": share(real, "cites_inside"),
        "names_target": share(real, "names_target"),
        "citations_inside_shown": round(sum(cites) / max(1, len(cites)), 3),
        "wrongly_not_found": share(real, "not_found"),
        "unanswerable_not_found": share(missing, "not_found"),
        "attribute_ms": {"p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95)} if ms else {},
    }


def auroc(rows: Sequence[dict[str, Any]], model: Any) -> float | None:
    from sklearn.metrics import roc_auc_score

    scored = [
        (model.probability(r["signals"]), r["correct"])
        for r in rows
        if r["target"] and not r["not_found"] and "mean_logprob" in r["signals"]
    ]
    labels = {y for _, y in scored}
    return (
        round(float(roc_auc_score([y for _, y in scored], [p for p, _ in scored])), 3)
        if len(labels) == 2
        else None
    )


# ----------------------------------------------------------------------------------------------- fitting

ANSWERABLE = ("rerank_best", "rerank_margin", "vector_best", "term_coverage")
CORRECT = ("rerank_best", "rerank_margin", "vector_best", "mean_logprob", "draft_support")


def fit(
    rows: Sequence[dict[str, Any]], features: Sequence[str], label: str, reject_share: float | None
) -> Any:
    """A logistic regression on standardised features (classes balanced), folded back to raw-feature weights.
    Its threshold is 0.5, or with ``reject_share`` the one that rejects every negative of the dev set as long
    as that rejects at most that share of the positives."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from localpilot.confidence import Logistic

    x = np.array([[float(r["signals"].get(f, 0.0)) for f in features] for r in rows])
    y = np.array([bool(r[label]) for r in rows])
    mean, std = x.mean(0), x.std(0) + 1e-9
    lr = LogisticRegression(C=1.0, class_weight="balanced").fit((x - mean) / std, y)
    weights = lr.coef_[0] / std
    bias = float(lr.intercept_[0] - (lr.coef_[0] * mean / std).sum())
    model = Logistic(tuple(features), tuple(float(w) for w in weights), bias, 0.5)
    p = np.array([model.probability(dict(zip(features, row, strict=True))) for row in x])
    negatives, positives = np.sort(p[~y]), np.sort(p[y])
    if reject_share is not None and len(negatives) and len(positives):
        cap = float(
            np.quantile(positives, reject_share)
        )  # at most this share of positives falls below
        threshold = min(float(negatives[-1]) + 1e-6, cap)
        model = Logistic(model.features, model.weights, model.bias, round(max(threshold, 1e-4), 6))
    return model


def run_set(
    a: Any, questions: Sequence[Question], expert: str | None = None
) -> list[dict[str, Any]]:
    rows = []
    for i, q in enumerate(questions):
        started = time.perf_counter()
        answer = next(e.answer for e in a.ask(q.q, expert=expert) if e.kind == "done")
        rows.append(
            score(q, answer)
            | {
                "wall_s": round(time.perf_counter() - started, 2),
                "ttft_s": answer.timings.get("ttft_ms", 0.0) / 1000,
            }
        )
        r = rows[-1]
        log.info(
            "%s %d/%d %s %s",
            expert or "routed",
            i + 1,
            len(questions),
            r["target"] or "(unanswerable)",
            "not found" if r["not_found"] else ("cited inside" if r.get("cites_inside") else "-"),
        )
    return rows


def routed(
    router: Any, small: Sequence[dict[str, Any]], big: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """What ``ask`` with routing does on the questions the big model also answered, decided from the signals
    the small run recorded (the same deterministic decisions: greedy decoding, same prompt, same retrieval):
    not found (no LLM), the small answer, or the big one after the small model's probe."""
    picked, wall = [], 0.0
    for s, b in zip(small, big, strict=False):
        if router.not_found(s["signals"]) is not None:
            picked.append(False)
            wall += s["wall_s"] - s["ttft_s"]  # no LLM: about the small run's time less its prompt
        elif (route := router.judge_draft(s["signals"])) is not None and route.expert == "big":
            picked.append(b["correct"])
            wall += s["ttft_s"] + b["wall_s"]
        else:
            picked.append(s["correct"])
            wall += s["wall_s"]
    n = max(1, len(picked))
    return {
        "questions": len(picked),
        "correct": round(sum(picked) / n, 3),
        "wall_s": round(wall, 1),
        "escalated": sum(
            1
            for s in small[: len(big)]
            if (r := router.judge_draft(s["signals"])) is not None and r.expert == "big"
        ),
    }


def accuracy(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "questions": len(rows),
        "correct": round(sum(r["correct"] for r in rows) / max(1, len(rows)), 3),
        "wall_s": round(sum(r["wall_s"] for r in rows), 1),
    }


def assistant(root: Path, work: Path, embedder: Any = None, small: Any = None) -> Any:
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    settings = load_settings(root, cache_dir=work / "cache", answer_tokens=ANSWER_TOKENS)
    generators = {"small": small} if small is not None else None
    a = Assistant(root, settings, embedder=embedder, generators=generators)
    log.info("%s: %s", root.name, a.index().summary())
    return a


def _run(args: argparse.Namespace, work: Path) -> int:
    from localpilot.confidence import Confidence

    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": "grounding", "answer_tokens": ANSWER_TOKENS}
    if (
        args.dev_js
    ):  # a JavaScript dev set (koa): looked at to improve attribution, never the evaluation repos
        root, questions = dev_js_set(work)
        a = assistant(root, work)
        rows = run_set(a, questions, "small")
        report["dev_js"] = {"summary": summarize(rows), "rows": rows}
        a.close()
    elif args.fit_answer:
        report |= fit_answer(work)
    elif args.gate or args.fit_gate:
        report |= gate(work, args.per_repo, args.fit_gate)
    elif args.fit:
        root, questions = dev_set(work)
        a = assistant(root, work)
        a.router.confidence = Confidence(
            None, None
        )  # fit on what the experts say without any estimate
        rows = run_set(
            a, [q for q in questions if q.path], "small"
        )  # the small model's answers, labelled
        rows += run_set(
            a, [q for q in questions if not q.path], "search"
        )  # retrieval's signals suffice
        answered = [r for r in rows if r["target"]]
        for r in rows:
            r["answerable"] = bool(r["target"])
        answerable = fit(rows, ANSWERABLE, "answerable", 0.1)
        correct = fit(answered, CORRECT, "correct", None)
        (ROOT / "models" / "confidence.toml").write_text(
            "# Fitted by bench/grounding.py --fit on the dev questions (requests; never the evaluation repos).\n"
            + answerable.to_toml("answerable")
            + "\n"
            + correct.to_toml("correct")
        )
        report["dev"] = {
            "summary": summarize(rows),
            "rows": rows,
            "answerable": answerable.__dict__,
            "correct": correct.__dict__,
        }
        a.close()
    else:
        report |= evaluate(work, args.per_repo, args.big)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return emit(report, args.out)


def gate(work: Path, per_repo: int, write: bool) -> dict[str, Any]:
    """The not-found gate alone, from retrieval's signals (no LLM runs): fitted on the dev set, then judged
    on the held-out sets: unanswerable questions answered "not found", answerable ones wrongly so. With
    ``write`` the fitted gate replaces ``[answerable]`` in models/confidence.toml (the rest is kept)."""
    from localpilot.confidence import Confidence

    root, questions = dev_set(work)
    a = assistant(root, work)
    a.router.confidence = Confidence(None, None)  # signals without any estimate
    rows = run_set(a, questions, "search")
    embedder = a.embedder
    a.close()
    for r in rows:
        r["answerable"] = bool(r["target"])
    model = fit(rows, ANSWERABLE, "answerable", 0.1)
    shipped = Confidence.load().answerable  # the baseline, scored on the same signals
    report: dict[str, Any] = {
        "dev": {"fitted": gate_scores(rows, questions, model)},
        "answerable": model.__dict__,
    }
    report["dev"]["shipped"] = gate_scores(rows, questions, shipped)
    for name, (root, questions) in eval_sets(work, per_repo).items():
        a = assistant(root, work, embedder)
        rows = run_set(a, questions, "search")
        report[name] = {
            "fitted": gate_scores(rows, questions, model),
            "shipped": gate_scores(rows, questions, shipped),
        }
        log.info("%s: %s", name, report[name])
        a.close()
    if write:
        write_answerable(model)
    return report


def gate_scores(rows: Sequence[dict[str, Any]], questions: Sequence[Question], model: Any) -> dict:
    from localpilot.confidence import Confidence
    from localpilot.router import Router

    router = Router(confidence=Confidence(model, None))
    said = [
        router.not_found(r["signals"], q.q) is not None
        for r, q in zip(rows, questions, strict=True)
    ]
    missing = [n for n, q in zip(said, questions, strict=True) if not q.path]
    real = [n for n, q in zip(said, questions, strict=True) if q.path]
    return {
        "unanswerable_not_found": f"{sum(missing)} / {len(missing)}",
        "wrongly_not_found": f"{sum(real)} / {len(real)}",
        "missed": [q.q for n, q in zip(said, questions, strict=True) if not q.path and not n],
    }


ANSWER = ("names_top", "top_share", "rerank_margin")


def fit_answer(work: Path) -> dict[str, Any]:
    """The whole-answer check, fitted on the dev sets' small answers (requests, koa; never the evaluation
    repos): does the answer name the target, from signals that need no target (it names the reranker's best
    hit, attribution's share of claims there, the reranker's margin). Written to ``[answer]``; then the big
    model answers the dev questions the check rejects, beside the small answers (does escalating help?)."""
    from localpilot.confidence import Confidence

    report: dict[str, Any] = {}
    rows, sets = [], []
    for root, questions in (dev_set(work), dev_js_set(work)):
        a = assistant(root, work)
        a.router.confidence = Confidence(None, None)
        answerable = [q for q in questions if q.path]
        got = run_set(a, answerable, "small")
        rows += got
        sets.append((a, answerable, got))
    model = fit([r for r in rows if not r["not_found"]], ANSWER, "names_target", None)
    write_section("answer", model)
    report["answer"] = model.__dict__
    for (a, answerable, small), name in zip(sets, ("requests", "koa"), strict=True):
        report[name] = escalation(a, model, answerable, small)
        a.close()
    return report


def escalation(
    a: Any,
    model: Any,
    questions: Sequence[Question],
    small: Sequence[dict[str, Any]],
    big_all: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Small answers, the ones the whole-answer check rejects answered again by the big model, and the
    routed result (small where accepted, big where rejected) on the same questions."""
    from localpilot.confidence import Confidence
    from localpilot.router import Router

    router = Router(confidence=Confidence(None, None, model), big_available=True)
    rejected = [i for i, r in enumerate(small) if router.judge_answer(r["signals"]) is not None]
    if len(big_all) == len(
        small
    ):  # every question was answered by the big model too: the same answers
        big = [big_all[i] for i in rejected]
    else:
        big = run_set(a, [questions[i] for i in rejected], "big") if a.parts.has_big() else []
    by_index = dict(zip(rejected, big, strict=False))
    routed = [by_index.get(i, r) for i, r in enumerate(small)]
    labels = [r["names_target"] for r in small if not r["not_found"]]
    p = [model.probability(r["signals"]) for r in small if not r["not_found"]]
    return {
        "auroc_names_target": _auroc(labels, p),
        "escalated": len(rejected),
        "small": _judged(small),
        "big_on_escalated": _judged(big),
        "small_on_escalated": _judged([small[i] for i in rejected]),
        "routed": _judged(routed)
        | {"wall_s": round(sum(r["wall_s"] for r in small) + sum(r["wall_s"] for r in big), 1)},
        "big_rows": big,
    } | ({"always_big": _judged(big_all)} if len(big_all) == len(small) else {})


def _judged(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = max(1, len(rows))
    return {
        "questions": len(rows),
        "names_target": round(sum(bool(r["names_target"]) for r in rows) / n, 3),
        "cites_inside": round(sum(bool(r["cites_inside"]) for r in rows) / n, 3),
        "correct": round(sum(bool(r["correct"]) for r in rows) / n, 3),
        "wall_s": round(sum(r["wall_s"] for r in rows), 1),
    }


def _auroc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, scores)), 3) if len(set(labels)) == 2 else None


def write_section(name: str, model: Any) -> None:
    """``[name]`` of models/confidence.toml replaced by ``model`` (added when absent; comments kept)."""
    import tomlkit

    path = ROOT / "models" / "confidence.toml"
    doc = tomlkit.parse(path.read_text())
    fitted = tomlkit.parse(model.to_toml(name))[name]
    if name not in doc:
        doc[name] = fitted
    else:
        for key, value in fitted.items():
            doc[name][key] = value  # type: ignore[index]
    path.write_text(tomlkit.dumps(doc))


def write_answerable(model: Any) -> None:
    write_section("answerable", model)


def evaluate(work: Path, per_repo: int, n_big: int) -> dict[str, Any]:
    from localpilot.confidence import Confidence, logistic_from
    from localpilot.resources import read_toml

    confidence = Confidence.load()
    if confidence.correct is None:  # not shipped: measure the candidate the fit wrote
        candidate = logistic_from(
            read_toml(ROOT / "models" / "confidence.toml").get("correct_candidate")
        )
        confidence = Confidence(confidence.answerable, candidate, confidence.answer)
    report: dict[str, Any] = {}
    embedder = small = None
    everything: list[dict[str, Any]] = []
    for name, (root, questions) in eval_sets(work, per_repo).items():
        a = assistant(root, work, embedder, small)
        embedder, small = a.embedder, a.generator("small")
        answerable = [q for q in questions if q.path]
        rows = run_set(a, answerable, "small") + run_set(a, [q for q in questions if not q.path])
        for r in rows:  # what routing would have said for the answerable ones
            r["not_found"] = r["not_found"] or (
                bool(r["target"]) and a.router.not_found(r["signals"]) is not None
            )
        part: dict[str, Any] = {
            "summary": summarize(rows),
            "rows": rows,
            "auroc_correct": auroc(rows, confidence.correct) if confidence.correct else None,
        }
        big: list[dict[str, Any]] = []
        if n_big and a.parts.has_big():
            big = run_set(a, answerable[:n_big], "big")
        if confidence.answer is not None:
            small_rows = [r for r in rows if r["target"]]
            part["answer_check"] = escalation(a, confidence.answer, answerable, small_rows, big)
        if big:
            small_part = [r for r in rows if r["target"]][:n_big]
            part["small_big_routed"] = {
                "small": accuracy(small_part),
                "big": accuracy(big),
                "routed": routed(a.router, small_part, big),
                "big_rows": big,
            }
        report[name] = part
        everything += rows
        log.info("%s: %s", name, part["summary"])
        a.close()
    report["overall"] = {
        "summary": summarize(everything),
        "auroc_correct": auroc(everything, confidence.correct) if confidence.correct else None,
    }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--fit", action="store_true", help="answer the dev set and write models/confidence.toml"
    )
    p.add_argument(
        "--dev-js", action="store_true", help="answer 30 questions of koa (a JavaScript dev set)"
    )
    p.add_argument(
        "--gate",
        action="store_true",
        help="the not-found gate alone (no LLM): fit on dev, judge held out",
    )
    p.add_argument(
        "--fit-gate", action="store_true", help="--gate, and write [answerable] to confidence.toml"
    )
    p.add_argument(
        "--fit-answer",
        action="store_true",
        help="fit the whole-answer check on the dev sets, write [answer], and try the big model where it says no",
    )
    p.add_argument("--per-repo", type=int, default=40)
    p.add_argument(
        "--big", type=int, default=12, help="questions per repo also answered by the big model"
    )
    return run_bench(p, argv, "lp-grounding-", _run)


if __name__ == "__main__":
    raise SystemExit(main())
