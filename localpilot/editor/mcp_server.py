"""`localpilot mcp`: a Model Context Protocol server over stdio (the `mcp` SDK) on the one Assistant.

Tools: search_code, get_snippet, ask, suggest_tests, index_status. Each has a JSON schema (from its type
hints) and fails with a clear ToolError, never a traceback on the wire.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from typing import Any

import anyio
from mcp.server import MCPServer, Server, ServerRequestContext
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.stdio import stdio_server
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    InputRequiredResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
)

from localpilot.answer import Conversation
from localpilot.editor.guard import LockedWriter, line_filter, start_filter
from localpilot.errors import LocalpilotError
from localpilot.paths import inside
from localpilot.service import Assistant

log = logging.getLogger(__name__)
MAX_SNIPPET_LINES = 400


def build(assistant: Assistant) -> Server[Any]:
    """A low-level ``Server`` (its public ``run`` takes any streams) serving the tools of an MCPServer registry."""
    registry = MCPServer(
        "localpilot"
    )  # the tools only: JSON schemas from type hints, argument validation

    @registry.tool()
    async def search_code(query: str, k: int = 10) -> list[dict[str, Any]]:
        """Search the repository by meaning and keywords; returns ranked hits with path, lines, symbol, snippet."""
        if not query.strip():
            raise ToolError("query is empty")
        hits = await _call(assistant.search, query, max(1, min(int(k), 50)))
        return [h.to_dict() for h in hits]

    @registry.tool()
    def get_snippet(path: str, start: int = 1, end: int = 0) -> dict[str, Any]:
        """Lines start..end (1-based, inclusive; end 0 = start+100) of a file in the repository."""
        try:
            return assistant.snippet(path, start, end, MAX_SNIPPET_LINES)
        except LocalpilotError as exc:
            raise ToolError(str(exc)) from exc

    @registry.tool()
    async def ask(question: str) -> dict[str, Any]:
        """Answer a question about the repository with the local code LLM; cites path:start-end."""
        if not question.strip():
            raise ToolError("question is empty")

        def run() -> dict[str, Any]:
            return assistant.ask(question, Conversation()).result().to_dict()

        return await _call(run)

    @registry.tool()
    async def suggest_tests(path: str = "", diff: str = "") -> dict[str, Any]:
        """Tests a change deserves: for a file path, or a unified diff; which exist, which to add."""
        if not (path or diff):
            raise ToolError("give a path or a diff")
        if path and inside(assistant.root, path) is None:
            raise ToolError(f"{path!r} is outside the repository")
        suggest = getattr(assistant, "suggest_tests", None)
        if suggest is None:
            raise ToolError("test suggestions are not available in this version")
        return await _call(suggest, path=path or None, diff=diff or None)

    @registry.tool()
    async def index_status() -> dict[str, Any]:
        """What is indexed (files, chunks, languages), what was skipped and why, and where the index lives."""
        status = await _call(assistant.status)
        status["skipped"] = dict(list(status["skipped"].items())[:50])
        return status

    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=await registry.list_tools())

    async def call_tool(
        ctx: ServerRequestContext[Any],
        params: CallToolRequestParams,
    ) -> CallToolResult | InputRequiredResult:
        try:  # raises ToolError or MCPError (a protocol error, left to the SDK) only
            return await registry.call_tool(params.name, params.arguments or {})
        except (
            ToolError
        ) as exc:  # a refusal, bad arguments, an unknown tool, or a crash (its own text withheld)
            crashed = isinstance(exc, UnexpectedToolError)
            log.log(
                logging.ERROR if crashed else logging.INFO,
                "tool %r failed: %r",
                params.name,
                str(exc),
                exc_info=crashed,
            )
            return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)

    return Server(
        "localpilot",
        instructions=(
            f"Code search and answers over the git repository {assistant.root.name}, fully local. Use search_code to "
            "find code by meaning, get_snippet to read lines, ask for a grounded answer with path:line citations."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except LocalpilotError as exc:
        raise ToolError(str(exc)) from exc


def serve(assistant: Assistant, wire: LockedWriter) -> None:
    """Serve MCP on stdin and ``wire`` (the claimed stdout) until the client closes the connection."""
    source = start_filter(sys.stdin.buffer, line_filter(wire))
    server = build(assistant)

    async def main() -> None:
        stdin = anyio.wrap_file(io.TextIOWrapper(source, encoding="utf-8", errors="replace"))
        stdout = anyio.wrap_file(io.TextIOWrapper(wire, encoding="utf-8", write_through=True))  # type: ignore[arg-type,type-var]
        async with stdio_server(stdin, stdout) as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)
