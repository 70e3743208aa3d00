"""Does other-file context make inline completions better? In-process, on dev repositories, many spots.

``completion.py`` replays an editor over the LSP pipes on its three evaluation repositories with six spots each:
too few to tell context variants apart. This bench asks the same question on *other* repositories (dev data:
pyparsing and itsdangerous from PyPI, jszip from npm, gorilla/websocket and go-humanize from Debian; none is
reserved, none is an evaluation repository of ``completion.py``) with ``--spots`` new spots per language,
through ``Completer`` itself (the engine the LSP server runs), the same FIM model for every variant:

* ``none``: no other-file context;
* ``search``: the index's search hits for the lines before the cursor, in the room the window leaves (the
  engine before this bench);
* ``definitions``: other files' definitions of the names used just before the cursor
  (``CompletionConfig.definition_lines``), then the search hits, in the same room;
* ``search, room`` and ``definitions, room``: the same with ``context_share`` of the prompt budget kept for
  the context (the window gets the rest);
* ``definitions only`` and ``signatures only``: definitions without search hits, whole (24 lines) or their
  first 3 lines.

Per variant: first-line exact match and edit similarity against the real line, latency p50/p95, and how many
context chunks the prompt held. The variants take turns at each spot, so load and cache state are shared fairly.

Usage: .venv/bin/python bench/completion_context.py [--spots 40] [--out bench/results-completion-context.json]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import emit, extract, fetch_sdist, init_repo, percentile, run_bench
from _polyglot import DEV_PACKAGES, fetch
from completion import _language, document, quality, spots

log = logging.getLogger("bench.completion_context")
PYTHON_DEV = {"pyparsing": "3.3.3", "itsdangerous": "2.2.0"}
JS_DEV = ("jszip",)
GO_DEV = ("websocket", "humanize")
SUFFIX = {"python": ".py", "javascript": ".js", "go": ".go"}
#: name -> (CompletionConfig changes, whether the index's search hits are candidates too)
VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "none": ({"extra_chunks": 0}, True),
    "search": ({"definition_lines": 0, "context_share": 0.0}, True),
    "definitions": ({"context_share": 0.0}, True),
    "search, room": ({"definition_lines": 0}, True),
    "definitions, room": ({}, True),
    "definitions only": ({"context_share": 0.0}, False),
    "signatures only": ({"context_share": 0.0, "extra_lines": 3}, False),
}


def _copy_tree(src: Path, dest: Path, suffix: str) -> None:
    for p in sorted(src.rglob(f"*{suffix}")):
        if p.is_file() and "test" not in p.name:
            out = dest / p.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, out)


def dev_repo(dest: Path, language: str) -> Path:
    if language == "python":
        for name, version in PYTHON_DEV.items():
            root = extract(fetch_sdist(name, version))
            pkg = next(p for p in (root / "src" / name, root / name) if p.is_dir())
            _copy_tree(pkg, dest / name, ".py")
    else:
        labels = JS_DEV if language == "javascript" else GO_DEV
        for src in DEV_PACKAGES[language]:
            if src.label in labels:
                _copy_tree(fetch(src), dest / src.label, SUFFIX[language])
    init_repo(dest)
    return dest


def variants(config: Any, names: list[str]) -> dict[str, tuple[Any, bool]]:
    base = replace(config, speculate=False, extra_chunks=3)  # the shipped setting reads none
    return {name: (replace(base, **VARIANTS[name][0]), VARIANTS[name][1]) for name in names}


def run_language(
    work: Path, language: str, n: int, names: list[str], llm: str | None
) -> dict[str, Any]:
    from localpilot.complete import Completer
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    root = dev_repo(work / language, language)
    overrides = {"llm": llm} if llm else {}
    a = Assistant(root, load_settings(root, cache_dir=work / f"cache-{language}", **overrides))
    log.info("%s index: %s", language, a.index().summary())
    a.embedder.embed_query("warm up")  # loaded now: context search never skips a spot for a load
    parts = a.parts
    engines: dict[str, Completer] = {
        name: Completer(
            lambda: a.generator("fim"),
            parts._context_search if searched else _nothing,
            cfg,
            definitions=parts._context_definitions,
        )
        for name, (cfg, searched) in variants(parts.completer.config, names).items()
    }
    chosen = spots(root, language, n)
    rows: dict[str, list[tuple[str, str, float, int]]] = {name: [] for name in engines}
    for i, spot in enumerate(chosen):
        lines = document(root, spot, "").split("\n")
        prefix = "\n".join([*lines[: spot.line], spot.indent])
        suffix = "\n" + "\n".join(lines[spot.line + 1 :])
        turn = i % len(engines)
        order = list(engines)[turn:] + list(engines)[:turn]  # take turns going first
        for name in order:
            t = time.perf_counter()
            got = engines[name].complete(spot.path, _language(spot.path), prefix, suffix)
            ms = (time.perf_counter() - t) * 1000
            rows[name].append((got.text, spot.text.lstrip(), ms, len(got.context)))
    a.close()
    return {
        "spots": len(chosen),
        "variants": {name: _summary(r) for name, r in rows.items()},
        "examples": [
            {"spot": f"{s.path}:{s.line + 1}", "want": s.text.strip(), **_firsts(rows, i)}
            for i, s in enumerate(chosen[:8])
        ],
    }


def _nothing(query: str, k: int) -> list[Any]:
    return []


def _firsts(rows: dict[str, list[tuple[str, str, float, int]]], i: int) -> dict[str, str]:
    return {name: r[i][0].split("\n", 1)[0] for name, r in rows.items()}


def _summary(rows: list[tuple[str, str, float, int]]) -> dict[str, Any]:
    ms = [r[2] for r in rows]
    return {
        **quality([(got, want) for got, want, _, _ in rows]),
        "p50_ms": round(percentile(ms, 0.5)),
        "p95_ms": round(percentile(ms, 0.95)),
        "context_chunks_mean": round(statistics.mean(r[3] for r in rows), 2),
        "with_context": sum(r[3] > 0 for r in rows),
    }


def run(args: argparse.Namespace, work: Path) -> int:
    report: dict[str, Any] = {
        "benchmark": "completion_context",
        "llm": args.llm or "default",
        "variants": args.variants,
        "languages": {},
    }
    for language in args.languages:
        report["languages"][language] = run_language(
            work, language, args.spots, args.variants, args.llm
        )
    langs = report["languages"].values()
    report["overall"] = {
        name: {
            m: round(statistics.mean(r["variants"][name][m] for r in langs), 3)
            for m in ("exact_match", "edit_similarity")
        }
        for name in args.variants
    }
    return emit(report, args.out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spots", type=int, default=40)
    p.add_argument(
        "--languages", nargs="+", default=list(SUFFIX), choices=list(SUFFIX), help="default: all"
    )
    p.add_argument("--llm", help="the FIM model (default: the configured small model)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    return run_bench(p, argv, "lp-completion-context-", run)


if __name__ == "__main__":
    raise SystemExit(main())
