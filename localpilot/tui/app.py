"""The Textual app: chat with citations, live search, background indexing, model picker.

Everything slow (indexing, retrieval, generation) runs in thread workers and talks back with
``call_from_thread``, so the UI stays responsive; Esc (or Ctrl+C) stops a generation between tokens.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Footer,
    Input,
    Markdown,
    OptionList,
    ProgressBar,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from localpilot.answer import Answer, Conversation
from localpilot.errors import IndexBusy, IndexMissing, LocalpilotError
from localpilot.service import Assistant
from localpilot.tui.widgets import ModelPicker, Preview

STREAM_FLUSH_S = 0.05  # batch streamed tokens into one Markdown update per frame or so


class _Cancelled(Exception):
    """Raised from the indexer's progress callback when the app quits mid-index."""


class Commands(Provider):
    """Command palette entries (Ctrl+P)."""

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, LocalpilotApp)
        entries: list[tuple[str, Callable[[], Any]]] = [
            ("Re-index the repository", app.action_reindex),
            ("Switch model", app.action_pick_model),
            ("New conversation (clear chat)", app.action_new_conversation),
            ("Search mode", partial(app.action_show_tab, "search")),
            ("Chat mode", partial(app.action_show_tab, "chat")),
        ]
        matcher = self.matcher(query)
        for name, action in entries:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), action)


class LocalpilotApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "localpilot"
    COMMANDS = App.COMMANDS | {Commands}
    BINDINGS = [
        Binding("f1", "show_tab('chat')", "Chat"),
        Binding("f2", "show_tab('search')", "Search"),
        Binding("escape", "stop", "Stop answer"),
        Binding("ctrl+c", "stop_or_help", "Stop", show=False, priority=True),
        Binding("ctrl+n", "new_conversation", "New chat"),
        Binding("ctrl+r", "reindex", "Re-index"),
        Binding("ctrl+o", "pick_model", "Model"),
        Binding("ctrl+e", "open_editor", "Editor"),
    ]

    def __init__(
        self,
        assistant: Assistant | None,
        *,
        index_on_start: bool = True,
        error: str = "",
        watch: bool = True,
    ) -> None:
        super().__init__()
        self.watch_files = watch
        self.assistant = assistant
        self.index_on_start = index_on_start and assistant is not None
        self.startup_error = error
        self.conversation = Conversation()
        self.cancel: threading.Event | None = None
        self.hits: list[Any] = []
        self.sources: list[tuple[str, int, int]] = []
        self.last_expert = "-"
        self.indexing = ""
        self.watcher: Any = None

    @property
    def root(self) -> Path:
        return self.assistant.root if self.assistant else Path.cwd()

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield ProgressBar(id="index-progress", show_eta=False)
        with TabbedContent(initial="chat"):
            with TabPane("Chat", id="chat"), Horizontal(id="chat-split"):
                yield VerticalScroll(id="chat-log")
                with Vertical(id="chat-side"):
                    yield OptionList(id="sources")
                    yield Preview(self.root, id="chat-preview")
            with TabPane("Search", id="search"):
                yield Input(placeholder="search the code: words, identifiers, paths", id="query")
                with Horizontal(id="search-split"):
                    yield OptionList(id="hits")
                    yield Preview(self.root, id="search-preview")
        yield Input(placeholder="ask about this repository (Enter sends, Esc stops)", id="question")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sources", OptionList).border_title = "Sources"
        self.refresh_status()
        if self.startup_error:
            self.notify(self.startup_error, title="localpilot", severity="error", timeout=30)
            self.query_one("#chat-log").mount(Static(Text(self.startup_error, style="bold red")))
            self.query_one("#question", Input).disabled = True
            return
        self.query_one("#question", Input).focus()
        if self.index_on_start:
            self.action_reindex()

    def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    # --- status ---------------------------------------------------------------------------------------------

    def refresh_status(self) -> None:
        self.query_one("#status", Static).update(
            Text(self.status_line(), no_wrap=True, overflow="ellipsis")
        )

    def status_line(self) -> str:
        a = self.assistant
        if a is None:
            return "localpilot · no repository"
        try:
            files, chunks = a.state.counts()
        except Exception:  # the status bar must never take the app down
            files, chunks = 0, 0
        llm = a.settings.llm.rsplit("/", 1)[-1]
        loaded = a.loaded("small")
        where = f"/{loaded.info().get('backend', '?')}" if loaded is not None else ""
        index = self.indexing or f"{files} files {chunks} chunks"
        watch = self.watcher.mode if self.watcher is not None else "off"
        return (
            f"{a.root.name}  {index}  watch:{watch}  {Path(a.settings.embedder).name}  {llm}{where}  "
            f"last:{self.last_expert}"
        )

    # --- chat -----------------------------------------------------------------------------------------------

    @on(Input.Submitted, "#question")
    def submit_question(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question or self.assistant is None:
            return
        if self.cancel is not None:
            self.notify("still answering: press Esc to stop it first", severity="warning")
            return
        event.input.value = ""
        self.action_show_tab("chat")
        log = self.query_one("#chat-log", VerticalScroll)
        answer_md = Markdown("", classes="answer", open_links=False)
        meta = Static("thinking…", classes="meta")
        log.mount(Static(Text(f"> {question}"), classes="question"), answer_md, meta)
        log.scroll_end(animate=False)
        self.cancel = threading.Event()
        self.run_worker(
            partial(self._answer, question, answer_md, meta, self.cancel), thread=True, group="ask"
        )

    def _answer(self, question: str, md: Markdown, meta: Static, cancel: threading.Event) -> None:
        pending, flushed = "", time.monotonic()
        try:
            for event in self.assistant.ask(question, self.conversation, cancel=cancel):  # type: ignore[union-attr]
                if event.kind == "token":
                    pending += event.text
                    if time.monotonic() - flushed >= STREAM_FLUSH_S:
                        self.call_from_thread(self._append, md, pending)  # type: ignore[arg-type]  # textual's stub
                        pending, flushed = "", time.monotonic()
                elif event.kind in {"route", "escalate"}:
                    if (
                        event.kind == "escalate"
                    ):  # what was shown is replaced by the big model's answer
                        pending = ""
                        self.call_from_thread(self._restart, md)  # type: ignore[arg-type]
                    self.call_from_thread(meta.update, Text(f"{event.kind}: {event.text}"))
                elif event.kind == "done" and event.answer is not None:
                    self.call_from_thread(self._done, event.answer, md, meta, cancel.is_set())  # type: ignore[arg-type]
        except IndexMissing:
            self.call_from_thread(
                self._failed,
                meta,
                "the index is not ready yet: wait for indexing to finish "
                "(progress at the top) or press Ctrl+R to index",
            )
        except LocalpilotError as exc:
            self.call_from_thread(self._failed, meta, str(exc))
        finally:
            self.call_from_thread(self._idle)

    async def _restart(self, md: Markdown) -> None:
        await md.update("")

    async def _append(self, md: Markdown, text: str) -> None:
        await md.append(text)
        self.query_one("#chat-log", VerticalScroll).scroll_end(animate=False)

    async def _done(self, answer: Answer, md: Markdown, meta: Static, stopped: bool) -> None:
        await md.update(answer.text + ("\n\n*(stopped)*" if stopped else ""))
        self.last_expert = answer.expert
        t = answer.timings
        took = (
            f"ttft {t.get('ttft_ms', 0) / 1000:.1f}s · {t.get('gen_tokens_per_s', 0):.0f} tok/s"
            if answer.model
            else f"{t.get('retrieve_ms', 0) / 1000:.1f}s"
        )
        meta.update(
            Text(
                f"{answer.model.rsplit('/', 1)[-1] or 'search'} · {answer.expert}: {answer.reason} · "
                f"{took}"
                + (f" · {len(answer.left_out)} snippets did not fit" if answer.left_out else "")
            )
        )
        if answer.expert == "search":
            spans = [(h.path, h.start_line, h.end_line) for h in answer.hits]
        else:
            spans = [(c.path, c.start_line, c.end_line) for c in answer.citations]
        self._add_sources(spans)
        self.refresh_status()
        self.query_one("#chat-log", VerticalScroll).scroll_end(animate=False)

    def _add_sources(self, spans: list[tuple[str, int, int]]) -> None:
        fresh = [s for s in spans if s not in self.sources]
        self.sources = fresh + self.sources
        sources = self.query_one("#sources", OptionList)
        sources.clear_options()
        sources.add_options([Option(f"{p}:{s}-{e}") for p, s, e in self.sources])
        if fresh:
            sources.highlighted = 0
            self.query_one("#chat-preview", Preview).show(*fresh[0])

    def _failed(self, meta: Static, message: str) -> None:
        meta.update(Text(message, style="red"))
        self.notify(message, title="localpilot", severity="error", timeout=12)

    def _idle(self) -> None:
        self.cancel = None

    @on(OptionList.OptionHighlighted, "#sources")
    @on(OptionList.OptionSelected, "#sources")
    def open_source(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        if 0 <= event.option_index < len(self.sources):
            self.query_one("#chat-preview", Preview).show(*self.sources[event.option_index])

    # --- search ---------------------------------------------------------------------------------------------

    @on(Input.Changed, "#query")
    def query_changed(self, event: Input.Changed) -> None:
        self.live_search(event.value)

    @work(exclusive=True, group="search")
    async def live_search(self, query: str) -> None:
        await asyncio.sleep(0.25)  # debounce: a newer keystroke cancels this worker first
        if self.assistant is None or not query.strip():
            self._show_hits([])
            return
        try:
            hits = await asyncio.to_thread(self.assistant.search, query, 20)
        except IndexMissing:
            self.notify(
                "the index is not ready yet: wait for indexing to finish", severity="warning"
            )
            return
        except LocalpilotError as exc:
            self.notify(str(exc), title="localpilot", severity="error", timeout=12)
            return
        self._show_hits(hits)

    def _show_hits(self, hits: list[Any]) -> None:
        self.hits = hits
        view = self.query_one("#hits", OptionList)
        view.clear_options()
        view.add_options(
            [
                Option(
                    Text.assemble(
                        (f"{h.path}:{h.start_line}-{h.end_line}", "bold"),
                        f"  {h.symbol}" if h.symbol else "",
                        (f"  {h.score:.2f}", "dim"),
                    )
                )
                for h in hits
            ]
        )
        if hits:
            view.highlighted = 0
            self.query_one("#search-preview", Preview).show(
                hits[0].path, hits[0].start_line, hits[0].end_line
            )

    @on(OptionList.OptionHighlighted, "#hits")
    def preview_hit(self, event: OptionList.OptionHighlighted) -> None:
        if 0 <= event.option_index < len(self.hits):
            h = self.hits[event.option_index]
            self.query_one("#search-preview", Preview).show(h.path, h.start_line, h.end_line)

    @on(OptionList.OptionSelected, "#hits")
    def copy_hit(self, event: OptionList.OptionSelected) -> None:
        if 0 <= event.option_index < len(self.hits):
            h = self.hits[event.option_index]
            self.copy_to_clipboard(f"{h.path}:{h.start_line}")
            self.notify(f"copied {h.path}:{h.start_line}  (Ctrl+E opens it in $EDITOR)")

    # --- actions --------------------------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_tab(tab == "chat")

    @on(TabbedContent.TabActivated)
    def tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self._focus_tab(event.pane.id == "chat")

    def _focus_tab(self, chat: bool) -> None:
        self.query_one("#question", Input).display = chat
        self.query_one("#question" if chat else "#query", Input).focus()

    def action_stop(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
            self.notify("stopping the answer")

    def action_stop_or_help(self) -> None:
        if self.cancel is not None:
            self.action_stop()
        else:
            self.action_help_quit()

    def action_new_conversation(self) -> None:
        self.action_stop()
        self.conversation = Conversation()
        self.query_one("#chat-log", VerticalScroll).remove_children()
        self.sources = []
        self.query_one("#sources", OptionList).clear_options()
        self.notify("new conversation")

    def action_reindex(self) -> None:
        if self.assistant is not None:
            self.run_worker(self._index, thread=True, group="index", exclusive=True)

    def _index(self) -> None:
        worker = get_current_worker()
        bar = self.query_one("#index-progress", ProgressBar)
        self.call_from_thread(bar.add_class, "running")

        def progress(p: Any) -> None:
            if worker.is_cancelled:
                raise _Cancelled
            if p.stage == "embedding":  # every file is read: keyword and symbol search work already
                self.indexing = (
                    f"embedding {p.vectors_done}/{p.vectors_total} chunks · searchable now"
                )
                total, done = p.vectors_total, p.vectors_done
            else:
                self.indexing = (
                    f"indexing {p.files_done}/{p.files_total} files · {p.chunks_done} chunks"
                )
                total, done = p.files_total, p.files_done
            self.call_from_thread(bar.update, total=max(total, 1), progress=done)
            self.call_from_thread(self.refresh_status)

        self.indexing = "indexing…"
        self.call_from_thread(self.refresh_status)
        try:
            stats = self.assistant.index(progress)  # type: ignore[union-attr]
            self.call_from_thread(self.notify, stats.summary(), title="index up to date")
            if self.watch_files and self.watcher is None and not worker.is_cancelled:
                self.watcher = self.assistant.watch(  # type: ignore[union-attr]
                    lambda _stats: self.call_from_thread(self.refresh_status)
                )
        except _Cancelled:
            return
        except IndexBusy as exc:
            self.call_from_thread(
                self.notify, f"{exc}; searching the index as it is", severity="warning"
            )
        except LocalpilotError as exc:
            self.call_from_thread(
                self.notify, str(exc), title="indexing failed", severity="error", timeout=20
            )
        finally:
            self.indexing = ""
            if not worker.is_cancelled:
                self.call_from_thread(bar.remove_class, "running")
                self.call_from_thread(self.refresh_status)

    def action_pick_model(self) -> None:
        if self.assistant is None:
            return
        from localpilot.experts.registry import list_llms

        installed = [
            (s.name, f"{s.family} {s.quantization} ({s.role})")
            for s in list_llms(self.assistant.settings.models_dir)
            if s.installed
        ]
        if not installed:
            self.notify(
                "no code model is installed: run `localpilot models install`", severity="error"
            )
            return
        self.push_screen(ModelPicker(installed, self.assistant.settings.llm), self._picked)

    def _picked(self, name: str | None) -> None:
        if name and self.assistant is not None and name != self.assistant.settings.llm:
            self.assistant.use_llm(name)
            self.notify(f"answering with {name} from the next question")
            self.refresh_status()

    def action_open_editor(self) -> None:
        target = self._current_target()
        if target is None:
            self.notify("select a search result or a source first", severity="warning")
            return
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        path, line = target
        with self.suspend():
            subprocess.run([*shlex.split(editor), f"+{line}", str(self.root / path)], check=False)

    def _current_target(self) -> tuple[str, int] | None:
        search = self.query_one(TabbedContent).active == "search"
        items = (
            [(h.path, h.start_line) for h in self.hits]
            if search
            else [(p, s) for p, s, _ in self.sources]
        )
        index = self.query_one("#hits" if search else "#sources", OptionList).highlighted
        return items[index] if index is not None and 0 <= index < len(items) else None
