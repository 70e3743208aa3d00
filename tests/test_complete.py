"""The completion engine: a prompt whose head stays put while the user types, caches that answer typed-through
text, context chosen once per window, secrets cut out, hostile buffers survived. Logic with a scripted model;
KV reuse, the separate completion instance and time caps with the real Qwen2.5-Coder-0.5B; the remote path
through llama-server's /infill protocol on a loopback server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from localpilot.answer import Conversation
from localpilot.complete import Completer, CompletionConfig, make_window
from localpilot.config import load_settings
from localpilot.experts.llm import ScriptedGenerator
from localpilot.service import Assistant
from localpilot.types import Hit

SOURCE = "\n".join(f"def f_{i}(x):\n    return x + {i}\n" for i in range(200))


class Recorder(ScriptedGenerator):
    """A scripted model that keeps every infill prompt."""

    def __init__(self, script: str = "value = 1") -> None:
        super().__init__(script=script)
        self.prompts: list[tuple[str, str, list[tuple[str, str]]]] = []

    def infill(
        self,
        prefix: str,
        suffix: str,
        max_tokens: int = 64,
        cancel: Any = None,
        extra: Any = (),
        path: str = "",
    ) -> Iterator[Any]:
        self.prompts.append((prefix, suffix, list(extra)))
        yield from super().infill(prefix, suffix, max_tokens, cancel, extra, path)


def engine(
    gen: Recorder, hits: list[Hit] | None = None, **config: Any
) -> tuple[Completer, list[str]]:
    searched: list[str] = []

    def search(query: str, k: int) -> list[Hit]:
        searched.append(query)
        return list(hits or [])

    cfg = CompletionConfig(speculate=False, **config)
    return Completer(lambda: gen, search, cfg), searched


def test_window_starts_on_steps_and_keeps_its_head_while_typing() -> None:
    lines = SOURCE.split("\n")
    cfg = CompletionConfig()
    starts = set()
    for row in range(300, 320):  # typing down twenty lines
        win = make_window("a.py", "\n".join(lines[:row]) + "\n    ", "\n".join(lines[row:]), cfg)
        starts.add(win.start_line)
        assert win.start_line % cfg.window_step == 0 and win.prefix.startswith(
            lines[win.start_line]
        )
        assert win.suffix.count("\n") == cfg.lines_after_new  # a line start: a new spot
        typing = make_window("a.py", win.prefix + "ret", win.suffix, cfg, keep=win.start_line)
        assert typing.suffix.count("\n") == cfg.lines_after  # mid-line: the short suffix
        assert typing.start_line == win.start_line
    assert len(starts) == 1  # the head did not move


def test_typed_through_and_repeated_cursor_are_cache_hits() -> None:
    gen = Recorder(script="total = compute(x)")
    done, _ = engine(gen)
    after = "\n" + "\n".join(f"    step_{i}(x)" for i in range(40))  # read longer at the line start
    first = done.complete("a.py", "python", "def g(x):\n    ", after)
    assert first.text == "total = compute(x)" and not first.cached
    again = done.complete("a.py", "python", "def g(x):\n    ", after)
    typed = done.complete("a.py", "python", "def g(x):\n    tot", after)
    assert again.cached and typed.cached and typed.text == "al = compute(x)"
    assert len(gen.prompts) == 1  # one model call for three requests
    other = done.complete(
        "a.py", "python", "def g(x):\n    z", after
    )  # typed something else: a new answer
    assert not other.cached and len(gen.prompts) == 2


def test_context_is_chosen_once_per_window_and_comes_first() -> None:
    hit = Hit(
        path="lib/util.py",
        start_line=1,
        end_line=2,
        symbol="helper",
        language="python",
        kind="function",
        score=1.0,
        snippet="def helper(x):\n    return x * 2",
    )
    gen = Recorder()
    done, searched = engine(gen, [hit])
    for typed in ("", "r", "re", "ret"):
        done.complete("a.py", "python", f"def g(x):\n    {typed}", "\n")
    assert len(searched) == 1
    heads = {p[0].split("def g")[0] for p in gen.prompts}
    assert (
        len(heads) == 1 and "Related code from lib/util.py" in heads.pop()
    )  # the fake has no repo format


def test_definitions_of_names_used_before_the_cursor_come_first() -> None:
    def hit(path: str, symbol: str, text: str) -> Hit:
        return Hit(path, 1, 2, symbol, "python", "function", 1.0, text)

    asked: list[list[str]] = []

    def definitions(names: Any) -> list[Hit]:
        asked.append(list(names))
        return [
            hit("lib/money.py", "to_cents", "def to_cents(amount):\n    return round(amount * 100)")
        ]

    gen = Recorder()
    cfg = CompletionConfig(speculate=False)
    searched = [hit("lib/other.py", "unrelated", "def unrelated():\n    return 0")]
    done = Completer(lambda: gen, lambda q, k: searched, cfg, definitions=definitions)
    done.complete(
        "a.py", "python", "def total(order):\n    cents = to_cents(order.amount)\n    ", "\n"
    )
    assert asked == [["amount", "order", "to_cents", "cents", "total"]]  # nearest use first
    head = gen.prompts[0][0]
    assert head.index("lib/money.py") < head.index("lib/other.py") < head.index("def total")


def test_recent_edits_of_other_files_are_context() -> None:
    gen = Recorder()
    done, _ = engine(gen)
    done.note_buffer("lib/models.py", "class Invoice:\n    total: int\n", 0)
    done.note_buffer("lib/unrelated.py", "def render_page():\n    pass\n", 0)
    done.note_buffer("a.py", "ignored = 'same file'\n", 0)
    done.complete("a.py", "python", "def g(invoice: Invoice):\n    ", "\n")
    head = gen.prompts[0][0]
    assert "lib/models.py" in head and "render_page" not in head and "same file" not in head


def test_secrets_never_reach_the_model() -> None:
    gen = Recorder()
    done, _ = engine(gen)
    key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
    done.note_buffer("cfg.py", 'DB_PASSWORD = "Xk9#mQ2vL7pR4tY8"\n', 0)
    done.complete(
        "a.py", "python", f'API_KEY = "{key}"\ndef g():\n    ', f'\nTOKEN = "ghp_{key[:36]}"\n'
    )
    seen = json.dumps(gen.prompts)
    assert key not in seen and "Xk9#mQ2vL7pR4tY8" not in seen and "[REDACTED:" in seen


@pytest.mark.parametrize(
    "prefix, suffix",
    [
        ("x = 1\n" * 900_000, "\n"),  # a 5 MB buffer
        ("s = '" + "a" * 20_000, "'\n"),  # a 20,000-character line
        ("\x00\x01\x02\xff binary \x00", ""),
        ("line one\r\nline two\r\n    ", "\r\nend\r\n"),
        ("caf\udce9 = 1\n", "\n"),  # non-UTF-8 bytes decoded with surrogate escapes
        ("", ""),
    ],
    ids=["5MB", "long-line", "binary", "crlf", "non-utf8", "empty"],
)
def test_hostile_buffers_complete_or_come_back_empty(prefix: str, suffix: str) -> None:
    gen = Recorder()
    done, _ = engine(gen)
    started = time.perf_counter()
    result = done.complete("a.py", "python", prefix, suffix)
    assert isinstance(result.text, str) and time.perf_counter() - started < 60
    assert all(len(p[0]) <= CompletionConfig().max_window_chars + 200 for p in gen.prompts)


# --- the real model ---------------------------------------------------------------------------------------


@pytest.fixture
def qwen_assistant(
    make_repo: Callable[..., Any], default_llm_path: Path, minilm: Any
) -> Iterator[Assistant]:
    repo = make_repo(
        {"calc.py": SOURCE[:3000], "lib/util.py": "def helper(x):\n    return x * 2\n"}
    )
    a = Assistant(
        repo.root,
        load_settings(repo.root, llm=str(default_llm_path), big_llm="none", reranker="none"),
        embedder=minilm,
    )
    a.index()
    yield a
    a.close()


def test_typing_reuses_the_cached_prompt_and_chat_does_not_evict_it(
    qwen_assistant: Assistant,
) -> None:
    a = qwen_assistant
    text = SOURCE[:3000]
    head = text[: text.index("def f_20")] + "def f_20(x):\n    "
    assert a.prewarm("calc.py", head, "\n") > 100
    first = a.complete("calc.py", head, "\n")
    assert first.cached_tokens >= 0.8 * first.prompt_tokens  # the prewarm had read it
    for _event in a.ask(
        "what does helper do?", Conversation(), expert="small"
    ):  # chat on its own instance
        pass
    typed = a.complete("calc.py", head + "re", "\n")
    if (
        not typed.cached
    ):  # a typed-through hit needs no model at all; otherwise the prompt must come from cache
        assert typed.cached_tokens >= 0.8 * typed.prompt_tokens, (
            typed.cached_tokens,
            typed.prompt_tokens,
        )
    assert a.generator("fim") is not a.generator("small")


def test_generation_stops_at_the_time_cap(qwen_assistant: Assistant) -> None:
    a = qwen_assistant
    fast = Completer(
        lambda: a.generator("fim"),
        lambda q, k: [],
        CompletionConfig(
            speculate=False,
            t_max_ms=0,
            t_hard_ms=1,
            t_max_typing_ms=0,
            t_hard_typing_ms=1,
            n_predict=64,
        ),
    )
    result = fast.complete("calc.py", "python", 'def long_docstring():\n    """', "\n")
    assert result.text.count("\n") <= 1 and len(result.text) < 200


# --- llama-server's /infill -------------------------------------------------------------------------------


class _Infill(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Infill.bodies.append(body)
        if self.path != "/infill":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece, stop in (("return ", False), ("x + 1", False), ("", True)):
            event = {"content": piece, "stop": stop}
            if stop:
                event["timings"] = {"prompt_n": 12, "cache_n": 300}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


def test_remote_infill_speaks_llama_server() -> None:
    from localpilot.experts.remote import OpenAIGenerator

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Infill)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gen = OpenAIGenerator(f"http://127.0.0.1:{server.server_port}", "coder")
        text = "".join(
            t.text for t in gen.infill("def f(x):\n    ", "\n", 16, extra=[("lib/a.py", "A = 1\n")])
        )
        assert text == "return x + 1"
        body = _Infill.bodies[-1]
        assert body["cache_prompt"] is True and body["input_extra"] == [
            {"filename": "lib/a.py", "text": "A = 1\n"}
        ]
        assert (gen.last.prompt_tokens, gen.last.cached_tokens) == (312, 300)
    finally:
        server.shutdown()


def test_mid_line_the_soft_cap_is_the_typing_one() -> None:
    """At the start of a line a completion may run on for lines; mid-line (the user typing) it stops at the
    first line break once the typing cap has passed."""
    gen = Recorder("a\n b\n c\n d")
    gen.delay = 0.01
    done, _ = engine(gen, t_max_ms=60_000, t_max_typing_ms=0)
    assert done.complete("m.py", "python", "def f():\n    ", "\n").text.count("\n") == 3
    assert done.complete("m.py", "python", "def f():\n    x = ", "\n").text == "a"


def test_a_cursor_past_the_end_is_clamped() -> None:
    from lsprotocol import types as t

    from localpilot.editor.lsp_server import _split_at

    assert _split_at("a = 1\nb = 2", t.Position(line=9, character=40)) == ("a = 1\nb = 2", "")
    assert _split_at("a = 1\nb = 2", t.Position(line=0, character=99)) == ("a = 1", "\nb = 2")
    assert _split_at("", t.Position(line=3, character=3)) == ("", "")


def test_a_slow_model_reads_the_window_before_any_context() -> None:
    body = "\n".join(f"    step_{i} = helper(step_{i - 1})" for i in range(1, 60))
    hit = Hit(
        path="lib/util.py",
        start_line=1,
        end_line=24,
        symbol="helper",
        language="python",
        kind="function",
        score=1.0,
        snippet="\n".join(f"def helper_{i}(x):  # some documented helper" for i in range(24)),
    )
    prefix = f"def g(x):\n{body}\n    "
    slow, searched = engine(Recorder(), [hit])
    slow._prompt_rate = 100.0  # tokens/s: the 2 s budget is nearly all window
    win = make_window("a.py", prefix, "\n", slow.config, slow._window_chars())
    chosen = slow._choose(win)
    assert sum(len(c.text) for c in chosen) <= int(slow._budget_tokens() * 3.2) - len(win.prefix)
    assert all(c.text.count("\n") < 23 for c in chosen)  # cut to what the window left
    slow._prompt_rate = (
        10.0  # slower still: the window takes the whole budget and nothing is searched
    )
    searched.clear()
    win = make_window("a.py", "x = 1\n" * 400, "\n", slow.config, slow._window_chars())
    assert slow._choose(win) == () and searched == []
    fast, _ = engine(Recorder(), [hit])
    fast._prompt_rate = 5000.0
    chosen = fast._choose(make_window("a.py", prefix, "\n", fast.config, fast._window_chars()))
    assert [c.path for c in chosen] == ["lib/util.py"] and chosen[0].text.count("\n") == 23


def test_other_file_context_is_a_setting_off_by_default(make_repo: Callable[..., Any]) -> None:
    """Off for the shipped models (it lowered their quality, bench/completion_context.py); a user with a
    base FIM model turns it on with ``completion_context``."""
    repo = make_repo({"a.py": "x = 1\n"})
    with Assistant(repo.root, load_settings(repo.root)) as plain:
        assert plain.parts.completer.config.extra_chunks == 0
    with Assistant(repo.root, load_settings(repo.root, completion_context=3)) as rich:
        assert rich.parts.completer.config.extra_chunks == 3
