"""The one config reader.

Precedence: defaults < user config (XDG config dir) < repo ``.localpilot.toml`` < ``LOCALPILOT_*`` env < flags.
A cloned repo is untrusted: its ``.localpilot.toml`` may tune indexing and retrieval only, never model files,
endpoints or directories (otherwise opening a repo could send its code elsewhere or load foreign weights).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from localpilot.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

REPO_CONFIG = ".localpilot.toml"
#: Keys a repository's own config file may set: tuning only.
REPO_SAFE_KEYS = frozenset({"max_file_bytes", "exclude", "k", "batch_size", "per_file",
                            "hook_budget_s", "hook_strict", "hook_write"})  # a team may make its hook strict


def half_the_cores() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class Settings:
    """Every knob, with its default."""

    embedder: str = "code-minilm"  # preset name from models/presets.toml, or a local model directory
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # embedding compute precision: auto (bf16 where native) | fp32 | bf16
    max_file_bytes: int = 1_000_000
    exclude: tuple[str, ...] = ()  # extra gitignore-style globs never indexed
    k: int = 10
    reranker: str = "tiny-code"  # reranker preset, local cross-encoder directory, Hugging Face id, or "none"
    per_file: int = 5  # most search hits from one file
    batch_size: int = 32
    llm: str = "qwen2.5-coder-0.5b"  # the small code LLM: preset name or path to a .gguf
    big_llm: str = "qwen2.5-coder-1.5b"  # escalation target when installed; "none" to never escalate
    llm_url: str = ""  # OpenAI-compatible server (llama-server, vLLM) instead of in-process models
    chroma_url: str = ""  # Chroma server (`chroma run`) instead of the embedded store
    llm_ctx: int = 4096  # context window requested from the model (tokens)
    answer_tokens: int = 512  # room kept for the answer
    context_tokens: int = 1536  # most tokens of retrieved code per question
    gpu_layers: str = "auto"  # auto: every layer that fits on the GPU; a number; 0 for CPU only
    # llama.cpp threads: half the cores, as llama-cpp-python does. ggml threads spin at barriers, so one more
    # busy process (an indexer, a test run) on a 2-core laptop cut 2-thread generation from 28 to 0.4 tok/s.
    threads: int = field(default_factory=half_the_cores)
    cache_dir: Path = field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "localpilot")
    data_dir: Path = field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "localpilot")
    config_dir: Path = field(default_factory=lambda: _xdg("XDG_CONFIG_HOME", ".config") / "localpilot")
    hook_budget_s: int = 5  # pre-commit hook: seconds before it prints what it has and lets the commit go on
    hook_strict: bool = False  # pre-commit hook: changed public code without tests fails the commit
    hook_write: bool = False  # pre-commit hook: the code LLM writes a test skeleton for untested code

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def index_dir(self, repo_root: Path) -> Path:
        """Derived data for one repo lives in the user cache, keyed by the repo's absolute path."""
        root = str(repo_root.resolve())
        key = hashlib.sha256(root.encode()).hexdigest()[:16]
        return self.cache_dir / "indexes" / f"{repo_root.name}-{key}"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    if name not in kinds:
        raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(kinds))}")
    kind = str(kinds[name])
    try:
        if kind == "bool":
            return _boolean(value)
        if "int" in kind:
            number = int(value)
            if number <= 0:
                raise ValueError("must be a positive integer")
            return number
        if "Path" in kind:
            return Path(value).expanduser()
        if "tuple" in kind:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip() for i in items if str(i).strip())
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: cannot use {value!r} ({exc})") from exc


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc


def _env_values() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Settings):
        value = os.environ.get(f"LOCALPILOT_{f.name.upper()}")
        if value is not None:
            out[f.name] = value
    return out


def load_settings(repo_root: Path | None = None, **overrides: Any) -> Settings:
    """Merge every source in precedence order; ``overrides`` are command-line flags (None = unset)."""
    env = _env_values()
    config_dir = Path(env.get("config_dir") or Settings().config_dir)
    merged: dict[str, Any] = dict(_read_toml(config_dir / "config.toml"))
    if repo_root is not None:
        repo_values = _read_toml(repo_root / REPO_CONFIG)
        for key in sorted(set(repo_values) - REPO_SAFE_KEYS):
            log.warning("ignoring %r in %s: a repository may only set %s", key, REPO_CONFIG,
                        ", ".join(sorted(REPO_SAFE_KEYS)))
        merged.update({k: v for k, v in repo_values.items() if k in REPO_SAFE_KEYS})
    merged.update(env)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return replace(Settings(), **{k: _coerce(k, v) for k, v in merged.items()})
