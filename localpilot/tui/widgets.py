"""Widgets of the TUI: the file preview with cited lines marked, and the model picker."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from localpilot.index.secrets import redact
from localpilot.paths import inside

CONTEXT_BEFORE = 3
CONTEXT_AFTER = 40


class Preview(VerticalScroll):
    """A file at a line range, syntax-highlighted, the range marked in the gutter."""

    def __init__(self, root: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.root = root
        self.shown: tuple[str, int, int] | None = None
        self.content: RenderableType = Text("")

    def compose(self) -> ComposeResult:
        yield Static(Text("Select a source to preview it.", style="dim"), id="preview-body")

    def show(self, path: str, start: int, end: int) -> None:
        body = self.query_one("#preview-body", Static)
        full = inside(self.root, path)
        if full is None or not full.is_file():
            self.content = Text(
                f"{path} is not a file in this repository (moved or deleted?)", style="italic"
            )
            body.update(self.content)
            return
        code = redact(full.read_text(encoding="utf-8", errors="replace"), path)[
            0
        ]  # as the index holds it
        last = code.count("\n") + 1
        syntax = Syntax(
            code,
            Syntax.guess_lexer(str(full), code[:4000]),
            line_numbers=True,
            theme="ansi_dark",
            line_range=(max(1, start - CONTEXT_BEFORE), min(last, end + CONTEXT_AFTER)),
            highlight_lines=set(range(start, end + 1)),
            word_wrap=False,
            background_color="default",
        )
        self.content = Group(Text(f"{path}:{start}-{end}", style="bold"), syntax)
        body.update(self.content)
        self.shown = (path, start, end)
        self.scroll_home(animate=False)


class ModelPicker(ModalScreen[str | None]):
    """Pick the code model that answers (installed presets; local files via `localpilot models use`)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, models: list[tuple[str, str]], current: str) -> None:
        super().__init__()
        self.models, self.current = models, current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Answer with which model?  (Enter picks, Esc closes)")
            options = [
                Option(f"{'● ' if name == self.current else '  '}{name}  {desc}", id=name)
                for name, desc in self.models
            ]
            yield OptionList(*options, id="models")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
