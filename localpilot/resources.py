"""Locate the data shipped with localpilot (grammars/, models/) in a checkout or an installed wheel."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """``grammars`` or ``models``: packaged copy first (wheel), then the source checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"localpilot data directory {name!r} is missing from the installation")


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; raises OSError or ValueError (tomllib's decode error is one)."""
    with path.open("rb") as fh:
        return tomllib.load(fh)
