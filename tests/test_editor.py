"""The stdio servers driven as real clients drive them: the `mcp` SDK's stdio client, pygls' language client,
and raw pipes for malformed input. Real repo, MiniLM, Chroma, SmolLM2 / Qwen2.5-Coder through llama.cpp."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import UPLOADER

MAIN = (
    "from storage.uploader import upload_with_retry\n\n\ndef main(client):\n"
    "    return upload_with_retry(client, 'a')\n"
)


@pytest.fixture
def indexed_repo(make_repo: Callable[..., Any], tmp_path: Path) -> Any:
    repo = make_repo({"storage/uploader.py": UPLOADER, "app/main.py": MAIN})
    evil = tmp_path / "repo-evil"
    evil.mkdir()
    (evil / "secret.txt").write_text("do not read")
    os.symlink(evil / "secret.txt", repo.root / "link-out.txt")
    res = subprocess.run(
        [sys.executable, "-m", "localpilot", "index", "-q"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return repo


def server_env() -> dict[str, str]:
    keep = (
        "PATH",
        "HOME",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "HF_HUB_OFFLINE",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_NOSYSTEM",
    )
    return {k: os.environ[k] for k in keep if k in os.environ}


# --- MCP -------------------------------------------------------------------------------------------------------


async def test_mcp_tools_over_the_sdk_client(indexed_repo: Any, smol_path: Path) -> None:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "localpilot", "mcp", "--llm", str(smol_path)],
        cwd=str(indexed_repo.root),
        env=server_env(),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == {"search_code", "get_snippet", "ask", "suggest_tests", "index_status"}
        assert tools["search_code"].input_schema["properties"]["query"]["type"] == "string"

        found = await session.call_tool("search_code", {"query": "retry a failed upload", "k": 3})
        hits = (
            json.loads(found.content[0].text)
            if not found.structured_content
            else found.structured_content["result"]
        )
        assert hits[0]["path"] == "storage/uploader.py"

        snippet = await session.call_tool(
            "get_snippet", {"path": "storage/uploader.py", "start": 4, "end": 5}
        )
        assert "def upload_with_retry" in snippet.content[0].text
        for bad in (
            "../repo-evil/secret.txt",
            "/etc/passwd",
            "%2e%2e/repo-evil/secret.txt",
            "link-out.txt",
            "storage/../../repo-evil/secret.txt",
        ):
            refused = await session.call_tool("get_snippet", {"path": bad})
            assert refused.is_error and "outside the repository" in refused.content[0].text, bad

        status = await session.call_tool("index_status", {})
        assert '"files": 2' in status.content[0].text

        answer = await session.call_tool(
            "ask", {"question": "how many times do we retry an upload?"}
        )
        assert not answer.is_error and '"expert"' in answer.content[0].text
        empty = await session.call_tool("ask", {"question": "  "})
        assert empty.is_error and "empty" in empty.content[0].text


def _read_until(
    proc: subprocess.Popen[bytes], done: Callable[[bytes], bool], timeout: float = 180
) -> bytes:
    """Read the server's stdout until ``done(everything read so far)``."""
    assert proc.stdout is not None
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and not done(data):
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            data += chunk
    return data


def _answered(want_ids: set[int]) -> Callable[[bytes], bool]:
    """Every id in ``want_ids`` has a newline-delimited JSON-RPC response."""
    return lambda data: (
        want_ids <= {json.loads(line).get("id") for line in data.splitlines() if line.strip()}
    )


def _has_id(n: int) -> Callable[[bytes], bool]:
    return lambda data: f'"id": {n}'.encode() in data or f'"id":{n}'.encode() in data


def test_mcp_survives_malformed_input_and_stdout_is_protocol_only(
    indexed_repo: Any, smol_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "localpilot", "mcp", "--llm", str(smol_path)],
        cwd=indexed_repo.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_env(),
    )
    assert proc.stdin is not None

    def send(raw: bytes) -> None:
        proc.stdin.write(raw + b"\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    send(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
        ).encode()
    )
    send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    send(b'{"jsonrpc":"2.0","id":2,"method":"tools/li')  # truncated JSON
    send(b'{"jsonrpc":"2.0","id":3,"method":"tools/list","x":"\xff\xfe"}')  # invalid UTF-8
    send(b'{"a":' * 5000 + b"1" + b"}" * 5000)  # deeply nested
    send(b'{"jsonrpc":"2.0","id":4,"method":"no/such/method"}')
    send(
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ask","arguments":'
        b'{"question":"how many times do we retry an upload?"}}}'
    )  # loads llama.cpp: C-level logs
    send(b'{"jsonrpc":"2.0","id":6,"method":"tools/list"}')
    out = _read_until(proc, _answered({1, 4, 5, 6}))
    assert _answered({1, 4, 5, 6})(out), out
    proc.stdin.close()
    proc.wait(timeout=60)
    messages = [json.loads(line) for line in out.splitlines() if line.strip()]  # every byte parses
    errors = [m for m in messages if m.get("id") is None and "error" in m]
    assert len(errors) == 3 and all(e["error"]["code"] == -32700 for e in errors)
    by_id = {m["id"]: m for m in messages if m.get("id") is not None}
    assert "error" in by_id[4] and by_id[4]["error"]["code"] == -32601
    assert len(by_id[6]["result"]["tools"]) == 5 and not by_id[5]["result"].get("isError")


# --- LSP -------------------------------------------------------------------------------------------------------


@pytest.fixture
async def lsp_client(indexed_repo: Any, default_llm_path: Path) -> Any:
    from lsprotocol import types as t
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("localpilot-test", "1")
    client.messages = []  # type: ignore[attr-defined]

    @client.feature(t.WINDOW_SHOW_MESSAGE)
    def shown(params: t.ShowMessageParams) -> None:
        client.messages.append(params.message)  # type: ignore[attr-defined]

    @client.feature(t.WINDOW_LOG_MESSAGE)
    def logged(params: t.LogMessageParams) -> None:
        client.messages.append(params.message)  # type: ignore[attr-defined]

    await client.start_io(
        sys.executable,
        "-m",
        "localpilot",
        "lsp",
        "--llm",
        str(default_llm_path),
        cwd=str(indexed_repo.root),
        env=server_env(),
    )
    root_uri = indexed_repo.root.resolve().as_uri()
    await client.initialize_async(
        t.InitializeParams(capabilities=t.ClientCapabilities(), root_uri=root_uri)
    )
    client.initialized(t.InitializedParams())
    client.root = indexed_repo.root.resolve()  # type: ignore[attr-defined]
    yield client
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def _open(client: Any, rel: str, text: str) -> str:
    from lsprotocol import types as t

    uri = (client.root / rel).as_uri()
    client.text_document_did_open(
        t.DidOpenTextDocumentParams(
            text_document=t.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    return uri


async def test_lsp_completion_hover_actions_and_commands(lsp_client: Any) -> None:
    from lsprotocol import types as t

    source = "def add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    "
    uri = _open(lsp_client, "calc.py", source)
    pos = t.Position(line=5, character=4)
    latencies = []
    for _ in range(2):
        started = time.perf_counter()
        result = await lsp_client.text_document_completion_async(
            t.CompletionParams(text_document=t.TextDocumentIdentifier(uri=uri), position=pos)
        )
        latencies.append(time.perf_counter() - started)
        assert result.items and result.items[0].insert_text.strip()
    assert latencies[1] < latencies[0]  # the second identical request comes from the cache
    inline = await lsp_client.text_document_inline_completion_async(
        t.InlineCompletionParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            position=pos,
            context=t.InlineCompletionContext(trigger_kind=t.InlineCompletionTriggerKind.Invoked),
        )
    )
    assert inline.items and inline.items[0].insert_text.strip()

    main_uri = _open(lsp_client, "app/main.py", MAIN)
    hover = await lsp_client.text_document_hover_async(
        t.HoverParams(
            text_document=t.TextDocumentIdentifier(uri=main_uri),
            position=t.Position(line=4, character=14),
        )
    )
    assert "storage/uploader.py:4" in hover.contents.value and "app/main.py" in hover.contents.value

    actions = await lsp_client.text_document_code_action_async(
        t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=main_uri),
            range=t.Range(
                start=t.Position(line=3, character=0), end=t.Position(line=4, character=0)
            ),
            context=t.CodeActionContext(diagnostics=[]),
        )
    )
    assert [a.title for a in actions] == [
        "localpilot: Explain",
        "localpilot: Suggest tests",
        "localpilot: Find related code",
    ]
    find = _command_of(actions[2])
    assert find.command == "localpilot.findRelated"
    related = await lsp_client.workspace_execute_command_async(
        t.ExecuteCommandParams(command=find.command, arguments=find.arguments)
    )
    assert related["hits"][0]["path"] == "storage/uploader.py"
    hits = await lsp_client.workspace_execute_command_async(
        t.ExecuteCommandParams(command="localpilot.search", arguments=["retry a failed upload"])
    )
    assert hits[0]["path"] == "storage/uploader.py"


def _command_of(action: Any) -> Any:
    """lsprotocol's converter (client side) structures a CodeAction whose command is a Command as a bare
    Command with the inner one stringified; editors read the JSON as sent. Recover it."""
    import ast

    from lsprotocol import types as t

    if isinstance(action, t.CodeAction):
        return action.command
    return t.Command(**ast.literal_eval(action.command))


async def test_lsp_unsaved_buffers_are_searchable(lsp_client: Any) -> None:
    from lsprotocol import types as t

    _open(
        lsp_client,
        "draft.py",
        "def quantum_flux_capacitor_reset(state):\n    return state.clear()\n",
    )
    for _ in range(40):
        await __import__("asyncio").sleep(0.5)
        hits = await lsp_client.workspace_execute_command_async(
            t.ExecuteCommandParams(
                command="localpilot.search", arguments=["quantum flux capacitor reset"]
            )
        )
        if hits and hits[0]["path"] == "draft.py":
            break
    assert hits[0]["path"] == "draft.py"  # never saved to disk


async def test_lsp_cancel_request_stops_a_completion(lsp_client: Any) -> None:
    import asyncio

    from lsprotocol import types as t
    from pygls.exceptions import JsonRpcRequestCancelled

    uri = _open(lsp_client, "calc2.py", "def multiply(a, b):\n    ")
    future = lsp_client.protocol.send_request(
        "textDocument/completion",
        t.CompletionParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            position=t.Position(line=1, character=4),
        ),
    )
    await asyncio.sleep(0.3)
    msg_id = next(reversed(lsp_client.protocol._request_futures))
    lsp_client.protocol.notify("$/cancelRequest", t.CancelParams(id=msg_id))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wrap_future(future)


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _frames(data: bytes) -> list[dict[str, Any]]:
    """Parse every byte of an LSP output stream as Content-Length frames."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"trailing bytes that are not a frame: {data[:80]!r}"
        fields = dict(line.split(b":", 1) for line in head.split(b"\r\n"))
        length = int(fields[b"Content-Length"])
        out.append(json.loads(rest[:length]))
        data = rest[length:]
    return out


def test_lsp_survives_malformed_frames_and_stdout_is_protocol_only(
    indexed_repo: Any, default_llm_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "localpilot", "lsp", "--llm", str(default_llm_path)],
        cwd=indexed_repo.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    root = indexed_repo.root.resolve().as_uri()
    msgs = [
        _frame(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {"capabilities": {}, "rootUri": root},
                }
            ).encode()
        ),
        _frame(b'{"jsonrpc":"2.0","method":"initialized","params":{}}'),
        b"Content-Length: abc\r\n\r\n{}",  # bad length
        b"Content-Length: 99999999999\r\n\r\n",  # huge length
        _frame(b'{"jsonrpc":"2.0","id":2,"method":"shutdo'),  # truncated JSON
        _frame(b'{"jsonrpc":"2.0","id":3,"method":"x","params":"\xff"}'),  # invalid UTF-8
        _frame(b"[" * 10000 + b"]" * 10000),  # deeply nested
        _frame(b'{"jsonrpc":"2.0","id":4,"method":"no/such/method","params":{}}'),
        _frame(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "textDocument/didOpen",
                    "params": {
                        "textDocument": {
                            "uri": (indexed_repo.root.resolve() / "c.py").as_uri(),
                            "languageId": "python",
                            "version": 1,
                            "text": "def square(x):\n    ",
                        }
                    },
                }
            ).encode()
        ),
        _frame(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 5,
                    "method": "textDocument/completion",
                    "params": {
                        "textDocument": {"uri": (indexed_repo.root.resolve() / "c.py").as_uri()},
                        "position": {"line": 1, "character": 4},
                    },
                }
            ).encode()
        ),  # loads llama.cpp: C-level logs
    ]
    for m in msgs:
        proc.stdin.write(m)
        proc.stdin.flush()
    data = _read_until(proc, _has_id(5))
    proc.stdin.write(_frame(b'{"jsonrpc":"2.0","id":6,"method":"shutdown"}'))
    proc.stdin.flush()
    data += _read_until(proc, _has_id(6))
    proc.stdin.write(_frame(b'{"jsonrpc":"2.0","method":"exit"}'))
    proc.stdin.close()
    proc.wait(timeout=30)
    frames = _frames(data + proc.stdout.read())
    parse_errors = [
        f for f in frames if f.get("id") is None and f.get("error", {}).get("code") == -32700
    ]
    assert len(parse_errors) == 5
    by_id = {f["id"]: f for f in frames if f.get("id") is not None}
    assert by_id[4]["error"]["code"] == -32601
    assert by_id[5].get("result", {}).get("items"), by_id[5]
    assert "result" in by_id[6]


# --- overlapping requests over the real pipes ------------------------------------------------------------------


def _matches_file(
    root: Path, hit: dict[str, Any], versions: dict[str, list[str]] | None = None
) -> bool:
    """The hit's snippet is the text at its lines of the file on disk (or of one version of an editor buffer)."""
    texts = (versions or {}).get(hit["path"]) or [(root / hit["path"]).read_text(encoding="utf-8")]
    return any(
        "\n".join(t.split("\n")[hit["start_line"] - 1 : hit["end_line"]]) == hit["snippet"]
        for t in texts
    )


@pytest.mark.slow
async def test_mcp_overlapping_requests(indexed_repo: Any, smol_path: Path) -> None:
    import asyncio

    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "localpilot", "mcp", "--llm", str(smol_path)],
        cwd=str(indexed_repo.root),
        env=server_env(),
    )
    lines = UPLOADER.split("\n")
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        async def one(n: int) -> None:
            kind = n % 10
            if kind < 5:
                res = await session.call_tool(
                    "search_code",
                    {
                        "query": [
                            "retry a failed upload",
                            "main client",
                            "upload_with_retry",
                            "MAX_RETRIES",
                        ][n % 4]
                    },
                )
                assert not res.is_error, res.content
                hits = (
                    res.structured_content["result"]
                    if res.structured_content
                    else json.loads(res.content[0].text)
                )
                assert hits and all(_matches_file(indexed_repo.root, h) for h in hits)
            elif kind < 8:
                start = 1 + n % 6
                res = await session.call_tool(
                    "get_snippet", {"path": "storage/uploader.py", "start": start, "end": start + 3}
                )
                assert json.loads(res.content[0].text)["text"] == "\n".join(
                    lines[start - 1 : start + 3]
                )
            elif kind == 8:
                res = await session.call_tool("index_status", {})
                assert '"files": 2' in res.content[0].text
            else:
                res = await session.call_tool(
                    "ask", {"question": "how many times do we retry an upload?"}
                )
                assert not res.is_error and '"expert"' in res.content[0].text

        for batch in range(10):  # 10 rounds of 20 requests in flight at once
            await asyncio.gather(*(one(batch * 20 + i) for i in range(20)))


@pytest.mark.slow
async def test_lsp_overlapping_requests_while_a_buffer_changes(lsp_client: Any) -> None:
    import asyncio

    from lsprotocol import types as t

    versions: dict[str, list[str]] = {"draft.py": []}
    uri = _open(lsp_client, "draft.py", "def draft_total_0(items):\n    return sum(items)\n")
    versions["draft.py"].append("def draft_total_0(items):\n    return sum(items)\n")
    main_uri = _open(lsp_client, "app/main.py", MAIN)

    async def search(query: str) -> None:
        hits = await lsp_client.workspace_execute_command_async(
            t.ExecuteCommandParams(command="localpilot.search", arguments=[query])
        )
        assert all(_matches_file(lsp_client.root, h, versions) for h in hits), hits

    async def hover() -> None:
        res = await lsp_client.text_document_hover_async(
            t.HoverParams(
                text_document=t.TextDocumentIdentifier(uri=main_uri),
                position=t.Position(line=4, character=14),
            )
        )
        assert res is None or "upload_with_retry" in res.contents.value

    async def complete() -> None:
        res = await lsp_client.text_document_completion_async(
            t.CompletionParams(
                text_document=t.TextDocumentIdentifier(uri=uri),
                position=t.Position(line=1, character=4),
            )
        )
        assert res is not None

    for v in range(1, 9):
        text = f"def draft_total_{v}(items):\n    return sum(items) * {v}\n"
        versions["draft.py"].append(text)
        lsp_client.text_document_did_change(
            t.DidChangeTextDocumentParams(
                text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=v + 1),
                content_changes=[t.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        await asyncio.gather(
            complete(),
            *(
                search(q)
                for q in (
                    "draft total",
                    "retry a failed upload",
                    "upload_with_retry",
                    "main client",
                )
            ),
            hover(),
            hover(),
            asyncio.sleep(0.6),
        )
    for _ in range(40):  # the last buffer version becomes searchable
        hits = await lsp_client.workspace_execute_command_async(
            t.ExecuteCommandParams(command="localpilot.search", arguments=["draft_total_8"])
        )
        if hits and hits[0]["snippet"].startswith("def draft_total_8"):
            break
        await asyncio.sleep(0.5)
    assert hits[0]["path"] == "draft.py" and hits[0]["snippet"].startswith("def draft_total_8")
