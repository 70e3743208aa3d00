"""A big repository, as a new user meets it: how soon it is searchable, how fast it embeds, what it costs.

Default repository: this venv's installed ``sympy`` (~750k lines of Python in ~1,500 files; not reserved),
copied into a fresh git repo. One process, one run:

1. ``Assistant.index()`` from nothing: seconds until every file is read and recorded (keyword and symbol
   search work from then on: the indexer reports the ``embedding`` stage), chunks recorded, peak RSS then;
2. the embedding stage for ``--embed-seconds``, then stopped as a kill would stop it: chunks embedded per
   second, beside a plain fp32 ``SentenceTransformer.encode`` of the same texts in the same process;
3. searches while most of the repository still waits for vectors (the reranker on): p50/p95 and whether
   the target function (a docstring's first sentence as the query) is found in the top 10;
4. a second ``index()`` for a few seconds: it resumes with the pending chunks only (files re-read: 0).

Usage: .venv/bin/python bench/scale.py [--src DIR] [--embed-seconds 60] [--out bench/results-scale.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.scale")


class _Stop(Exception):
    pass


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_repo(src: Path, dest: Path) -> int:
    """Copy ``src``'s files (no caches) under ``dest/<name>`` and commit; returns the lines copied."""
    target = dest / src.name
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
    lines = sum(p.read_bytes().count(b"\n") for p in target.rglob("*") if p.is_file())
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "import"]):
        subprocess.run(
            ["git", "-c", "user.email=b@x", "-c", "user.name=bench", *args], cwd=dest, check=True
        )
    return lines


def index_until(a: Any, seconds: float) -> dict[str, Any]:
    """Index; note when the embedding stage starts; stop ``seconds`` into it."""
    marks: dict[str, Any] = {}
    started = time.perf_counter()

    def progress(p: Any) -> None:
        now = time.perf_counter() - started
        if p.stage != "embedding":
            return
        if "searchable_s" not in marks:
            marks.update(searchable_s=now, rss_searchable_mb=rss_mb(), pending=p.vectors_total)
        marks["embedded"], marks["embed_s"] = p.vectors_done, now - marks["searchable_s"]
        if marks["embed_s"] >= seconds:
            raise _Stop

    try:
        stats = a.index(progress)
        marks["finished"] = True
        marks["stats"] = stats.summary()
    except _Stop:
        marks["finished"] = False
    marks["wall_s"] = time.perf_counter() - started
    return marks


def raw_encode_rate(a: Any, n: int) -> float:
    """Chunks/s of plain fp32 SentenceTransformer.encode over ``n`` chunk texts localpilot embedded."""
    from sentence_transformers import SentenceTransformer

    ids = sorted(a.store.all_ids())[:n]
    texts = [r.chunk().embed_text() for r in a.state.chunk_rows(ids).values()]
    model = SentenceTransformer(a.embedder.model_dir, device="cpu")
    model.max_seq_length = a.embedder.model.max_seq_length
    model.encode(texts[:8])
    t = time.perf_counter()
    model.encode(texts, batch_size=32, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - t)


def searches(a: Any, n: int = 20) -> dict[str, Any]:
    """Docstring first sentences of functions whose docstrings are in the repo, as queries."""
    import ast

    queries: list[tuple[str, str]] = []
    for path in sorted(a.root.rglob("*.py"))[::7]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            doc = isinstance(node, ast.FunctionDef) and ast.get_docstring(node)
            if doc and len(doc.split(".")[0].split()) >= 5:
                queries.append((doc.split(".")[0], path.relative_to(a.root).as_posix()))
                break
        if len(queries) >= n:
            break
    times, found = [], 0
    for query, path in queries:
        t = time.perf_counter()
        hits = a.search(query, k=10)
        times.append((time.perf_counter() - t) * 1000)
        found += any(h.path == path for h in hits)
    times.sort()
    return {
        "queries": len(queries),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "file_in_top10": found,
    }


def main() -> int:
    import sympy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path(sympy.__file__).parent)
    ap.add_argument("--embed-seconds", type=float, default=60.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    with tempfile.TemporaryDirectory(prefix="lp-scale-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        lines = make_repo(args.src, repo)
        with Assistant(repo, load_settings(repo, cache_dir=Path(tmp) / "cache")) as a:
            t = time.perf_counter()
            a.embedder.embed(["warm up"])
            load_s = time.perf_counter() - t
            first = index_until(a, args.embed_seconds)
            status = a.status()
            report: dict[str, Any] = {
                "repo": f"{args.src.name} ({lines} lines)",
                "machine": platform.machine(),
                "model_load_s": round(load_s, 1),
                "chunks": status["chunks"],
                "files": status["files"],
                **{k: round(v, 1) if isinstance(v, float) else v for k, v in first.items()},
            }
            report["embedded_per_s"] = round(
                first.get("embedded", 0) / max(first["embed_s"], 1e-6), 1
            )
            report["search_while_embedding"] = searches(a)
            report["raw_fp32_encode_per_s"] = round(raw_encode_rate(a, 512), 1)
            resumed = index_until(a, 5.0)
            report["resume"] = {
                "searchable_again_s": round(resumed.get("searchable_s", 0.0), 1),
                "pending_at_resume": resumed.get("pending"),
            }
            report["peak_rss_mb"] = round(rss_mb(), 0)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
