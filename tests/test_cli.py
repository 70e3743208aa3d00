"""The command line: JSON contracts, --stdin, status, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Repo

from localpilot.cli import main

FILES = {
    "net/retry.py": 'def backoff_delay(attempt, base=0.5):\n    """Exponential backoff."""\n'
    "    return base * 2 ** attempt\n",
    "db/users.py": "class UserStore:\n    def find_by_email(self, email):\n"
    "        return self.db.query('select * from users where email = ?', email)\n",
    "docs/guide.md": "# Guide\n\nHow to configure retries and timeouts.\n",
}
HIT_KEYS = {"path", "start_line", "end_line", "symbol", "language", "score"}


@pytest.fixture
def indexed(make_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str]) -> Repo:
    repo = make_repo(FILES)
    assert main(["index", "--repo", str(repo.root)]) == 0
    assert "indexed 3 files" in capsys.readouterr().err
    return repo


def test_search_json_contract(indexed: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "search",
                "look up a user by email address",
                "--json",
                "-k",
                "2",
                "--repo",
                str(indexed.root),
            ]
        )
        == 0
    )
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and set(hits[0]) >= HIT_KEYS
    assert (hits[0]["path"], hits[0]["symbol"]) == (
        "db/users.py",
        "UserStore",
    )  # small class: one chunk
    assert hits[0]["start_line"] == 1 and hits[0]["end_line"] == 3
    assert hits[0]["score"] >= hits[1]["score"]


def test_search_human_output(indexed: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "exponential backoff delay", "--repo", str(indexed.root)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(" 1. net/retry.py:1-3  backoff_delay  (python, function)  score ")


def test_status_json(indexed: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json", "--repo", str(indexed.root)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["files"] == 3 and status["languages"] == {"python": 2, "markdown": 1}
    assert {
        "chunks",
        "skipped",
        "embedder",
        "index_dir",
        "index_bytes",
        "last_commit",
        "last_indexed",
    } <= set(status)
    assert main(["status", "--repo", str(indexed.root)]) == 0
    assert "python 2, markdown 1" in capsys.readouterr().out


def test_stdin_answers_one_json_line_per_query_in_order(indexed: Repo) -> None:
    queries = "exponential backoff delay\n\nfind a user by email\n"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "localpilot",
            "search",
            "--stdin",
            "-k",
            "1",
            "--repo",
            str(indexed.root),
        ],
        input=queries,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 3
    first, empty, third = (json.loads(line) for line in lines)
    assert first[0]["path"] == "net/retry.py" and empty == [] and third[0]["path"] == "db/users.py"


def test_errors_are_one_line_not_tracebacks(
    tmp_path: Path, make_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "x", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not inside a git repository" in err and "Traceback" not in err
    repo = make_repo({"a.py": "x = 1\n"})
    assert main(["search", "x", "--repo", str(repo.root)]) == 5
    assert "run `localpilot index` first" in capsys.readouterr().err
    assert main(["index", "--repo", str(repo.root), "--embedder", "no-such-model"]) == 3
    assert "unknown embedding model 'no-such-model'" in capsys.readouterr().err


def test_models_list_shows_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert (
        "minilm" in out and "qwen2.5-coder-0.5b" in out and "not installed" in out
    )  # isolated data dir
