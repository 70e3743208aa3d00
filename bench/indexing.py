"""Indexing speed of localpilot against the bare embedding model, plus incremental re-indexing.

Default repo: the docstring-stripped requests/attrs/flask sdists (see ``_corpus.py``); or ``--repo PATH``
(its git-visible files are copied to a temp repo first, so the edit step never touches it). One process:

1. model load + warm-up, timed on its own (excluded from everything below);
2. cold full index with a fresh cache dir: seconds, chunks embedded, chunks/s, and where the time went;
3. raw baseline: a plain fp32 ``SentenceTransformer(...).encode(texts, batch_size=32)`` of exactly the texts
   localpilot embedded (whatever precision localpilot picked; the cosine agreement is reported too)
   (``Chunk.embed_text()`` of the stored chunks, one per content hash), chunks/s, ratio localpilot/raw;
   steps 2 and 3 alternate ``--repeat`` times (default 3) and the fastest of each is reported, since a
   2-core machine shared with other work makes single timings noisy;
4. warm re-index with nothing changed: seconds, fraction of cold, chunks embedded (must be 0);
5. one line appended inside one function of one file, re-index: seconds, chunks embedded.

Usage: .venv/bin/python bench/indexing.py [--repo PATH] [--out results.json]
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import logging
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import DEFAULT_PACKAGES, build_corpus, functions_of, init_repo, run_bench, span_of

log = logging.getLogger("bench.indexing")

EDIT_LINE = "_localpilot_bench_edit = None  # appended by bench/indexing.py"


# --------------------------------------------------------------------------------------------- repos


def copy_repo(src: Path, dest: Path) -> None:
    """Copy what git shows of ``src`` (tracked + untracked-not-ignored) into a new repo at ``dest``."""
    from localpilot.gitrepo import GitRepo

    dest.mkdir(parents=True)
    for rel in GitRepo(src).ls_files():
        s, d = src / rel, dest / rel
        if not s.is_file() and not s.is_symlink():
            continue  # deleted in the work tree, or a submodule
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_symlink():
            os.symlink(os.readlink(s), d)
        else:
            shutil.copy2(s, d)
    init_repo(dest)


def pick_edit(repo: Path, seed: int) -> tuple[str, str, int, int, str] | None:
    """(path, qualname, start, end, indent) of one function to edit, chosen with ``seed``; None if no Python."""
    from localpilot.gitrepo import GitRepo

    listed = GitRepo(repo).out("ls-files", "-z", "*.py")
    candidates = []
    for raw in sorted(set(listed.split(b"\0")) - {b""}):
        rel = os.fsdecode(raw)
        try:
            tree = ast.parse((repo / rel).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for qual, node in functions_of(tree):
            start, end = span_of(node)
            if end - start >= 4:
                candidates.append((rel, qual, start, end, " " * node.body[-1].col_offset))
    return random.Random(seed).choice(candidates) if candidates else None


def apply_edit(repo: Path, path: str, end: int, indent: str) -> None:
    """Append a statement after line ``end`` at the indentation of the function's last statement."""
    file = repo / path
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.insert(end, f"{indent}{EDIT_LINE}\n")
    file.write_text("".join(lines), encoding="utf-8")


# ------------------------------------------------------------------------------------------- timings


class Timers:
    """Wraps bound methods on instances to add up the seconds spent in them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, obj: Any, method: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(obj, method)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(obj, method, timed)

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def embedded_texts(a: Any) -> list[str]:
    """``Chunk.embed_text()`` of every stored chunk, one per content hash (what the indexer embedded); the
    text comes from SQLite, the store holds ids and vectors only."""
    rows = sorted(
        a.state.chunk_rows(sorted(a.store.all_ids())).values(), key=lambda r: (r.path, r.start_line)
    )
    seen: dict[str, str] = {}
    for row in rows:
        chunk = row.chunk()
        seen.setdefault(chunk.content_hash, chunk.embed_text())
    return list(seen.values())


# ---------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--repo", type=Path, help="index a copy of this git repo instead of the sdist corpus"
    )
    p.add_argument(
        "--packages",
        nargs="+",
        default=[f"{n}=={v}" for n, v in DEFAULT_PACKAGES.items()],
        metavar="NAME==VERSION",
        help="sdists for the default corpus (default: %(default)s)",
    )
    p.add_argument(
        "--batch-size", type=int, default=32, help="raw baseline encode batch size (default 32)"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="cold index + raw encode rounds, best of each reported (default 3)",
    )
    p.add_argument("--seed", type=int, default=0, help="picks the function edited in step 5")
    return run_bench(p, argv, "lp-bench-indexing-", _run)


def _run(args: argparse.Namespace, work: Path) -> int:
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    load_start = os.getloadavg()
    repo = work / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    if args.repo:
        copy_repo(args.repo.resolve(), repo)
        source = str(args.repo.resolve())
    else:
        packages = dict(item.split("==", 1) for item in args.packages)
        build_corpus(repo, packages)
        source = "stripped sdists " + ", ".join(f"{n}=={v}" for n, v in packages.items())
    settings = load_settings(repo, cache_dir=work / "cache-0")
    embedder = Assistant(repo, settings).embedder

    # 1. model load and warm-up (tokenizer and a forward pass), excluded from both sides
    t = time.perf_counter()
    model = embedder.model
    embedder.count_tokens(["def warm_up(x):", "return x"])
    model.encode(
        ["def warm_up(x):\n    return x"] * 4, batch_size=args.batch_size, show_progress_bar=False
    )
    load_s = time.perf_counter() - t
    # The baseline is the plain fp32 SentenceTransformer, whatever precision localpilot picked.
    from sentence_transformers import SentenceTransformer

    raw = SentenceTransformer(embedder.model_dir, device="cpu")
    raw.encode(
        ["def warm_up(x):\n    return x"] * 4, batch_size=args.batch_size, show_progress_bar=False
    )
    timers = Timers()
    timers.wrap(embedder, "embed", "embed (model.encode)")
    timers.wrap(embedder, "count_tokens", "count_tokens (chunking)")

    # 2+3. cold index into a fresh cache dir, then the raw baseline; best of --repeat, alternating
    runs: list[dict[str, Any]] = []
    a: Any = None
    texts: list[str] = []
    for i in range(max(args.repeat, 1)):
        if a is not None:
            a.close()
        cache = work / f"cache-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        a = Assistant(repo, load_settings(repo, cache_dir=cache), embedder=embedder)
        t = time.perf_counter()
        store, state = a.store, a.state  # opening a fresh store/state is timed apart
        open_s = time.perf_counter() - t
        for method in ("upsert", "delete"):
            timers.wrap(store, method, f"store.{method}")
        for method in ("cached_vectors", "cache_vectors", "commit_files"):
            timers.wrap(state, method, f"state.{method}")
        timers.reset()
        t = time.perf_counter()
        cold = a.index()
        cold_wall = time.perf_counter() - t
        breakdown = dict(timers.seconds)
        breakdown["other (walk, hash, tree-sitter, ...)"] = cold.seconds - sum(breakdown.values())
        log.info("cold run %d: %s", i + 1, cold.summary())

        if not texts:
            texts = embedded_texts(a)
            if len(texts) != cold.chunks_embedded:
                log.warning(
                    "collected %d texts but the indexer embedded %d",
                    len(texts),
                    cold.chunks_embedded,
                )
        t = time.perf_counter()
        raw_vectors = raw.encode(
            texts, batch_size=args.batch_size, show_progress_bar=False, normalize_embeddings=True
        )
        raw_s = time.perf_counter() - t
        log.info("raw run %d: %d texts in %.2fs", i + 1, len(texts), raw_s)
        runs.append(
            {
                "stats": cold,
                "wall": cold_wall,
                "open_s": open_s,
                "breakdown": breakdown,
                "raw_s": raw_s,
            }
        )
    best = min(runs, key=lambda r: r["stats"].seconds)
    cold, cold_wall, open_s, breakdown = (
        best["stats"],
        best["wall"],
        best["open_s"],
        best["breakdown"],
    )
    raw_s = min(r["raw_s"] for r in runs)
    tokens = embedder.count_tokens(texts)
    cosines = (embedder.embed(texts) * raw_vectors).sum(axis=1)
    agreement = {
        "precision": embedder.precision,
        "cosine_min": float(cosines.min()),
        "cosine_mean": float(cosines.mean()),
    }
    log.info("localpilot vs raw fp32 vectors: %s", agreement)

    # 4. warm re-index, nothing changed
    timers.reset()
    warm = a.index()
    log.info("warm: %s", warm.summary())
    if warm.chunks_embedded:
        log.error("warm re-index embedded %d chunks; expected 0", warm.chunks_embedded)

    # 5. one function edited
    target = pick_edit(repo, args.seed)
    edit: dict[str, Any] = {"target": None}
    if target:
        path, qual, start, end, indent = target
        apply_edit(repo, path, end, indent)
        timers.reset()
        edited = a.index()
        log.info("edit %s %s: %s", path, qual, edited.summary())
        edit = {
            "target": f"{path}:{start}-{end} {qual}",
            "seconds": edited.seconds,
            "chunks_embedded": edited.chunks_embedded,
            "chunks_written": edited.chunks_written,
            "chunks_reused": edited.chunks_reused,
            "chunks_deleted": edited.chunks_deleted,
            "files_indexed": edited.files_indexed,
            "embed_calls": timers.calls.get("embed (model.encode)", 0),
        }
    a.close()

    lp_rate = cold.chunks_embedded / cold.seconds if cold.seconds else 0.0
    raw_rate = len(texts) / raw_s if raw_s else 0.0
    report = {
        "benchmark": "indexing",
        "repo": source,
        "files_indexed": cold.files_indexed,
        "files_skipped": cold.files_skipped,
        "model_load_s": load_s,
        "store_open_s": open_s,
        "cold": {
            "seconds": cold.seconds,
            "wall_seconds": cold_wall,
            "chunks_written": cold.chunks_written,
            "chunks_embedded": cold.chunks_embedded,
            "chunks_truncated": cold.chunks_truncated,
            "chunks_per_s": lp_rate,
            "breakdown_s": breakdown,
            "runs_s": [r["stats"].seconds for r in runs],
        },
        "agreement": agreement,
        "raw": {
            "seconds": raw_s,
            "texts": len(texts),
            "chunks_per_s": raw_rate,
            "batch_size": args.batch_size,
            "runs_s": [r["raw_s"] for r in runs],
            "tokens_mean": sum(tokens) / max(len(tokens), 1),
            "tokens_max": max(tokens, default=0),
        },
        "ratio_localpilot_over_raw": lp_rate / raw_rate if raw_rate else 0.0,
        "warm": {
            "seconds": warm.seconds,
            "fraction_of_cold": warm.seconds / cold.seconds if cold.seconds else 0.0,
            "chunks_embedded": warm.chunks_embedded,
            "files_unchanged": warm.files_unchanged,
        },
        "edit": edit,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    print_report(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        log.info("wrote %s", args.out)
    return 1 if warm.chunks_embedded else 0


def print_report(r: dict) -> None:
    c, raw, w, e = r["cold"], r["raw"], r["warm"], r["edit"]
    print(
        f"indexing: {r['repo']}; {r['files_indexed']} files indexed ({r['files_skipped']} skipped), "
        f"{c['chunks_written']} chunks, embed texts {raw['tokens_mean']:.0f} tokens mean / {raw['tokens_max']} max"
    )
    print(
        f"model load + warm-up {r['model_load_s']:.1f}s, fresh store open {r['store_open_s']:.2f}s (both excluded)"
    )
    print()
    head = f"{'step':<34} {'seconds':>8} {'embedded':>9} {'chunks/s':>9}  note"
    print(head)
    print("-" * len(head))
    print(
        f"{'cold index (localpilot)':<34} {c['seconds']:>8.2f} {c['chunks_embedded']:>9} {c['chunks_per_s']:>9.1f}  "
        "best of " + ", ".join(f"{x:.2f}" for x in c["runs_s"])
    )
    print(
        f"{'raw model.encode, same texts':<34} {raw['seconds']:>8.2f} {raw['texts']:>9} {raw['chunks_per_s']:>9.1f}  "
        "best of "
        + ", ".join(f"{x:.2f}" for x in raw["runs_s"])
        + f"; batch_size {raw['batch_size']}"
    )
    print(f"{'ratio localpilot / raw':<34} {'':>8} {'':>9} {r['ratio_localpilot_over_raw']:>9.3f}")
    g = r["agreement"]
    print(
        f"localpilot precision {g['precision']}: cosine to raw fp32 vectors min {g['cosine_min']:.4f}, "
        f"mean {g['cosine_mean']:.4f}"
    )
    print(
        f"{'warm re-index (no change)':<34} {w['seconds']:>8.2f} {w['chunks_embedded']:>9} {'':>9}  "
        f"{100 * w['fraction_of_cold']:.1f}% of cold"
    )
    if e.get("target"):
        print(
            f"{'edit 1 function, re-index':<34} {e['seconds']:>8.2f} {e['chunks_embedded']:>9} {'':>9}  "
            f"{e['target']}; {e['chunks_written']} written, {e['chunks_reused']} reused, "
            f"{e['chunks_deleted']} deleted"
        )
    print()
    head = f"{'cold index time breakdown':<38} {'seconds':>8} {'share':>7}"
    print(head)
    print("-" * len(head))
    for label, s in sorted(c["breakdown_s"].items(), key=lambda kv: -kv[1]):
        print(f"{label:<38} {s:>8.2f} {100 * s / c['seconds'] if c['seconds'] else 0:>6.1f}%")


if __name__ == "__main__":
    raise SystemExit(main())
