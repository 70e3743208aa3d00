"""`localpilot doctor`: what this machine runs (versions, backend, GPU offload, installed models, measured
speed). Loads each configured model once, outside any repository."""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

from localpilot.config import Settings
from localpilot.errors import LocalpilotError
from localpilot.experts import build
from localpilot.experts.registry import is_off

PROBE = [
    {
        "role": "user",
        "content": "Write a Python function that returns the n-th Fibonacci number, with a "
        "docstring.",
    }
]


def diagnose(settings: Settings, measure: bool = True) -> dict[str, Any]:
    from localpilot import __version__
    from localpilot.experts.llm import llama_backend_info
    from localpilot.experts.registry import list_llms

    report: dict[str, Any] = {
        "localpilot": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "llama_cpp": llama_backend_info(),
        "models": [
            {"name": s.name, "role": s.role, "installed": s.installed, "path": str(s.path)}
            for s in list_llms(settings.models_dir)
        ],
    }
    for which in ("small", "big"):
        name = build.model_name(settings, which)
        report[which] = _measure(settings, which, name) if measure else {"name": name}
    fim = build.model_name(settings, "fim")
    big = fim != settings.llm and fim == report["big"].get("name")
    model = report["big"] if big else report["small"]
    if (
        model.get("status") == "ok"
    ):  # inline completion loads its model once more, with its own KV cache
        per_ctx = (model["memory_bytes"] - Path(model["path"]).stat().st_size) / max(
            model["n_ctx"], 1
        )
        report["completion"] = {
            "name": model["name"],
            "n_ctx": build.FIM_CTX,
            "instance": "separate",
            "memory_bytes": int(Path(model["path"]).stat().st_size + per_ctx * build.FIM_CTX),
        }
    return report


def _measure(settings: Settings, which: str, name: str) -> dict[str, Any]:
    if is_off(name):
        return {"name": name, "status": "not configured"}
    try:
        gen = build.generator(
            replace(settings, llm_url=""), which
        )  # this machine's speed, not a server's
        text = "".join(t.text for t in gen.stream(PROBE, max_tokens=48))
    except LocalpilotError as exc:
        return {"name": name, "status": f"unavailable: {exc}"}
    try:
        return {
            **gen.info(),
            "status": "ok",
            "prompt_tokens_per_s": round(gen.last.prompt_tokens_per_s, 1),
            "gen_tokens_per_s": round(gen.last.gen_tokens_per_s, 1),
            "sample": text[:80],
        }
    finally:
        gen.close()
