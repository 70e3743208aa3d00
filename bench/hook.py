"""Wall time of `git commit` with the pre-commit hook on a typical commit (a few files), with and without the
model step, against the same commit with no hook, in the same run.

Corpus: localpilot's own tree at HEAD (``git archive``) in a tmp repo. The commit changes two source files (a new
untested public function in ``localpilot/text.py``, an edit to the tested ``query_terms`` there and to
``head_commit`` in ``localpilot/index/walker.py``) and adds a test to ``tests/test_chunker.py``; each run resets
to the base commit first. Two of the changed functions have no tests, so the model step writes two skeletons with
the default code LLM; its first run (with the one-time model file check) is reported apart.

Usage: .venv/bin/python bench/hook.py [--runs 5] [--llm-runs 3] [--index] [--llm NAME] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NEW_FUNCTION = '''

def is_identifier(text: str, allow_dots: bool = False) -> bool:
    """Whether ``text`` is one identifier (``a.b.c`` too with ``allow_dots``)."""
    parts = text.split(".") if allow_dots else [text]
    return bool(parts) and all(_IDENT.fullmatch(p) is not None and not p[0].isdigit() for p in parts)
'''
NEW_TEST = """

def test_chunker_keeps_a_tiny_file_whole() -> None:
    assert chunk_file("a.py", "x = 1\\n", "python", lambda lines: [1] * len(lines), 100)[0].text == "x = 1"
"""


def git(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def make_repo(work: Path) -> Path:
    repo = work / "repo"
    repo.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", "base")
    return repo


def edit(repo: Path) -> None:
    """The typical change: three files, four changed symbols, one of them new and untested."""
    text = repo / "localpilot" / "text.py"
    body = text.read_text()
    changed = body.replace("len(term) > 1:", "len(term) >= 2:")
    walker = repo / "localpilot" / "index" / "walker.py"
    old = walker.read_text()
    new = old.replace('"""HEAD\'s commit id,', '"""The commit id of HEAD,')
    if changed == body or new == old:
        raise SystemExit(
            "the bench's edits no longer apply to this tree: update edit() in bench/hook.py"
        )
    text.write_text(changed + NEW_FUNCTION)
    walker.write_text(new)
    test = repo / "tests" / "test_chunker.py"
    test.write_text(test.read_text() + NEW_TEST)


def timed_commit(repo: Path, env: dict[str, str]) -> tuple[float, str]:
    if git(repo, "reset", "-q", "--hard", "base").returncode != 0:
        raise SystemExit("cannot reset the bench repo to its base commit")
    edit(repo)
    git(repo, "add", "-A")
    started = time.perf_counter()
    res = git(repo, "commit", "-q", "-m", "change", env=env)
    elapsed = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"commit failed: {res.stderr}")
    return elapsed, res.stderr


def install(repo: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "localpilot", "hook", "install", "--repo", str(repo), *args],
        check=True,
        capture_output=True,
    )


def series(repo: Path, env: dict[str, str], runs: int) -> dict[str, Any]:
    times, outputs = [], []
    for _ in range(runs):
        t, out = timed_commit(repo, env)
        times.append(t)
        outputs.append(out)
    mapping = [
        float(m) for o in outputs for m in re.findall(r"tests found by [\w +]+ · ([\d.]+)s", o)
    ]
    skeleton = [float(m) for o in outputs for m in re.findall(r"\(by [^,]+, ([\d.]+)s", o)]
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "runs": runs,
        "mapping_s": statistics.median(mapping) if mapping else None,
        "skeleton_s": statistics.median(skeleton) if skeleton else None,
        "last_output": outputs[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--llm-runs", type=int, default=3)
    parser.add_argument(
        "--llm", help="model for the skeleton (default: the configured small model)"
    )
    parser.add_argument(
        "--index", action="store_true", help="also time it with the repo indexed (MiniLM)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lp-hook-bench-") as tmp:
        work = Path(tmp)
        repo = make_repo(work)
        env = {
            **os.environ,
            "XDG_CACHE_HOME": str(work / "cache"),
        }  # models: the user's; index/caches: private
        env.pop("LOCALPILOT_SKIP", None)
        if args.llm:
            env["LOCALPILOT_LLM"] = args.llm
        results: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg": os.getloadavg()[0]}
        results["no hook"] = series(repo, env, args.runs)
        install(repo)
        results["hook"] = series(repo, env, args.runs)
        if args.index:
            os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]
            from localpilot.service import Assistant

            Assistant(repo).index()
            results["hook, indexed"] = series(repo, env, args.runs)
        install(repo, "--write", "--budget", "600")
        results["hook --write, first run"] = series(repo, env, 1)
        results["hook --write"] = series(repo, env, args.llm_runs)
        results["load_avg_end"] = os.getloadavg()[0]
    base = results["no hook"]["median_s"]
    print(
        f"{'mode':26} {'median':>8} {'min':>8} {'max':>8} {'vs no hook':>10} {'mapping':>8} {'skeleton':>9}"
    )
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        extra = "" if r["mapping_s"] is None else f"{r['mapping_s']:7.2f}s"
        skel = "" if r["skeleton_s"] is None else f"{r['skeleton_s']:8.1f}s"
        print(
            f"{name:26} {r['median_s']:7.3f}s {r['min_s']:7.3f}s {r['max_s']:7.3f}s {r['median_s'] - base:+9.3f}s "
            f"{extra:>8} {skel:>9}"
        )
    print(
        f"(2-core machine load average {results['load_avg']:.1f} at start, {results['load_avg_end']:.1f} at end)"
    )
    print("\nlast hook output with --write:\n" + results["hook --write"]["last_output"])
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
