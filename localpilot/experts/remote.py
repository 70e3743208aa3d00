"""A code LLM behind an OpenAI-compatible server (llama.cpp's llama-server, llama_cpp.server, vLLM).

Same prompts, same citations as the in-process model: messages go to ``/v1/chat/completions`` (the server
applies the model's own chat template) with streaming and per-token log-probabilities.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from localpilot.errors import LocalpilotError
from localpilot.experts.llm import Generator, GenStats, Messages, NoInfill, Token

log = logging.getLogger(__name__)


class LLMServerError(LocalpilotError):
    """The configured LLM server is unreachable or answered with an error."""

    exit_code = 8


class OpenAIGenerator(Generator):
    def __init__(
        self, url: str, model: str, *, n_ctx: int = 4096, api_key: str = "", timeout: float = 600
    ) -> None:
        base = url.rstrip("/")
        self.base = base[: -len("/v1")] if base.endswith("/v1") else base
        self.name, self.family, self.n_ctx = model, "remote", n_ctx
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=self.base, headers=headers, timeout=httpx.Timeout(timeout, connect=10)
        )
        self._tokenize: str | None = None

    def count_tokens(self, text: str) -> int:
        """The server's own tokenizer when it exposes one (llama-server, llama_cpp.server); else ~3 chars/token."""
        for path, key in (("/tokenize", "content"), ("/extras/tokenize", "input")):
            if self._tokenize not in (None, path):
                continue
            try:
                res = self.client.post(path, json={key: text})
                if res.status_code == 200 and "tokens" in res.json():
                    self._tokenize = path
                    return len(res.json()["tokens"])
            except (httpx.HTTPError, ValueError):
                pass
        self._tokenize = ""
        return len(text) // 3 + 1

    def stream(
        self, messages: Messages, max_tokens: int = 512, cancel: threading.Event | None = None
    ) -> Iterator[Token]:
        body = {
            "model": self.name,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "stream": True,
            "temperature": 0.0,
            "logprobs": True,
        }
        stats = self.last = GenStats(prompt_tokens=self.prompt_tokens(messages))
        started = time.perf_counter()
        try:
            with self.client.stream("POST", "/v1/chat/completions", json=body) as res:
                if res.status_code != 200:
                    raise LLMServerError(
                        f"LLM server {self.base} answered {res.status_code}: "
                        f"{res.read().decode('utf-8', 'replace')[:300]}"
                    )
                yield from _timed(_events(res.iter_lines()), stats, started, cancel)
        except httpx.HTTPError as exc:
            raise LLMServerError(
                f"cannot reach the LLM server at {self.base} ({exc}); check `llm_url` or --llm-url"
            ) from exc

    #: llama-server's /infill takes other files as ``input_extra``.
    repo_context = True

    def infill(
        self,
        prefix: str,
        suffix: str,
        max_tokens: int = 64,
        cancel: threading.Event | None = None,
        extra: Sequence[tuple[str, str]] = (),
        path: str = "",
    ) -> Iterator[Token]:
        """llama-server's ``/infill`` (what llama.vim and llama.vscode use): the server builds the model's FIM
        prompt, reads ``input_extra`` first and keeps the prompt cached between requests (``cache_prompt``)."""
        body = {
            "input_prefix": prefix,
            "input_suffix": suffix,
            "n_predict": max_tokens,
            "stream": True,
            "cache_prompt": True,
            "temperature": 0.0,
            "samplers": ["top_k"],
            "top_k": 1,
            "input_extra": [{"filename": p, "text": text} for p, text in extra],
        }
        stats = self.last = GenStats()
        started = time.perf_counter()
        try:
            with self.client.stream("POST", "/infill", json=body) as res:
                if res.status_code == 404:
                    raise NoInfill(
                        f"the LLM server at {self.base} has no /infill endpoint: inline completion "
                        "needs llama.cpp's llama-server (`llama-server -m <coder model>.gguf`)"
                    )
                if res.status_code != 200:
                    raise LLMServerError(
                        f"LLM server {self.base} answered {res.status_code} to /infill: "
                        f"{res.read().decode('utf-8', 'replace')[:300]}"
                    )
                yield from _timed(_infill_events(res.iter_lines(), stats), stats, started, cancel)
        except httpx.HTTPError as exc:
            raise LLMServerError(
                f"cannot reach the LLM server at {self.base} ({exc}); check `llm_url` or --llm-url"
            ) from exc

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "backend": f"server {self.base}",
            "n_ctx": self.n_ctx,
        }


def _timed(
    tokens: Iterator[Token], stats: GenStats, started: float, cancel: threading.Event | None
) -> Iterator[Token]:
    """Pass ``tokens`` on, recording time to first token and generation time in ``stats``; stop on ``cancel``."""
    for token in tokens:
        now = time.perf_counter()
        if not stats.gen_tokens:
            stats.ttft_s = now - started
        stats.gen_tokens += 1
        stats.gen_s = now - started - stats.ttft_s
        yield token
        if cancel is not None and cancel.is_set():
            return


def _infill_events(lines: Iterator[str], stats: GenStats) -> Iterator[Token]:
    """/infill's server-sent events: ``{"content": ..., "stop": ..., "timings": {...}}``."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except ValueError:
            continue
        timings = event.get("timings") or {}
        if timings:
            stats.prompt_tokens = int(timings.get("prompt_n", 0)) + int(timings.get("cache_n", 0))
            stats.cached_tokens = int(timings.get("cache_n", 0))
        if event.get("content"):
            yield Token(str(event["content"]), None)
        if event.get("stop"):
            return


def _events(lines: Iterator[str]) -> Iterator[Token]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            choice = json.loads(data)["choices"][0]
        except (ValueError, KeyError, IndexError):
            continue
        text = (choice.get("delta") or {}).get("content") or ""
        probs = (choice.get("logprobs") or {}).get("content") or [{}]
        logprob = probs[0].get("logprob") if probs else None
        if text:
            yield Token(text, float(logprob) if logprob is not None else None)
