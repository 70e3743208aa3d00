"""TUI behaviour with Textual's pilot, over the fakes that stand beside the real experts (HashEmbedder,
MemoryStore, ScriptedGenerator); SVG snapshots of each screen. The real models drive the app in
test_tui_tmux.py."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import Input, Markdown, OptionList, Static

from localpilot.config import load_settings
from localpilot.experts.embedder import HashEmbedder
from localpilot.experts.llm import ScriptedGenerator
from localpilot.service import Assistant
from localpilot.store import MemoryStore
from localpilot.tui.app import LocalpilotApp
from localpilot.tui.widgets import Preview

FILES = {
    "storage/uploader.py": "MAX_RETRIES = 4\n\n\ndef upload_with_retry(client, path):\n"
    "    for attempt in range(MAX_RETRIES):\n        if client.put(path):\n"
    "            return True\n    return False\n",
    "app/dates.py": "def parse_date(text):\n    year, month, day = text.split('-')\n"
    "    return int(year), int(month), int(day)\n",
}
ANSWER = "Uploads are retried up to 4 times in `upload_with_retry` [storage/uploader.py:4-8]."


@pytest.fixture
def make_app(make_repo: Callable[..., Any]) -> Callable[..., LocalpilotApp]:
    repo = make_repo(FILES)

    def build(
        generator: ScriptedGenerator | None = None, index: bool = True, **settings: Any
    ) -> LocalpilotApp:
        gens = {"small": generator or ScriptedGenerator(script=ANSWER)}
        a = Assistant(
            repo.root,
            load_settings(repo.root, reranker="none", big_llm="none", **settings),
            embedder=HashEmbedder(),
            store=MemoryStore(),
            generators=gens,
        )
        if index:
            a.index()
        return LocalpilotApp(a, index_on_start=False)

    return build


async def ask(pilot: Any, question: str) -> None:
    pilot.app.query_one("#question", Input).value = question
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def chat_text(app: LocalpilotApp) -> str:
    parts = [str(w.render()) for w in app.query("#chat-log Static")]
    parts += [w.source for w in app.query("#chat-log Markdown") if isinstance(w, Markdown)]
    return "\n".join(parts)


def preview_text(app: LocalpilotApp, which: str) -> str:
    from rich.console import Console

    console = Console(width=120, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(app.query_one(f"#{which}", Preview).content)
    return console.export_text()


async def test_ask_streams_an_answer_lists_sources_and_previews_the_cited_lines(
    make_app: Callable,
) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, "how many times do we retry uploads?")
        assert ANSWER in chat_text(app)
        assert "small: a question about the code" in chat_text(app)
        sources = app.query_one("#sources", OptionList)
        assert sources.option_count == 1 and "storage/uploader.py:4-8" in str(
            sources.get_option_at_index(0).prompt
        )
        preview = preview_text(app, "chat-preview")
        assert "storage/uploader.py:4-8" in preview and "def upload_with_retry" in preview
        assert "last:small" in str(app.query_one("#status", Static).render())


async def test_follow_up_and_new_conversation(make_app: Callable) -> None:
    gen = ScriptedGenerator(script=ANSWER)
    app = make_app(gen)
    async with app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, "how many times do we retry uploads?")
        await ask(pilot, "and what does it return?")
        assert len(app.conversation.turns) == 2 and len(gen.calls[-1]) == 4  # system, q1, a1, q2
        await pilot.press("ctrl+n")
        assert app.conversation.turns == [] and not app.query("#chat-log Markdown")


async def test_search_mode_lists_hits_preview_follows_and_enter_copies(make_app: Callable) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await pilot.press(*"parse date")
        await pilot.pause(0.4)
        await app.workers.wait_for_complete()
        await pilot.pause()
        hits = app.query_one("#hits", OptionList)
        assert hits.option_count >= 1 and app.hits[0].path == "app/dates.py"
        assert "def parse_date" in preview_text(app, "search-preview")
        hits.focus()
        await pilot.press("down")
        assert app.hits[1].path in preview_text(app, "search-preview")
        await pilot.press("up", "enter")
        assert app.clipboard == "app/dates.py:1"


async def test_escape_stops_a_generation_promptly(make_app: Callable) -> None:
    slow = ScriptedGenerator(script=" ".join(f"w{i}" for i in range(400)), delay=0.02)
    app = make_app(slow)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#question", Input).value = "explain the uploader"
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert slow.last.gen_tokens < 100 and "(stopped)" in chat_text(app)
        assert app.cancel is None  # ready for the next question


async def test_errors_are_notices_not_tracebacks(make_app: Callable) -> None:
    app = make_app(index=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, "how many times do we retry uploads?")
        assert any("index is not ready" in n.message for n in app._notifications)
    broken = make_app(llm="/nonexistent/model.gguf")
    broken.assistant.parts._generators.clear()  # type: ignore[union-attr]
    async with broken.run_test(size=(100, 30)) as pilot:
        await ask(pilot, "why is the retry count four?")
        assert any("model.gguf" in n.message for n in broken._notifications)
    no_repo = LocalpilotApp(None, error="/tmp is not inside a git repository")
    async with no_repo.run_test(size=(100, 30)):
        assert any("not inside a git repository" in n.message for n in no_repo._notifications)
        assert no_repo.query_one("#question", Input).disabled


async def test_background_index_then_status_counts(make_app: Callable) -> None:
    app = make_app(index=False)
    app.index_on_start = True
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(app.query_one("#status", Static).render())
        assert "2 files" in status and "watch:inotify" in status


async def test_model_picker_switches_the_answering_model(make_app: Callable) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause()
        picker = app.screen.query_one("#models", OptionList)
        names = [picker.get_option_at_index(i).id for i in range(picker.option_count)]
        assert "smollm2-135m" in names  # installed with the dev extras
        picker.highlighted = names.index("smollm2-135m")
        await pilot.press("enter")
        await pilot.pause()
        assert app.assistant.settings.llm == "smollm2-135m"  # type: ignore[union-attr]
        assert "smollm2-135m" in str(app.query_one("#status", Static).render())


# --- snapshots (80x24, the smallest supported terminal) ----------------------------------------------------


@pytest.fixture
def still_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timings shown in the UI are measured; freeze the clock the answer path reads so SVGs are stable."""
    import localpilot.asking

    class Still:
        @staticmethod
        def perf_counter() -> float:
            return 100.0

    monkeypatch.setattr(localpilot.asking, "time", Still)


async def settle(pilot: Any, ready: Callable[[], bool]) -> None:
    """Wait until the screen shows what the snapshot is of (CI machines are slow), with no blinking cursor."""
    for _ in range(200):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
        if ready():
            break
    for field in pilot.app.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_snapshot_chat(make_app: Callable, snap_compare: Any, still_clock: None) -> None:
    async def run_before(pilot: Any) -> None:
        await ask(pilot, "how many times do we retry uploads?")
        await settle(pilot, lambda: pilot.app.query_one("#sources", OptionList).option_count == 1)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_search(make_app: Callable, snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.press("f2")
        await settle(pilot, lambda: pilot.app.query_one("#query", Input).has_focus)
        await pilot.press(*"retry")
        await settle(pilot, lambda: pilot.app.query_one("#hits", OptionList).option_count > 0)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_model_picker(make_app: Callable, snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.press("ctrl+o")
        await settle(pilot, lambda: bool(pilot.app.screen.query("#models")))

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_error(snap_compare: Any) -> None:
    app = LocalpilotApp(None, error="/tmp/x is not inside a git repository: cd into one")

    async def run_before(pilot: Any) -> None:
        await settle(pilot, lambda: True)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_preview_refuses_paths_outside_the_repo(tmp_path: Any) -> None:
    from localpilot.paths import inside

    (tmp_path / "repo").mkdir()
    (tmp_path / "repo-evil").mkdir()
    assert inside(tmp_path / "repo", "a/b.py") == (tmp_path / "repo" / "a" / "b.py").resolve()
    assert inside(tmp_path / "repo", "../repo-evil/x.py") is None
    assert inside(tmp_path / "repo", "/etc/passwd") is None
