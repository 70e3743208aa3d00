"""Privacy, proven: the main flows run with every outbound connection refused and recorded (a socket guard
loaded into each process via sitecustomize), and planted secrets never reach the store's files or a prompt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localpilot.config import load_settings
from localpilot.experts.llm import ScriptedGenerator
from localpilot.service import Assistant

GUARD = """
import os, socket
_LOG = os.environ["LOCALPILOT_NET_LOG"]
_LOOPBACK = ("127.", "::1", "localhost")

def _check(address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return
    with open(_LOG, "a") as fh:
        fh.write(f"{os.getpid()} {host}\\n")
    if not str(host).startswith(_LOOPBACK):
        raise OSError(101, f"network blocked by the privacy test: {host}")

_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
def connect(self, address):
    _check(address)
    return _connect(self, address)
def connect_ex(self, address):
    _check(address)
    return _connect_ex(self, address)
socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host is not None and not str(host).startswith(_LOOPBACK):
        with open(_LOG, "a") as fh:
            fh.write(f"{os.getpid()} resolve {host}\\n")
        raise socket.gaierror(-2, f"name resolution blocked by the privacy test: {host}")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
"""

CANARIES = {
    ".env": "API_TOKEN=canary-env-7f3a9c\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-rsa-51be02\n-----END OPENSSH PRIVATE KEY-----\n",
    "deploy/server.pem": "-----BEGIN CERTIFICATE-----\ncanary-pem-c0ffee\n-----END CERTIFICATE-----\n",
    "private/notes.py": "TOKEN = 'canary-ignored-d00d'\n",
    "app/settings.py": "AWS_ACCESS_KEY_ID = 'AKIACANARY0KEY123456'\n\n\ndef aws_region():\n    return 'eu-west-1'\n",
}
SECRETS = (
    "canary-env-7f3a9c",
    "canary-rsa-51be02",
    "canary-pem-c0ffee",
    "canary-ignored-d00d",
    "AKIACANARY0KEY123456",
)


@pytest.fixture
def guarded(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "guard"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "net.log"
    log.touch()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "LOCALPILOT_NET_LOG": str(log),
    }
    return env, log


@pytest.fixture
def secret_repo(make_repo: Callable[..., Any]) -> Any:
    return make_repo(
        {
            **CANARIES,
            ".gitignore": "private/\n",
            "app/upload.py": "def upload_with_retry(client, path):\n    return client.put(path)\n",
        }
    )


def lp(
    env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localpilot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
        check=False,
    )


def test_main_flows_make_no_outbound_connection(
    guarded: Any, secret_repo: Any, smol_path: Path, default_llm_path: Path
) -> None:
    env, log = guarded
    root = secret_repo.root
    assert lp(env, root, "index", "-q").returncode == 0
    assert lp(env, root, "search", "--json", "upload retry").returncode == 0
    ask = lp(
        env,
        root,
        "ask",
        "--json",
        "--llm",
        str(smol_path),
        "--big-llm",
        "none",
        "what does upload do?",
    )
    assert ask.returncode == 0, ask.stderr
    assert lp(env, root, "status", "--json").returncode == 0
    assert lp(env, root, "doctor", "--no-measure").returncode == 0
    mcp_session = (
        "\n".join(
            json.dumps(m)
            for m in [
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"},
                    },
                },
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "search_code", "arguments": {"query": "upload"}},
                },
            ]
        )
        + "\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "localpilot", "mcp"],
        cwd=root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(mcp_session)
    proc.stdin.flush()
    replies = [json.loads(proc.stdout.readline()) for _ in range(2)]
    proc.stdin.close()
    proc.wait(timeout=60)
    assert replies[1]["id"] == 2 and "result" in replies[1]
    frames = b"".join(
        b"Content-Length: %d\r\n\r\n" % len(body) + body
        for body in (
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {"capabilities": {}, "rootUri": root.resolve().as_uri()},
                }
            ).encode(),
            b'{"jsonrpc":"2.0","method":"initialized","params":{}}',
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "workspace/executeCommand",
                    "params": {"command": "localpilot.search", "arguments": ["upload"]},
                }
            ).encode(),
            b'{"jsonrpc":"2.0","id":3,"method":"shutdown"}',
            b'{"jsonrpc":"2.0","method":"exit"}',
        )
    )
    lsp = subprocess.run(
        [sys.executable, "-m", "localpilot", "lsp"],
        cwd=root,
        env=env,
        input=frames,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert b'"id": 2' in lsp.stdout or b'"id":2' in lsp.stdout
    assert lp(env, root, "hook", "install").returncode == 0
    (root / "app" / "upload.py").write_text(
        "def upload_with_retry(client, path):\n    return client.put(path, 1)\n"
    )
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    commit = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "c"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert commit.returncode == 0 and "upload_with_retry" in commit.stdout + commit.stderr
    attempts = [line for line in log.read_text().splitlines() if line.strip()]
    outbound = [
        a for a in attempts if not a.split(" ", 1)[1].startswith(("127.", "::1", "localhost"))
    ]
    assert outbound == [], outbound


def test_secrets_never_reach_the_store_or_a_prompt(secret_repo: Any, minilm: Any) -> None:
    gen = ScriptedGenerator(script="The key is in [app/settings.py:1-1].")
    a = Assistant(
        secret_repo.root,
        load_settings(secret_repo.root, big_llm="none"),
        embedder=minilm,
        generators={"small": gen},
    )
    try:
        a.index()
        for question in (
            "what is the AWS access key id?",
            "what is the API token in the env file?",
            "show the private ssh key",
            "what certificate does the server use?",
            "what token is in the private notes?",
        ):
            list(a.ask(question))
        prompts = json.dumps(gen.calls)
        assert "aws_region" in prompts  # the settings module was retrieved and shown, redacted
        files = [p for p in a.index_dir.rglob("*") if p.is_file()]
        assert files
        for secret in SECRETS:
            assert secret not in prompts, secret
            for path in files:
                assert secret.encode() not in path.read_bytes(), (secret, path)
    finally:
        a.close()
