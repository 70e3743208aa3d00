"""A synthetic repository of ``--chunks`` chunks (default 100k): memory, query latency and re-index at scale.

The repository is generated (Python, Go and TypeScript files of small, distinct functions: no two chunks share a
content hash, so nothing is served from the embedding cache) and committed to a fresh git repo. One process, with
nothing loaded but localpilot, so its resident memory is the indexer's:

1. ``Assistant.index()`` from nothing: seconds until keyword/symbol search works, then resident memory (VmRSS)
   and peak (ru_maxrss) each time the embedded count passes 10%, 25%, 50%, 75% and 100% of the chunks;
2. a warm re-index of the unchanged repository;
3. searches at full size (the reranker on): p50/p95 with the configured precision and, in the same process,
   with ``precision = fp32`` (the path a CPU without AMX or AVX512-BF16 takes);
4. a ``git pull``-sized change: ``--changed`` files edited (one function changed, one added), committed and
   re-indexed.

Query quality is not measured here: the queries are the generated docstrings (see bench/languages.py for that).

Usage: .venv/bin/python bench/scale_synthetic.py [--chunks 100000] [--out bench/results-scale-synthetic.json]
"""

from __future__ import annotations

import argparse
import logging
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import emit

log = logging.getLogger("bench.scale_synthetic")

WORDS = (
    "account address agent alert amount archive asset audit batch bill block bucket budget buffer cache "
    "card cart channel charge check claim client cluster code column comment config contact cookie "
    "count coupon credit cursor customer daily data date deadline debit delivery device digest discount "
    "document domain draft driver email entry event export feature field file filter folder form frame "
    "graph group guest handler header history host image import index invoice issue item job key label "
    "ledger level limit line link list load lock log member message meter metric model module monitor "
    "node note notice order owner package page panel parcel partner path payment period permit plan "
    "policy pool post price profile project quota queue quote range rate receipt record region release "
    "report request reserve resource result review role route rule sample schedule scope score secret "
    "segment sensor session setting shift signal slot snapshot source space stage status stock store "
    "stream subject summary supplier table tag task tax team template tenant ticket timer token topic "
    "total trace track transfer trigger unit upload user value vendor version visit volume voucher "
    "wallet warning window worker zone"
).split()
VERBS = (
    "apply build check collect compute convert count create decode encode expire fetch filter find "
    "format group load merge normalize parse prepare publish read refresh register remove render "
    "resolve retry rotate sanitize save schedule score send split store summarize sync track "
    "update validate verify write"
).split()
LANGUAGES = ("py", "go", "ts")


def _name(rng: random.Random) -> tuple[str, str, str]:
    verb, a, b = rng.choice(VERBS), rng.choice(WORDS), rng.choice(WORDS)
    return verb, a, b


def python_function(rng: random.Random, uid: int) -> str:
    verb, a, b = _name(rng)
    n, m = rng.randint(2, 97), rng.randint(3, 50)
    return (
        f"def {verb}_{a}_{b}_{uid}({a}, {b}=None, limit={n}):\n"
        f'    """{verb.capitalize()} the {a} of each {b} and keep at most {n} of them."""\n'
        f"    result = []\n"
        f"    for item in {a} or ():\n"
        f"        if {b} is not None and item.{b}_id != {b}.id:\n"
        f"            continue\n"
        f"        value = item.{rng.choice(WORDS)} * {m} + len(result)\n"
        f"        if value > limit:\n"
        f"            break\n"
        f"        result.append((item.{rng.choice(WORDS)}, value))\n"
        f"    return result\n"
    )


def go_function(rng: random.Random, uid: int) -> str:
    verb, a, b = _name(rng)
    n = rng.randint(2, 97)
    name = f"{verb.capitalize()}{a.capitalize()}{b.capitalize()}{uid}"
    return (
        f"// {name} will {verb} the {a} of each {b}, at most {n} of them.\n"
        f"func {name}(items []{a.capitalize()}, {b} string) ([]string, error) {{\n"
        f"\tout := make([]string, 0, {n})\n"
        f"\tfor _, it := range items {{\n"
        f"\t\tif it.{b.capitalize()} != {b} {{\n"
        f"\t\t\tcontinue\n"
        f"\t\t}}\n"
        f"\t\tif len(out) >= {n} {{\n"
        f'\t\t\treturn out, fmt.Errorf("too many {a}s")\n'
        f"\t\t}}\n"
        f"\t\tout = append(out, it.{rng.choice(WORDS).capitalize()})\n"
        f"\t}}\n"
        f"\treturn out, nil\n"
        f"}}\n"
    )


def ts_function(rng: random.Random, uid: int) -> str:
    verb, a, b = _name(rng)
    n = rng.randint(2, 97)
    name = f"{verb}{a.capitalize()}{b.capitalize()}{uid}"
    return (
        f"/** {verb.capitalize()} the {a} of every {b}; no more than {n}. */\n"
        f"export function {name}({a}s: {a.capitalize()}[], {b}: string): string[] {{\n"
        f"  const out: string[] = [];\n"
        f"  for (const it of {a}s) {{\n"
        f"    if (it.{b} !== {b}) continue;\n"
        f"    if (out.length >= {n}) throw new Error('too many {a}s');\n"
        f"    out.push(String(it.{rng.choice(WORDS)}));\n"
        f"  }}\n"
        f"  return out;\n"
        f"}}\n"
    )


WRITERS = {"py": python_function, "go": go_function, "ts": ts_function}
HEADERS = {"py": "", "go": 'package {pkg}\n\nimport "fmt"\n\n', "ts": ""}


def file_text(lang: str, pkg: str, functions: list[str]) -> str:
    return HEADERS[lang].format(pkg=pkg) + "\n\n".join(functions)


def generate(root: Path, chunks: int, per_file: int, seed: int) -> list[Path]:
    """Write ``chunks`` functions in files of ``per_file`` under ``root``; returns the files."""
    rng = random.Random(seed)
    files = []
    for f in range((chunks + per_file - 1) // per_file):
        lang = LANGUAGES[f % len(LANGUAGES)]
        pkg = f"pkg{f // 50:03d}"
        path = root / pkg / f"{rng.choice(WORDS)}_{f:05d}.{lang}"
        count = min(per_file, chunks - f * per_file)
        body = [WRITERS[lang](rng, f * per_file + i) for i in range(count)]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file_text(lang, pkg, body))
        files.append(path)
    return files


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=b@x", "-c", "user.name=bench", *args], cwd=root, check=True
    )


def rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cold_index(a: Any, total: int) -> dict[str, Any]:
    """Index from nothing, recording memory at fractions of the embedded chunks."""
    marks: dict[str, Any] = {"memory": []}
    fractions = [0.1, 0.25, 0.5, 0.75]
    started = time.perf_counter()

    def progress(p: Any) -> None:
        now = time.perf_counter() - started
        if p.stage != "embedding":
            return
        if "searchable_s" not in marks:
            marks.update(searchable_s=round(now, 1), rss_searchable_mb=round(rss_now_mb()))
        while fractions and p.vectors_done >= fractions[0] * total:
            fractions.pop(0)
            marks["memory"].append(memory_row(p.vectors_done, now))

    stats = a.index(progress)
    wall = time.perf_counter() - started
    marks["memory"].append(memory_row(a.status()["chunks"], wall))
    marks["wall_s"] = round(wall, 1)
    marks["embed_s"] = round(wall - marks.get("searchable_s", 0.0), 1)
    marks["embedded_per_s"] = round(stats.chunks_embedded / max(marks["embed_s"], 1e-6), 1)
    marks["stats"] = stats.summary()
    return marks


def memory_row(embedded: int, seconds: float) -> dict[str, float]:
    return {
        "embedded": embedded,
        "at_s": round(seconds, 1),
        "rss_mb": round(rss_now_mb()),
        "peak_mb": round(peak_mb()),
    }


def queries(root: Path, n: int, seed: int) -> list[str]:
    """Docstrings / doc comments of functions spread over the repository."""
    rng = random.Random(seed)
    files = sorted(root.rglob("*.py"))
    out = []
    for path in rng.sample(files, min(n, len(files))):
        docs = [ln.strip().strip('"') for ln in path.read_text().splitlines() if '"""' in ln]
        out.append(rng.choice(docs))
    return out


def search_latency(a: Any, texts: list[str]) -> dict[str, float]:
    a.search(texts[0], k=10)  # loads the reranker
    times = []
    for text in texts:
        t = time.perf_counter()
        a.search(text, k=10)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "queries": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
    }


def change_files(files: list[Path], n: int, seed: int) -> int:
    """Edit ``n`` files as a pull would: one function's body changed and one function added in each."""
    rng = random.Random(seed)
    picked = rng.sample(files, min(n, len(files)))
    for i, path in enumerate(picked):
        lang = path.suffix[1:]
        text = path.read_text().replace("limit", "cap", 1) if lang == "py" else path.read_text()
        text = text.replace("return out", "return out[:]", 1)
        path.write_text(text + "\n\n" + WRITERS[lang](rng, 10_000_000 + i))
    return len(picked)


def timed_index(a: Any) -> dict[str, Any]:
    t = time.perf_counter()
    stats = a.index()
    return {"seconds": round(time.perf_counter() - t, 2), "stats": stats.summary()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--per-file", type=int, default=40)
    ap.add_argument("--changed", type=int, default=200)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    report: dict[str, Any] = {"machine": platform.machine(), "args": vars(args) | {"out": None}}
    with tempfile.TemporaryDirectory(prefix="lp-synth-") as tmp:
        repo, cache = Path(tmp) / "repo", Path(tmp) / "cache"
        repo.mkdir()
        files = generate(repo, args.chunks, args.per_file, args.seed)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "generated")
        report["files"] = len(files)
        report["lines"] = sum(p.read_text().count("\n") for p in files)
        report["rss_before_mb"] = round(rss_now_mb())
        with Assistant(repo, load_settings(repo, cache_dir=cache)) as a:
            report["cold"] = cold_index(a, args.chunks)
            report["chunks"] = a.status()["chunks"]
            report["warm_reindex"] = timed_index(a)
            texts = queries(repo, args.queries, args.seed)
            report["search"] = {a.settings.precision: search_latency(a, texts)}
            report["change"] = {"files": change_files(files, args.changed, args.seed)}
            git(repo, "commit", "-q", "-am", "a pull")
            report["change"] |= timed_index(a)
        with Assistant(repo, load_settings(repo, cache_dir=cache, precision="fp32")) as a:
            report["search"]["fp32"] = search_latency(a, texts)
        report["peak_rss_mb"] = round(peak_mb())
    return emit(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
