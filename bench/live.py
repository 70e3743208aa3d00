"""Live index benchmark: save-to-searchable latency (p50/p95) with the watcher, a branch switch of 1,000+ files
(events handled, index runs, time to consistency), resume after kill -9 vs a cold index, and search throughput
of reader processes while a writer re-indexes.

Corpus: requests 2.34.2 + attrs 26.1.0 + flask 3.1.3 (see _corpus.py) in a fresh git repo.

Usage: .venv/bin/python bench/live.py [--saves 15] [--branch-files 1000] [--workdir DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import build_corpus, git, percentile, run_bench

READER = """
import json, sys, time
from localpilot.service import Assistant
a = Assistant(sys.argv[1])
a.search("warm up", 5)
print("ready", flush=True)
sys.stdin.readline()  # every process loads its models first, then all start together
n, failures, end = 0, 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        a.search("send a request and follow redirects", 10)
        n += 1
    except Exception:
        failures += 1
print(json.dumps({"searches": n, "failures": failures}))
"""


def wait_for(check: Any, timeout: float = 600) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.02)
    raise TimeoutError("never became true")


def save_latency(a: Any, root: Path, files: list[str], saves: int) -> dict[str, float]:
    rng = random.Random(3)
    latencies = []
    for i in range(saves):
        rel = rng.choice(files)
        name = f"zq_live_marker_{i}_{rng.randrange(10**6)}"
        with (root / rel).open("a") as fh:
            fh.write(f"\n\ndef {name}():\n    return {i}\n")
        started = time.monotonic()
        wait_for(lambda n=name, r=rel: any(h.path == r and n in h.snippet for h in a.search(n, 5)))
        latencies.append(time.monotonic() - started)
    return {
        "p50_s": percentile(latencies, 0.5),
        "p95_s": percentile(latencies, 0.95),
        "n": len(latencies),
    }


def branch_switch(a: Any, watcher: Any, root: Path, n_files: int) -> dict[str, Any]:
    """Commit n_files on a side branch, then time `git checkout` onto it (files appear) and back (they vanish)."""
    base = len(a.state.files())
    git(root, "checkout", "-q", "-b", "bench-many")
    for i in range(n_files):
        (root / "many" / f"m{i // 100}").mkdir(parents=True, exist_ok=True)
        (root / "many" / f"m{i // 100}" / f"f{i}.py").write_text(
            f"def generated_{i}(x):\n    return x + {i}\n"
        )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "many")
    wait_for(lambda: len(a.state.files()) == base + n_files)
    git(root, "checkout", "-q", "-")
    wait_for(lambda: len(a.state.files()) == base)
    time.sleep(1)
    out: dict[str, Any] = {"files": n_files}
    for name, branch, expected in (("onto", "bench-many", base + n_files), ("back", "-", base)):
        events, runs = watcher.events, watcher.runs
        started = time.monotonic()
        git(root, "checkout", "-q", branch)
        wait_for(lambda e=expected: len(a.state.files()) == e)
        out[name] = {
            "seconds_to_consistent": time.monotonic() - started,
            "events": watcher.events - events,
            "index_runs": watcher.runs - runs,
        }
        time.sleep(1)
    return out


def resume_after_kill(root: Path, cache: Path) -> dict[str, float]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache / "cold")}
    cmd = [sys.executable, "-m", "localpilot", "index", "-q"]
    started = time.monotonic()
    subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    cold = time.monotonic() - started
    env["XDG_CACHE_HOME"] = str(cache / "killed")
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(cold * 0.6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    started = time.monotonic()
    subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    resume = time.monotonic() - started
    return {
        "cold_s": cold,
        "killed_at_s": cold * 0.6,
        "resume_s": resume,
        "resume_vs_cold": resume / cold,
    }


def readers(root: Path, n: int, seconds: float) -> list[subprocess.Popen[str]]:
    """Start n reader processes, wait until each has loaded its models, then let them all go."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(root), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return procs


def reader_results(procs: list[subprocess.Popen[str]]) -> list[dict[str, int]]:
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def readers_and_writer(root: Path, files: list[str], seconds: float) -> dict[str, Any]:
    """Baseline: one reader alone. Then 3 readers while a writer edits a file and runs `localpilot index`."""
    alone = reader_results(readers(root, 1, seconds))[0]["searches"] / seconds
    three = (
        statistics.mean(r["searches"] for r in reader_results(readers(root, 3, seconds))) / seconds
    )
    procs = readers(root, 3, seconds)
    writer_runs = 0
    end = time.monotonic() + seconds
    rng = random.Random(5)
    while time.monotonic() < end:
        with (root / rng.choice(files)).open("a") as fh:
            fh.write(f"\n# touched {writer_runs}\n")
        subprocess.run(
            [sys.executable, "-m", "localpilot", "index", "-q"], cwd=root, capture_output=True
        )
        writer_runs += 1
    results = reader_results(procs)
    per_reader = statistics.mean(r["searches"] for r in results) / seconds
    return {
        "seconds": seconds,
        "writer_runs": writer_runs,
        "searches_per_s_alone": alone,
        "three_readers_no_writer_per_reader": three,
        "searches_per_s_per_reader": per_reader,
        "total_vs_alone": 3 * per_reader / alone,
        "failed_searches": sum(r["failures"] for r in results),
    }


def run(args: argparse.Namespace, work: Path) -> int:
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    corpus = build_corpus(
        work / "repo", {"requests": "2.34.2", "attrs": "26.1.0", "flask": "3.1.3"}
    )
    root = corpus.root
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    out: dict[str, Any] = {"resume": resume_after_kill(root, work / "resume-cache")}
    a = Assistant(root, load_settings(root))
    a.index()
    watcher = a.watch()
    try:
        out["save_to_searchable"] = save_latency(a, root, corpus.files, args.saves)
        out["branch_switch"] = branch_switch(a, watcher, root, args.branch_files)
        out["watch_mode"] = watcher.mode
    finally:
        watcher.stop()
    out["readers_writer"] = readers_and_writer(root, corpus.files, args.seconds)
    s, b, r, c = (
        out["save_to_searchable"],
        out["branch_switch"],
        out["resume"],
        out["readers_writer"],
    )
    print(
        f"save-to-searchable ({s['n']} saves, {out['watch_mode']}): p50 {s['p50_s']:.2f}s  p95 {s['p95_s']:.2f}s"
    )
    for way in ("onto", "back"):
        w = b[way]
        print(
            f"checkout {way} a branch with {b['files']} more files: {w['events']} events -> {w['index_runs']} index "
            f"runs, consistent after {w['seconds_to_consistent']:.1f}s"
        )
    print(
        f"resume after kill -9 at {r['killed_at_s']:.0f}s: {r['resume_s']:.1f}s vs cold {r['cold_s']:.1f}s "
        f"({r['resume_vs_cold']:.2f}x)"
    )
    print(
        f"3 readers + 1 writer for {c['seconds']:.0f}s: {c['searches_per_s_per_reader']:.1f} searches/s per reader "
        f"(one reader alone: {c['searches_per_s_alone']:.1f}/s; 3 readers, no writer: "
        f"{c['three_readers_no_writer_per_reader']:.1f}/s each; all 3 with the writer "
        f"{c['total_vs_alone']:.2f}x alone), {c['writer_runs']} writer runs, {c['failed_searches']} failed searches"
    )
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saves", type=int, default=15)
    parser.add_argument("--branch-files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    return run_bench(parser, argv, "lp-bench-live-", run)


if __name__ == "__main__":
    sys.exit(main())
