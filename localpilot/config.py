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
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from pydantic import Field, TypeAdapter, ValidationError

from localpilot.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

REPO_CONFIG = ".localpilot.toml"
#: Keys a repository's own config file may set: tuning only.
REPO_SAFE_KEYS = frozenset(
    {
        "max_file_bytes",
        "exclude",
        "k",
        "batch_size",
        "per_file",
        "hook_budget_s",
        "hook_strict",
        "hook_write",
    }
)  # a team may make its hook strict


Positive = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]


def half_the_cores() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class Settings:
    """Every knob, with its default."""

    embedder: str = (
        "code-minilm"  # preset name from models/presets.toml, or a local model directory
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = (
        "auto"  # embedding compute: auto = bf16 where native
    )
    max_file_bytes: Positive = 1_000_000
    exclude: tuple[str, ...] = ()  # extra gitignore-style globs never indexed
    k: Positive = 10
    reranker: str = (
        "tiny-code"  # reranker preset, local cross-encoder directory, Hugging Face id, or "none"
    )
    per_file: Positive = 5  # most search hits from one file
    batch_size: Positive = 32
    llm: str = "qwen2.5-coder-0.5b"  # the small code LLM: preset name or path to a .gguf
    big_llm: str = (
        "qwen2.5-coder-1.5b"  # escalation target when installed; "none" to never escalate
    )
    # The inline-completion model: "auto" = the big model when it is installed (on dev repositories its first
    # completed lines matched 24% of the time against the 0.5B's 7%, at a new-spot p50 of 2.3-2.8 s against
    # 1.8-2.1 s on 2 cores: bench/completion_context.py), else the small one; or a preset name or .gguf path.
    fim_llm: str = "auto"
    llm_url: str = ""  # OpenAI-compatible server (llama-server, vLLM) instead of in-process models
    chroma_url: str = ""  # Chroma server (`chroma run`) instead of the embedded store
    llm_ctx: Positive = 4096  # context window requested from the model (tokens)
    answer_tokens: Positive = 512  # room kept for the answer
    context_tokens: Positive = 1536  # most tokens of retrieved code per question
    # Other-file chunks an inline completion reads before its window (definitions of the names used before
    # the cursor, search hits, recent edits). 0 for the shipped models: with Qwen2.5-Coder-0.5B-Instruct any
    # such context lowered first-line edit similarity on dev repositories in Python, JavaScript and Go
    # (bench/completion_context.py, bench/results-completion-context.json); a base FIM model may gain from 3.
    completion_context: NonNegative = 0
    gpu_layers: str = "auto"  # auto: every layer that fits on the GPU; a number; 0 for CPU only
    # llama.cpp threads: half the cores, as llama-cpp-python does. ggml threads spin at barriers, so one more
    # busy process (an indexer, a test run) on a 2-core laptop cut 2-thread generation from 28 to 0.4 tok/s.
    threads: Positive = field(default_factory=half_the_cores)
    cache_dir: Path = field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "localpilot")
    data_dir: Path = field(
        default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "localpilot"
    )
    config_dir: Path = field(
        default_factory=lambda: _xdg("XDG_CONFIG_HOME", ".config") / "localpilot"
    )
    hook_budget_s: NonNegative = (
        5  # pre-commit hook: seconds before it prints what it has and lets the commit go on
    )
    hook_strict: bool = False  # pre-commit hook: changed public code without tests fails the commit
    hook_write: bool = (
        False  # pre-commit hook: the code LLM writes a test skeleton for untested code
    )

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


@lru_cache(maxsize=1)
def _field_types() -> dict[str, Any]:
    return get_type_hints(Settings, include_extras=True)


@lru_cache(maxsize=64)
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def accepted(kind: Any) -> str:
    """The values a setting of type ``kind`` accepts, in words."""
    if get_origin(kind) is Annotated:
        _base, *extra = get_args(kind)
        low = next(
            (getattr(m, "ge", None) for c in extra for m in getattr(c, "metadata", [])), None
        )
        return "a positive integer" if low == 1 else "an integer, 0 or more (0: none)"
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(map(str, get_args(kind)))
    words = {
        bool: "true or false",
        int: "an integer",
        str: "a string",
        Path: "a path",
        tuple[str, ...]: "a list of strings (or one comma-separated string)",
    }
    return words.get(kind, str(kind))


def _coerce(name: str, value: Any, source: str = "") -> Any:
    """``value`` as the declared type of setting ``name`` (validated by pydantic), or a ConfigError naming the
    key, where it was set and what it accepts."""
    kinds = _field_types()
    if name not in kinds:
        raise ConfigError(
            f"unknown setting {name!r}{_where(source)}; known: {', '.join(sorted(kinds))}"
        )
    kind = kinds[name]
    if kind == tuple[str, ...] and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if kind is bool and isinstance(value, str) and not value.strip():
        value = False
    try:
        out = _adapter(kind).validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0].get("msg", "invalid")
        raise ConfigError(
            f"setting {name!r}{_where(source)}: cannot use {value!r} ({reason}); it must be "
            f"{accepted(kind)}"
        ) from exc
    return out.expanduser() if isinstance(out, Path) else out


def _where(source: str) -> str:
    return f" (from {source})" if source else ""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc


def _env_values() -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for f in fields(Settings):
        var = f"LOCALPILOT_{f.name.upper()}"
        if (value := os.environ.get(var)) is not None:
            out[f.name] = (value, f"environment variable {var}")
    return out


def load_settings(repo_root: Path | None = None, **overrides: Any) -> Settings:
    """Merge every source in precedence order; ``overrides`` are command-line flags (None = unset)."""
    env = _env_values()
    config_dir = Path(env["config_dir"][0]) if "config_dir" in env else Settings().config_dir
    user_file = config_dir / "config.toml"
    merged: dict[str, tuple[Any, str]] = {
        k: (v, str(user_file)) for k, v in _read_toml(user_file).items()
    }
    if repo_root is not None:
        repo_file = repo_root / REPO_CONFIG
        repo_values = _read_toml(repo_file)
        for key in sorted(set(repo_values) - REPO_SAFE_KEYS):
            log.warning(
                "ignoring %r in %s: a repository may only set %s",
                key,
                REPO_CONFIG,
                ", ".join(sorted(REPO_SAFE_KEYS)),
            )
        merged.update(
            {k: (v, str(repo_file)) for k, v in repo_values.items() if k in REPO_SAFE_KEYS}
        )
    merged.update(env)
    merged.update({k: (v, "the command line") for k, v in overrides.items() if v is not None})
    return replace(Settings(), **{k: _coerce(k, v, source) for k, (v, source) in merged.items()})
