"""Check a GGUF file before the process that matters loads it.

A malformed model file must not take the caller down, so the first load happens in a child process
(which reports the file's metadata as JSON); the verdict is cached by path, size and mtime so that
later runs pay nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from localpilot.errors import ModelCorrupt, ModelNotFound

log = logging.getLogger(__name__)
MAGIC = b"GGUF"
PROBE_TIMEOUT_S = 300

_CHILD = r"""
import json, sys
from llama_cpp import Llama
llm = Llama(sys.argv[1], n_ctx=64, n_gpu_layers=0, verbose=False)
m = llm._model
print(json.dumps({
    "metadata": llm.metadata,
    "n_layer": int(__import__("llama_cpp").llama_model_n_layer(m.model)),
    "n_ctx_train": m.n_ctx_train(),
    "n_params": m.n_params(),
    "bos_token": m.token_get_text(m.token_bos()) if m.token_bos() >= 0 else "",
    "eos_token": m.token_get_text(m.token_eos()) if m.token_eos() >= 0 else "",
}))
"""


def check_magic(path: Path) -> None:
    """Cheap header check: exists and starts with the GGUF magic."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except FileNotFoundError as exc:
        raise ModelNotFound(f"model file {path} does not exist") from exc
    except OSError as exc:
        raise ModelNotFound(f"cannot read model file {path}: {exc}") from exc
    if head != MAGIC:
        raise ModelCorrupt(
            f"{path} is not a GGUF model file (it starts with {head!r}, not b'GGUF'); download it "
            "again or pick another model (`localpilot models list`)"
        )


def probe(path: Path, cache_dir: Path) -> dict[str, Any]:
    """Metadata of a GGUF file that llama.cpp has loaded once in a child process without failing."""
    check_magic(path)
    stat = path.stat()
    key = hashlib.sha256(
        f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
    ).hexdigest()[:24]
    cached = cache_dir / "gguf-probe" / f"{key}.json"
    if cached.is_file():
        try:
            return dict(json.loads(cached.read_text()))
        except (OSError, ValueError):
            cached.unlink(missing_ok=True)
    info = _probe_in_child(path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(cached)
    return info


def _probe_in_child(path: Path) -> dict[str, Any]:
    log.info("checking %s in a child process", path)
    try:
        res = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelCorrupt(f"loading {path} did not finish in {PROBE_TIMEOUT_S}s") from exc
    if res.returncode != 0:
        reason = _last_line(res.stderr) or f"exit status {res.returncode}"
        if "No module named 'llama_cpp'" in res.stderr:
            raise ModelNotFound(
                "llama-cpp-python is not installed: run ./install.sh (it builds it)"
            )
        raise ModelCorrupt(
            f"llama.cpp cannot load {path} ({reason}); the file is truncated or damaged: "
            "download or install it again (`localpilot models install|pull NAME`)"
        )
    try:
        return dict(json.loads(res.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError) as exc:
        raise ModelCorrupt(f"checking {path} gave no metadata: {_last_line(res.stderr)}") from exc


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][-300:] if lines else ""
