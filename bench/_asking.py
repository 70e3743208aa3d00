"""Shared parts of the answer and router benchmarks: a real-source repo (docstrings kept), the two local LLMs,
a recording wrapper that keeps the small model's confidence signal, and fresh-KV resets.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import (
    extract,
    fetch_sdist,
    first_sentence,
    functions_of,
    init_repo,
    package_files,
    span_of,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger("bench.asking")
DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Documented:
    """A function of the real source: where it is (1-based, inclusive, decorators included), its docstring."""

    path: str
    qualname: str
    start_line: int
    end_line: int
    first_sentence: str


def source_repo(dest: Path, name: str, version: str) -> dict[tuple[str, str], Documented]:
    """The pinned sdist's import packages as they ship (docstrings kept), committed in a new git repo at
    ``dest`` (reused when it exists); returns every function keyed by (path, qualname)."""
    base, files = package_files(extract(fetch_sdist(name, version)))
    fresh = not (dest / ".git").is_dir()
    if fresh:
        shutil.rmtree(dest, ignore_errors=True)
    out: dict[tuple[str, str], Documented] = {}
    for src in files:
        rel = src.relative_to(base).as_posix()
        text = src.read_text(encoding="utf-8")
        if fresh:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_text(text, encoding="utf-8")
        for qual, node in functions_of(ast.parse(text)):
            doc = ast.get_docstring(node, clean=False)
            out[(rel, qual)] = Documented(
                rel, qual, *span_of(node), first_sentence(doc) if doc else ""
            )
    if fresh:
        init_repo(dest)
    return out


def load_toml(name: str) -> dict[str, Any]:
    with (DATA / name).open("rb") as fh:
        return tomllib.load(fh)


def load_llm(settings: Any, which: str) -> Any:
    """The ``small``/``big`` model exactly as ``Assistant`` would load it (user models dir, same knobs)."""
    from localpilot.experts import build

    gen = build.generator(settings, which)
    gen.llm  # type: ignore[attr-defined]  # noqa: B018 - load now, not inside a timed run
    return gen


def forget_kv(*generators: Any) -> None:
    """Next prompt is evaluated from scratch (no KV prefix reuse), as for a new question in a new session."""
    for g in generators:
        inner = getattr(g, "inner", g)
        if getattr(inner, "_llm", None) is not None:
            inner.llm.reset()


@dataclass
class Recording:
    """A Generator that passes everything through to ``inner`` and keeps, per ``stream`` call, the mean
    log-prob of the first ``probe`` tokens (the router's confidence signal) and all tokens' text."""

    inner: Any
    probe: int = 12
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def family(self) -> str:
        return self.inner.family

    @property
    def n_ctx(self) -> int:
        return self.inner.n_ctx

    @property
    def last(self) -> Any:
        return self.inner.last

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_tokens(self, messages: Any) -> int:
        return self.inner.prompt_tokens(messages)

    def stream(
        self, messages: Any, max_tokens: int = 512, cancel: threading.Event | None = None
    ) -> Iterator[Any]:
        from localpilot.answer import mean_logprob

        tokens: list[Any] = []
        source = self.inner.stream(messages, max_tokens, cancel)
        try:
            for t in source:
                tokens.append(t)
                yield t
        finally:
            source.close()
            self.calls.append(
                {
                    "probe_logprob": mean_logprob(tokens[: self.probe]) if tokens else None,
                    "tokens": len(tokens),
                }
            )


def _cpu_jiffies() -> tuple[int, int]:
    """(total, busy) jiffies of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:9]]
    return sum(values), sum(values) - values[3] - values[4]  # busy = all but idle and iowait


def others_busy(seconds: float = 0.5) -> float:
    """Cores kept busy by other processes over ``seconds`` while this one sleeps."""
    return Watch().measure(lambda: time.sleep(seconds))


class Watch:
    """Cores used by *other* processes while a block runs: machine busy time minus this process's CPU time."""

    others = 0.0

    def __enter__(self) -> Watch:
        self._wall, self._cpu = time.perf_counter(), _self_cpu()
        try:
            self._jiffies: tuple[int, int] | None = _cpu_jiffies()
        except (OSError, ValueError):
            self._jiffies = None
        return self

    def __exit__(self, *exc: object) -> None:
        wall, cpu = time.perf_counter() - self._wall, _self_cpu() - self._cpu
        if self._jiffies is None or wall <= 0:
            return
        busy = (_cpu_jiffies()[1] - self._jiffies[1]) / os.sysconf("SC_CLK_TCK")
        self.others = max(0.0, (busy - cpu) / wall)

    def measure(self, fn: Any) -> float:
        with self:
            fn()
        return self.others


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def wait_quiet(limit_s: float = 60.0, busy_max: float = 0.3) -> float:
    """Wait (up to ``limit_s``) until other processes use at most ``busy_max`` cores; returns the last reading."""
    started = time.perf_counter()
    while True:
        busy = others_busy()
        if busy <= busy_max or time.perf_counter() - started > limit_s:
            return busy
        time.sleep(2)


def measured(
    fn: Any, attempts: int = 3, busy_max: float = 0.3, wait_s: float = 60.0
) -> dict[str, Any]:
    """``fn()`` (a dict of results) run on a quiet machine: wait for quiet, run, and run again (up to
    ``attempts`` times in all) when other processes took more than ``busy_max`` cores meanwhile. ``wait_s``
    bounds each wait for quiet (0: no wait).

    llama.cpp's worker threads spin on barriers, so another busy process can slow a run several times over
    (2-thread generation fell from 28 to 0.4 tokens/s here); one such run would swamp any comparison. The
    result is the least disturbed attempt's, with how busy the machine was then (``others_busy``, cores) and
    how many ``attempts`` were made.
    """
    best: tuple[float, dict[str, Any]] | None = None
    for attempt in range(1, attempts + 1):
        if wait_s > 0:
            wait_quiet(wait_s, busy_max)
        with Watch() as w:
            result = fn()
        if best is None or w.others < best[0]:
            best = (w.others, result)
        if w.others <= busy_max:
            break
        log.info(
            "other processes used %.1f cores during the run (attempt %d of %d)",
            w.others,
            attempt,
            attempts,
        )
    assert best is not None
    return {
        **best[1],
        "others_busy": round(best[0], 2),
        "attempts": attempt,
    }  # the least disturbed attempt


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quantiles(values: Sequence[float]) -> dict[str, float]:
    """min, p10, p25, median, p75, p90, max (nearest rank)."""
    if not values:
        return {}
    s = sorted(values)

    def q(p: float) -> float:
        return s[min(len(s) - 1, round(p * (len(s) - 1)))]

    return {
        "min": s[0],
        "p10": q(0.1),
        "p25": q(0.25),
        "median": q(0.5),
        "p75": q(0.75),
        "p90": q(0.9),
        "max": s[-1],
    }


def overlaps(path: str, start: int, end: int, target: Documented) -> bool:
    return path == target.path and start <= target.end_line and end >= target.start_line


def finish(
    report: dict[str, Any],
    started: float,
    load_start: Any,
    show: Callable[[dict[str, Any]], None],
    out: Path | None,
) -> int:
    """Shared tail of answer.py and router.py: machine facts, the printed table, the JSON file."""
    import llama_cpp

    report.update(
        {
            "seconds_total": time.perf_counter() - started,
            "cpus": os.cpu_count(),
            "llama_cpp_python": str(llama_cpp.__version__),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
            "python": platform.python_version(),
        }
    )
    show(report)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return 0
