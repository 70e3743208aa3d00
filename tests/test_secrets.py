"""No secret reaches the index, a prompt or an editor: a repository holding 60 secrets in 46 shapes across 19
file kinds is indexed for real (MiniLM, Chroma, SQLite), then every byte localpilot wrote is scanned, and so is
every prompt, search result, snippet, hover and completion it produced."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from secret_corpus import build, leaks

from localpilot.answer import Conversation
from localpilot.config import load_settings
from localpilot.experts.llm import ScriptedGenerator
from localpilot.index.secrets import redact
from localpilot.service import Assistant

QUESTIONS = [
    "what is the database password?",
    "where is the api key configured?",
    "how does the deploy script authenticate?",
    "which slack webhook do we post to?",
    "show the signing key and the service account",
]


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_corpus_has_the_shapes_the_issue_names() -> None:
    corpus = build()
    kinds = {Path(p).suffix or Path(p).name for p in corpus.files}
    assert len(corpus.secrets) >= 40 and len(kinds) >= 15
    for text in corpus.files.values():  # redaction keeps every line
        assert redact(text, "x")[0].count("\n") == text.count("\n")


def test_no_secret_is_stored_prompted_or_shown(
    make_repo: Callable[..., Any], minilm: Any, isolated_env: Path
) -> None:
    corpus = build()
    repo = make_repo(corpus.files)
    generator = ScriptedGenerator(script="See app/settings.py for the settings.")
    a = Assistant(
        repo.root,
        load_settings(repo.root, reranker="none", big_llm="none"),
        embedder=minilm,
        generators={"small": generator},
    )
    a.index()
    shown: list[str] = []
    for q in QUESTIONS:
        shown += [json.dumps(h.to_dict()) for h in a.search(q, 10)]
        answer = None
        for event in a.ask(q, Conversation(), expert="small"):
            answer = event.answer or answer
        assert answer is not None
        shown.append(json.dumps(answer.to_dict()))
    for path in corpus.files:
        if (repo.root / path).is_file() and not Path(path).name.startswith(".env"):
            shown.append(a.snippet(path, 1, 400)["text"])
    for name in ("DB_PASSWORD", "apiKey", "SECRET_KEY", "AUTH_KEY", "client"):
        shown.append(json.dumps(a.symbol_info(name)))
    settings_text = corpus.files["app/settings.py"]
    middle = settings_text.index("DB_PASSWORD")
    a.complete(
        "app/settings.py", settings_text[:middle], settings_text[middle:]
    )  # an editor's buffer, as typed
    assert a.index_buffer(
        "app/draft.py", corpus.files["svc/keys.go"].replace("package svc", "# draft")
    )
    shown += [json.dumps(call) for call in generator.calls]
    status = a.status()
    a.close()

    assert leaks("\n".join(shown).encode(), corpus.secrets) == []
    assert (
        leaks(_all_bytes(isolated_env / "cache"), corpus.secrets) == []
    )  # Chroma, SQLite (+WAL), caches
    assert status["redactions"]["app/settings.py"] >= 6
    assert set(status["redactions"]) >= {
        "svc/keys.go",
        "Dockerfile",
        "deploy/values.yaml",
        "pyproject.toml",
    }
    assert len(generator.calls) >= len(QUESTIONS)
