"""`localpilot lsp`: a language server over stdio (pygls + lsprotocol) on the one Assistant.

Completion (fill in the middle; `textDocument/completion` and `textDocument/inlineCompletion`), hover
(definitions and uses from the index, no LLM), code actions on a selection (Explain, Suggest tests, Find
related code) and `workspace/executeCommand` (`localpilot.ask`, `localpilot.search`, and the actions).
Open and changed buffers are indexed as you type, so unsaved code is searchable in the session.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer

from localpilot import __version__
from localpilot.answer import Answer, Conversation
from localpilot.editor.guard import LockedWriter, lsp_filter, start_filter
from localpilot.errors import LocalpilotError
from localpilot.paths import inside
from localpilot.service import Assistant

log = logging.getLogger(__name__)
BUFFER_DEBOUNCE_S = 0.5
PREWARM_LINE = (
    256  # a newly opened file is prewarmed with the cursor at the end of its first window
)
ACTIONS = {
    "localpilot.explain": "Explain",
    "localpilot.suggestTests": "Suggest tests",
    "localpilot.findRelated": "Find related code",
}
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class LocalpilotLanguageServer(LanguageServer):
    def __init__(self, assistant: Assistant) -> None:
        super().__init__("localpilot", __version__)
        self.assistant = assistant
        self.pending: dict[
            str, threading.Event
        ] = {}  # uri -> cancel flag of the running completion
        self.buffer_tasks: dict[str, asyncio.Task[None]] = {}
        self.warming: asyncio.Task[None] | None = None  # models loading after ``initialized``
        self.cursor: dict[
            str, t.Position
        ] = {}  # uri -> where the last completion was asked (for prewarming)

    def rel_path(self, uri: str) -> str | None:
        """Workspace-relative path of a file: URI, or None for anything outside the repository."""
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            return None
        full = Path(unquote(parsed.path))
        try:
            rel = full.resolve().relative_to(self.assistant.root.resolve()).as_posix()
        except (OSError, ValueError):
            return None
        return rel if inside(self.assistant.root, rel) else None


def build(assistant: Assistant) -> LocalpilotLanguageServer:
    server = LocalpilotLanguageServer(assistant)

    @server.feature(
        t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=[".", "(", " "])
    )
    async def completion(
        ls: LocalpilotLanguageServer, params: t.CompletionParams
    ) -> t.CompletionList:
        text = await _complete(ls, params.text_document.uri, params.position)
        items = (
            [
                t.CompletionItem(
                    label=text.splitlines()[0][:60] or text[:60],
                    insert_text=text,
                    kind=t.CompletionItemKind.Text,
                    detail="localpilot",
                    sort_text="0",
                )
            ]
            if text.strip()
            else []
        )
        return t.CompletionList(is_incomplete=True, items=items)

    @server.feature(t.TEXT_DOCUMENT_INLINE_COMPLETION, t.InlineCompletionOptions())
    async def inline(
        ls: LocalpilotLanguageServer, params: t.InlineCompletionParams
    ) -> t.InlineCompletionList:
        text = await _complete(ls, params.text_document.uri, params.position)
        items = [t.InlineCompletionItem(insert_text=text)] if text.strip() else []
        return t.InlineCompletionList(items=items)

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    async def hover(ls: LocalpilotLanguageServer, params: t.HoverParams) -> t.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        name = _word_at(doc.lines, params.position)
        if not name:
            return None
        try:
            info = await asyncio.to_thread(ls.assistant.symbol_info, name)
        except LocalpilotError:
            return None
        if not info["definitions"] and not info["usages"]:
            return None
        return t.Hover(
            contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=_hover_text(name, info))
        )

    @server.feature(
        t.TEXT_DOCUMENT_CODE_ACTION, t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.Empty])
    )
    def code_actions(
        ls: LocalpilotLanguageServer, params: t.CodeActionParams
    ) -> list[t.CodeAction]:
        args = [params.text_document.uri, _range_dict(params.range)]
        return [
            t.CodeAction(
                title=f"localpilot: {title}",
                kind=t.CodeActionKind.Empty,
                command=t.Command(title=title, command=name, arguments=args),
            )
            for name, title in ACTIONS.items()
        ]

    @server.command("localpilot.ask")
    async def ask(ls: LocalpilotLanguageServer, question: str) -> dict[str, Any]:
        return await _answer(ls, str(question))

    @server.command("localpilot.search")
    async def search(ls: LocalpilotLanguageServer, *args: Any) -> list[dict[str, Any]]:
        """Arguments: query, optional k."""
        if not args or not str(args[0]).strip():
            raise LocalpilotError("localpilot.search needs a query")
        hits = await asyncio.to_thread(
            ls.assistant.search, str(args[0]), int(args[1]) if len(args) > 1 else 10
        )
        return [h.to_dict() for h in hits]

    @server.command("localpilot.explain")
    async def explain(
        ls: LocalpilotLanguageServer, uri: str, rng: dict[str, Any]
    ) -> dict[str, Any]:
        return await _on_selection(ls, uri, rng, "Explain what this code does and why")

    @server.command("localpilot.suggestTests")
    async def suggest(
        ls: LocalpilotLanguageServer, uri: str, rng: dict[str, Any]
    ) -> dict[str, Any]:
        return await _on_selection(
            ls, uri, rng, "Suggest tests (names and the cases each checks) for this code"
        )

    @server.command("localpilot.findRelated")
    async def related(
        ls: LocalpilotLanguageServer, uri: str, rng: dict[str, Any]
    ) -> dict[str, Any]:
        path, code = _selection(ls, uri, rng)
        hits = await asyncio.to_thread(ls.assistant.search, code[:2000], 10)
        hits = [h for h in hits if not (h.path == path and h.start_line <= rng["end"]["line"] + 1)][
            :8
        ]
        text = (
            "\n".join(f"{h.path}:{h.start_line}-{h.end_line} {h.symbol}" for h in hits)
            or "nothing related found"
        )
        ls.window_show_message(
            t.ShowMessageParams(type=t.MessageType.Info, message=f"Related code:\n{text}")
        )
        return {"hits": [h.to_dict() for h in hits]}

    @server.feature(t.INITIALIZED)
    async def initialized(ls: LocalpilotLanguageServer, params: t.InitializedParams) -> None:
        ls.warming = asyncio.get_running_loop().create_task(_warm_up(ls))

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LocalpilotLanguageServer, params: t.DidOpenTextDocumentParams) -> None:
        _schedule_buffer(ls, params.text_document.uri, None)

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LocalpilotLanguageServer, params: t.DidChangeTextDocumentParams) -> None:
        first = params.content_changes[0] if params.content_changes else None
        line = (
            first.range.start.line
            if isinstance(first, t.TextDocumentContentChangePartial)
            else None
        )
        _schedule_buffer(ls, params.text_document.uri, line)

    return server


async def _complete(ls: LocalpilotLanguageServer, uri: str, pos: t.Position) -> str:
    """Fill in the middle at ``pos``; a newer request for the same document supersedes this one, and a
    client's $/cancelRequest stops generation (pygls answers it with RequestCancelled)."""
    path = ls.rel_path(uri)
    if path is None:
        return ""
    prefix, suffix = _split_at(ls.workspace.get_text_document(uri).source, pos)
    ls.cursor[uri] = pos
    if previous := ls.pending.get(uri):
        previous.set()
    cancel = ls.pending[uri] = threading.Event()
    try:
        result = await asyncio.to_thread(ls.assistant.complete, path, prefix, suffix, cancel)
    except asyncio.CancelledError:
        cancel.set()
        raise
    except LocalpilotError as exc:
        ls.window_log_message(
            t.LogMessageParams(type=t.MessageType.Warning, message=f"localpilot: {exc}")
        )
        return ""
    finally:
        if ls.pending.get(uri) is cancel:
            del ls.pending[uri]
    return "" if cancel.is_set() else result.text


async def _answer(ls: LocalpilotLanguageServer, question: str) -> dict[str, Any]:
    def run() -> Answer:
        return ls.assistant.ask(question, Conversation()).result()

    ls.window_log_message(
        t.LogMessageParams(
            type=t.MessageType.Info, message=f"localpilot: answering {question[:80]}"
        )
    )
    try:
        answer = await asyncio.to_thread(run)
    except LocalpilotError as exc:
        ls.window_show_message(
            t.ShowMessageParams(type=t.MessageType.Error, message=f"localpilot: {exc}")
        )
        return {"error": str(exc)}
    sources = "\n".join(f"{c.path}:{c.start_line}-{c.end_line}" for c in answer.citations)
    ls.window_show_message(
        t.ShowMessageParams(
            type=t.MessageType.Info,
            message=answer.text + (f"\n\nSources:\n{sources}" if sources else ""),
        )
    )
    return answer.to_dict()


async def _on_selection(
    ls: LocalpilotLanguageServer, uri: str, rng: dict[str, Any], task: str
) -> dict[str, Any]:
    path, code = _selection(ls, uri, rng)
    start = rng["start"]["line"] + 1
    return await _answer(
        ls, f"{task}: the code in {path} at lines {start}-{rng['end']['line'] + 1}:\n{code[:3000]}"
    )


def _selection(ls: LocalpilotLanguageServer, uri: str, rng: dict[str, Any]) -> tuple[str, str]:
    path = ls.rel_path(uri)
    if path is None:
        raise LocalpilotError(f"{uri} is outside the workspace {ls.assistant.root}")
    lines = ls.workspace.get_text_document(uri).source.split("\n")
    return path, "\n".join(lines[rng["start"]["line"] : rng["end"]["line"] + 1])


def _range_dict(r: t.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


def _word_at(lines: Sequence[str], pos: t.Position) -> str:
    if pos.line >= len(lines):
        return ""
    for match in IDENT.finditer(lines[pos.line]):
        if match.start() <= pos.character <= match.end():
            return match.group(0)
    return ""


def _hover_text(name: str, info: dict[str, list[dict[str, Any]]]) -> str:
    out = [f"**{name}**"]
    if info["definitions"]:
        out.append(
            "Defined at: "
            + ", ".join(
                f"`{d['path']}:{d['line']}` ({d['kind']} {d['symbol']})"
                for d in info["definitions"]
            )
        )
    if info["usages"]:
        out.append(
            "Used at:\n"
            + "\n".join(f"- `{u['path']}:{u['line']}` {u['text']}" for u in info["usages"])
        )
    return "\n\n".join(out)


async def _warm_up(ls: LocalpilotLanguageServer) -> None:
    """Load the completion model and the search behind its context while the user opens a file."""
    try:
        await asyncio.to_thread(ls.assistant.warm_up)
    except Exception as exc:  # a model that cannot load is reported by the request that needs it
        log.warning("could not warm up: %s", exc)


def _split_at(source: str, pos: t.Position) -> tuple[str, str]:
    """(prefix, suffix) of a document at ``pos``; a cursor past the end is clamped to it."""
    lines = source.split("\n")
    row = min(pos.line, len(lines) - 1)
    line = lines[row]
    col = len(line) if pos.line >= len(lines) else min(pos.character, len(line))
    return "\n".join([*lines[:row], line[:col]]), "\n".join([line[col:], *lines[row + 1 :]])


def _schedule_buffer(ls: LocalpilotLanguageServer, uri: str, line: int | None) -> None:
    """Debounced: shortly after the last change, index the buffer's text, offer the edited place as context for
    other files' completions, and prewarm the completion model where the user was completing (or, for a newly
    opened file, at the end of its first window, which caches the longest prompt prefix completions share)."""
    if (task := ls.buffer_tasks.get(uri)) and not task.done():
        task.cancel()

    async def later() -> None:
        await asyncio.sleep(BUFFER_DEBOUNCE_S)
        path = ls.rel_path(uri)
        if path is None:
            return
        text = ls.workspace.get_text_document(uri).source
        cursor = ls.cursor.get(uri)
        try:
            await asyncio.to_thread(ls.assistant.index_buffer, path, text)
            ls.assistant.note_buffer(
                path, text, line if line is not None else (cursor.line if cursor else 0)
            )
            at = cursor or t.Position(line=min(text.count("\n"), PREWARM_LINE), character=0)
            await asyncio.to_thread(ls.assistant.prewarm, path, *_split_at(text, at))
        except LocalpilotError as exc:
            log.warning("could not index or prewarm the buffer of %s: %s", path, exc)

    ls.buffer_tasks[uri] = asyncio.get_running_loop().create_task(later())


def serve(assistant: Assistant, wire: LockedWriter) -> None:
    """Serve LSP on stdin and ``wire`` (the claimed stdout) until the client exits."""
    source = start_filter(sys.stdin.buffer, lsp_filter(wire))
    build(assistant).start_io(source, wire)  # type: ignore[arg-type]
