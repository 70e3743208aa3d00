"""Scale out: the same index and search code against a real Chroma server (`chroma run`) on loopback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import loopback_server

from localpilot.errors import StoreError


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    chroma = str(Path(sys.executable).parent / "chroma")
    with loopback_server(
        [
            chroma,
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
        tmp_path / "chroma.log",
        timeout=90,
    ) as url:
        yield url


def test_index_and_search_against_a_chroma_server(
    chroma_server: str,
    make_repo: Callable[..., Any],
    assistant_for: Callable[..., Any],
    tmp_path: Path,
) -> None:
    repo = make_repo(
        {
            "net/retry.py": "def retry_with_backoff(fn, attempts=3):\n    for i in range(attempts):\n"
            "        try:\n            return fn()\n        except OSError:\n"
            "            pass\n",
            "db/users.py": "def find_user_by_email(db, email):\n    return db.get(email)\n",
        }
    )
    a = assistant_for(repo, chroma_url=chroma_server)
    stats = a.index()
    assert stats.files_indexed == 2 and a.store.count() == stats.chunks_written
    assert not (a.index_dir / "chroma").exists()  # vectors live on the server only
    assert a.search("retry with exponential backoff", 3)[0].path == "net/retry.py"
    other = make_repo({"x.py": "def unrelated():\n    pass\n"})
    b = assistant_for(other, chroma_url=chroma_server)
    b.index()
    assert (
        b.store.count() == 1 and a.store.count() == stats.chunks_written
    )  # one collection per repo


def test_unreachable_server_is_a_clear_error(
    make_repo: Callable[..., Any], assistant_for: Callable[..., Any]
) -> None:
    repo = make_repo({"a.py": "def f():\n    pass\n"})
    a = assistant_for(repo, chroma_url="http://127.0.0.1:9")
    with pytest.raises(StoreError, match=r"Chroma server at http://127\.0\.0\.1:9"):
        a.index()
