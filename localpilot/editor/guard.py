"""Keep the stdio protocols clean and the servers alive whatever the client sends.

* ``claim_stdout`` moves the protocol onto a private duplicate of fd 1 and points fd 1 at stderr, so
  prints, progress bars and C-level writes (llama.cpp) can never corrupt the wire.
* ``LockedWriter`` makes each protocol message one atomic write, shared by the library and by us.
* ``lsp_filter`` / ``line_filter`` sit between stdin and the protocol library: only well-formed frames
  (sane Content-Length, UTF-8, JSON, bounded nesting) pass, through a pipe; anything else is answered with a
  JSON-RPC parse error (id null) and skipped, so the next valid request is still served.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

log = logging.getLogger(__name__)
MAX_BODY = 16 * 2**20
MAX_DEPTH = 64
HEADER = re.compile(rb"^Content-Length:\s*(\S*)\s*$", re.I)


def claim_stdout() -> BinaryIO:
    """The protocol's output stream; fd 1 (and ``sys.stdout``) now lead to stderr."""
    sys.stdout.flush()
    private = os.dup(1)
    os.set_inheritable(private, False)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(private, "wb", buffering=0)


class LockedWriter(io.RawIOBase):
    """A binary stream whose every ``write`` reaches the wire whole (one message per call)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw, self.lock = raw, threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | str) -> int:  # type: ignore[override]
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        with self.lock:
            self.raw.write(payload)
            self.raw.flush()
        return len(payload)

    def close(self) -> None:
        """The wire is closed by the process, not by the protocol library."""


def check_json(body: bytes) -> str | None:
    """Why ``body`` is not an acceptable JSON-RPC message, or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the message is not valid UTF-8"
    if _depth(text) > MAX_DEPTH:
        return f"the message nests deeper than {MAX_DEPTH} levels"
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return "the message is not valid JSON"
    if not isinstance(message, (dict, list)):
        return "the message is not a JSON object"
    return None


def _depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped, in_string = (False, in_string) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_error(reason: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": f"Parse error: {reason}"},
    }


def lsp_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def start_filter(source: BinaryIO, pump: Callable[[BinaryIO, BinaryIO], None]) -> BinaryIO:
    """Run ``pump(source, pipe_in)`` in a thread; the protocol library reads the pipe's other end."""
    read_fd, write_fd = os.pipe()
    sink = os.fdopen(write_fd, "wb", buffering=0)

    def run() -> None:
        try:
            pump(source, sink)
        except OSError as exc:
            log.info("input filter stopped: %s", exc)
        finally:
            sink.close()

    threading.Thread(target=run, name="stdin-filter", daemon=True).start()
    return os.fdopen(read_fd, "rb", buffering=0)


def lsp_filter(reply: LockedWriter) -> Callable[[BinaryIO, BinaryIO], None]:
    """Pump for Content-Length framed JSON-RPC (LSP)."""

    def pump(source: BinaryIO, sink: BinaryIO) -> None:
        while True:
            length, problem = _read_headers(source)
            if length is None and problem is None:
                return  # end of input
            if problem is None and length is not None:
                body = _read_exactly(source, length)
                if body is None:
                    return
                problem = check_json(body)
                if problem is None:
                    sink.write(lsp_frame(json.loads(body)))
                    continue
            log.warning("rejected a message: %s", problem)
            reply.write(lsp_frame(parse_error(problem or "bad header")))

    return pump


def _read_headers(source: BinaryIO) -> tuple[int | None, str | None]:
    """(length, None) for a good header block, (None, reason) for a bad one, (None, None) at EOF."""
    length: int | None = None
    problem: str | None = None
    seen = False
    while True:
        line = source.readline(65536)
        if not line:
            return None, (problem or "truncated header") if seen else None
        seen = True
        if line in (b"\r\n", b"\n"):
            if problem is None and length is None:
                return None, "missing Content-Length"
            return length, problem
        match = HEADER.match(line.rstrip(b"\r\n"))
        if match is None:
            continue
        value = match.group(1)
        if not value.isdigit():
            problem = f"bad Content-Length {value[:20]!r}"
        elif int(value) > MAX_BODY:
            problem = f"Content-Length {int(value)} is over the {MAX_BODY} byte limit"
        else:
            length = int(value)


def _read_exactly(source: BinaryIO, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        part = source.read(left)
        if not part:
            return None
        chunks.append(part)
        left -= len(part)
    return b"".join(chunks)


def line_filter(reply: LockedWriter) -> Callable[[BinaryIO, BinaryIO], None]:
    """Pump for newline-delimited JSON-RPC (MCP stdio)."""

    def pump(source: BinaryIO, sink: BinaryIO) -> None:
        while True:
            line = source.readline(MAX_BODY + 1)
            if not line:
                return
            if len(line) > MAX_BODY and not line.endswith(b"\n"):
                while (rest := source.readline(MAX_BODY)) and not rest.endswith(b"\n"):
                    pass
                problem: str | None = f"the message is over the {MAX_BODY} byte limit"
            elif not line.strip():
                continue
            else:
                problem = check_json(line)
            if problem is None:
                sink.write(json.dumps(json.loads(line)).encode("utf-8") + b"\n")
            else:
                log.warning("rejected a message: %s", problem)
                reply.write(json.dumps(parse_error(problem)) + "\n")

    return pump
