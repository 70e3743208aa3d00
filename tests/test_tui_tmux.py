"""What a person sees: the real app in a real terminal (tmux), on a real repo, with the real models
(MiniLM, the shipped reranker, the default Qwen2.5-Coder-0.5B through llama.cpp).
Ask, watch the answer and its source, open it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import UPLOADER

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def wait_for(self, text: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.5)
        raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen()}")


@pytest.fixture
def tmux_app(make_repo: Callable[..., Any], default_llm_path: Path) -> Iterator[Tmux]:
    repo = make_repo({"storage/uploader.py": UPLOADER, "README.md": "# demo\n\nUploads files.\n"})
    name = f"lp{time.monotonic_ns()}"
    command = f"{sys.executable} -m localpilot tui --llm {default_llm_path}"
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            "-c",
            str(repo.root),
            command,
        ],
        check=True,
    )
    try:
        yield Tmux(name)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], check=False)


def test_ask_in_the_real_tui_and_open_the_citation(tmux_app: Tmux) -> None:
    tmux_app.wait_for("2 files")  # indexed in the background on start
    tmux_app.keys("where do we retry failed uploads and how many times?", "Enter")
    screen = tmux_app.wait_for("small: a question about the code", timeout=300)
    screen = tmux_app.wait_for("tok/s", timeout=300)  # the answer finished streaming
    assert "storage/uploader.py:" in screen  # listed under Sources and previewed
    tmux_app.wait_for(
        "def upload_with_retry", timeout=30
    )  # the preview shows the cited code (it may lag a redraw)
    tmux_app.keys("F2")
    tmux_app.wait_for("search the code")
    time.sleep(0.5)
    tmux_app.keys("upload")
    screen = tmux_app.wait_for("upload_with_retry  ", timeout=60)
    assert "❱" in screen  # the hit's lines are marked in the preview
    tmux_app.keys("C-q")
