"""Many threads of one process on one Assistant: search, index_buffer, index, symbol_info, complete and ask at
once against a real index (MiniLM, Chroma, SQLite, tree-sitter; the LLM is scripted). Nothing may fail, and every
hit's snippet must equal the file's text at its lines as some version of the file had it while the search ran."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from localpilot.answer import Conversation
from localpilot.config import load_settings
from localpilot.experts.llm import ScriptedGenerator
from localpilot.service import Assistant
from localpilot.types import Hit

WORDS = [
    "invoice",
    "total",
    "parse",
    "header",
    "retry",
    "upload",
    "cache",
    "token",
    "merge",
    "config",
    "render",
    "window",
    "socket",
    "buffer",
    "schema",
    "report",
]
QUERIES = [
    "compute the total of an invoice",
    "parse a header line",
    "retry a failed upload",
    "merge two configs",
    "render the report window",
    "flush the socket buffer",
    "validate the schema",
    "cache a token",
]
MODULES = 24


def module_text(i: int, version: int) -> str:
    """Top-level functions only (every chunk's text is then exactly its lines); names move with the version."""
    rng = random.Random(i * 1000 + version)
    out = []
    for j in range(4):
        a, b = rng.sample(WORDS, 2)
        out.append(
            f"def {a}_{b}_{i}_{j}_v{version % 3}(value, extra=None):\n"
            f'    """{a.title()} the {b} of item {i}, version {version}."""\n'
            f"    result = value * {version + j}\n"
            f"    return result + len(extra or []) - {i}\n"
        )
    return "\n\n".join(out)


@dataclass
class Version:
    text: str
    started: float
    finished: float = float("inf")


@dataclass
class Truth:
    """Every version each file has had, in order; one writer per path at a time."""

    root: Path
    versions: dict[str, list[Version]] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)

    def write(self, path: str, text: str, index: Callable[[str, str], bool]) -> bool:
        with self.locks[path]:
            version = Version(text, time.monotonic())
            self.versions[path].append(version)
            tmp = self.root / f"{path}.tmp-{threading.get_ident()}"
            tmp.write_text(text, encoding="utf-8")
            os.replace(
                tmp, self.root / path
            )  # an index run reads the old or the new text, never half of one
            try:
                return index(path, text)
            finally:
                self.versions[path][-2].finished = time.monotonic()

    def check(self, hit: Hit, t0: float, t1: float) -> str | None:
        """None when some version live during [t0, t1] has exactly the hit's snippet at its lines."""
        versions = list(self.versions.get(hit.path, []))
        for k, v in enumerate(versions):
            replaced = versions[k + 1].finished if k + 1 < len(versions) else float("inf")
            if v.started <= t1 and replaced >= t0:
                lines = v.text.split("\n")[hit.start_line - 1 : hit.end_line]
                if "\n".join(lines) == hit.snippet:
                    return None
        return f"{hit.path}:{hit.start_line}-{hit.end_line} matches no live version: {hit.snippet[:80]!r}"


def run_stress(a: Assistant, truth: Truth, ops: int, threads: int) -> dict[str, Any]:
    counts: dict[str, int] = {}
    failures: list[str] = []
    left = [ops]
    guard = threading.Lock()
    versions = [1000]

    def take() -> bool:
        with guard:
            left[0] -= 1
            return left[0] >= 0

    def one(rng: random.Random) -> str:
        kind = rng.choices(
            ["search", "symbol_info", "complete", "ask", "index_buffer", "index"],
            [40, 20, 14, 10, 14, 2],
        )[0]
        t0 = time.monotonic()
        hits: list[Hit] = []
        if kind == "search":
            hits = a.search(rng.choice([*QUERIES, f"{rng.choice(WORDS)}_{rng.choice(WORDS)}"]), 6)
        elif kind == "symbol_info":
            info = a.symbol_info(
                f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{rng.randrange(MODULES)}_0_v0"
            )
            assert set(info) == {"definitions", "usages"}
        elif kind == "complete":
            i = rng.randrange(MODULES)
            a.complete(f"m{i}.py", module_text(i, 0)[:200] + "\n    ", "\n")
        elif kind == "ask":
            answer = None
            for event in a.ask(rng.choice(QUERIES), Conversation()):
                answer = event.answer or answer
            assert answer is not None and answer.text
            hits = answer.hits
        elif kind == "index_buffer":
            i = rng.randrange(MODULES)
            with guard:
                versions[0] += 1
                v = versions[0]
            truth.write(f"m{i}.py", module_text(i, v), a.index_buffer)
        else:
            a.index()
        t1 = time.monotonic()
        for h in hits:
            if (problem := truth.check(h, t0, t1)) is not None:
                failures.append(f"{kind}: {problem}")
        return kind

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while take():
            try:
                kind = one(rng)
            except (
                Exception
            ) as exc:  # the stress test's whole point: report every failure, keep going
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            with guard:
                counts[kind] = counts.get(kind, 0) + 1

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {
        "ops": sum(counts.values()),
        "counts": counts,
        "failures": failures,
        "seconds": round(time.monotonic() - started, 1),
    }


def stress_assistant(
    make_repo: Callable[..., Any], minilm: Any, reranker: str = "none"
) -> tuple[Assistant, Truth]:
    files = {f"m{i}.py": module_text(i, 0) for i in range(MODULES)}
    repo = make_repo(files)
    truth = Truth(
        repo.root,
        {p: [Version(t, 0.0)] for p, t in files.items()},
        {p: threading.Lock() for p in files},
    )
    a = Assistant(
        repo.root,
        load_settings(repo.root, reranker=reranker, big_llm="none"),
        embedder=minilm,
        generators={"small": ScriptedGenerator(script="It is in m1.py, see the total.")},
    )
    a.index()
    return a, truth


def check_symbol_channel(a: Assistant) -> None:
    snap = a.retriever._symbols.snapshot(a.state)
    assert len(snap.ids) == a.state.chunk_count() == len(set(snap.ids))


def test_first_searches_at_once_build_one_symbol_snapshot(
    make_repo: Callable[..., Any], minilm: Any
) -> None:
    a, _ = stress_assistant(make_repo, minilm)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def first() -> None:
        barrier.wait()
        try:
            assert a.search("parse a header line", 5)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    pool = [threading.Thread(target=first) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    check_symbol_channel(a)
    a.close()


def test_mixed_operations_from_eight_threads(make_repo: Callable[..., Any], minilm: Any) -> None:
    a, truth = stress_assistant(make_repo, minilm)
    result = run_stress(a, truth, ops=400, threads=8)
    assert result["failures"] == [], result["failures"][:5]
    assert result["ops"] == 400 and len(result["counts"]) >= 5
    check_symbol_channel(a)
    a.close()


@pytest.mark.slow
def test_ten_thousand_operations_from_eight_threads(
    make_repo: Callable[..., Any], minilm: Any
) -> None:
    a, truth = stress_assistant(make_repo, minilm, reranker="tiny-code")
    ops = int(os.environ.get("STRESS_OPS", "10000"))
    result = run_stress(a, truth, ops=ops, threads=8)
    print(
        f"stress: {result['ops']} operations on 8 threads in {result['seconds']} s, {result['counts']}, "
        f"{len(result['failures'])} failures"
    )
    assert result["failures"] == [], result["failures"][:5]
    assert result["ops"] == ops
    check_symbol_channel(a)
    a.close()
