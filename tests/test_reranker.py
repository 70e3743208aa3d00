"""The shipped tiny code cross-encoder, loaded offline, and reranking inside search."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import Repo

from localpilot.errors import ModelNotFound
from localpilot.experts.registry import load_reranker
from localpilot.experts.reranker import CrossEncoderReranker, Reranker
from localpilot.service import Assistant

RERANKER_DIR = Path(__file__).resolve().parents[1] / "models" / "reranker"


@pytest.fixture(scope="session")
def tiny() -> Reranker:
    reranker = load_reranker("tiny-code", device="cpu")
    assert isinstance(reranker, CrossEncoderReranker)
    return reranker


def test_shipped_reranker_prefers_the_matching_code(tiny: Reranker) -> None:
    passages = [
        "net/retry.py backoff_delay\ndef backoff_delay(attempt, base=0.5):\n    return base * 2 ** attempt",
        "db/users.py UserStore.find_by_email\ndef find_by_email(self, email):\n    return self.db.get(email=email)",
        "ui/colors.py hex_to_rgb\ndef hex_to_rgb(value):\n    return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))",
    ]
    scores = tiny.score("Convert a hex color string to an RGB tuple.", passages)
    assert max(range(3), key=scores.__getitem__) == 2
    scores = tiny.score("Look up a user by their email address.", passages)
    assert max(range(3), key=scores.__getitem__) == 1


def test_reranker_names() -> None:
    assert load_reranker("none") is None and load_reranker("off") is None
    with pytest.raises(ModelNotFound, match="unknown reranker"):
        load_reranker("no-such-reranker")


def test_search_with_reranker_explains_its_score(
    make_repo: Callable[..., Repo], assistant_for: Callable[..., Assistant], tiny: Reranker
) -> None:
    repo = make_repo(
        {
            "colors.py": "def hex_to_rgb(value):\n    return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))\n\n\n"
            "def rgb_to_hex(r, g, b):\n    return f'#{r:02x}{g:02x}{b:02x}'\n",
            "users.py": "def find_by_email(db, email):\n    return db.get(email=email)\n",
        }
    )
    a = assistant_for(repo, reranker="tiny-code")
    a.index()
    hits = a.search("convert a hex color string to an rgb tuple", k=3, explain=True)
    assert hits[0].symbol == "hex_to_rgb"
    info = hits[0].explain or {}
    blend = a.retriever.config.rerank_blend
    assert hits[0].score == pytest.approx(info["rerank"] + blend, abs=1e-3), (
        "best fused candidate: rerank + blend"
    )
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_unavailable_hub_reranker_is_a_clear_error() -> None:
    reranker = load_reranker("no-such-org/no-such-cross-encoder", device="cpu")
    assert reranker is not None
    with pytest.raises(ModelNotFound, match="could not load model"):
        reranker.score("q", ["text"])


@pytest.mark.parametrize("machine_idle", [False, True])
def test_query_time_inference_threads_follow_the_ledger_and_restore(
    tiny: Reranker, monkeypatch, machine_idle: bool
) -> None:
    """Reranking a query uses `query_threads` torch threads in the calling thread while anything else runs
    (OpenMP threads of two busy processes wait on each other at barriers), every core when the ledger says the
    machine is idle, and leaves the process's thread count as it was for indexing."""
    import torch

    from localpilot.experts import reranker as module

    assert isinstance(tiny, CrossEncoderReranker)
    seen: list[int] = []
    original = tiny.model.predict

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny.model, "predict", spy)
    monkeypatch.setattr(tiny, "query_threads", 1)
    monkeypatch.setattr(
        module.ledger, "threads_for", lambda base, mine=1: 3 if machine_idle else base
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        scores = tiny.score(
            "parse a date", ["def parse_date(s):\n    return s", "def add(a, b):\n    return a + b"]
        )
        assert seen == [3 if machine_idle else 1] and len(scores) == 2
        assert torch.get_num_threads() == 2
        tiny.idle_cores = False  # bench/latency.py's "half the cores" row
        tiny.score("parse a date", ["def parse_date(s):\n    return s"])
        assert seen[-1] == 1
    finally:
        tiny.idle_cores = True
        torch.set_num_threads(before)


def _prune_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prune_vocab", RERANKER_DIR / "prune_vocab.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_reranker_fits_the_size_target() -> None:
    assert (RERANKER_DIR / "tiny-code-reranker" / "model.safetensors").stat().st_size <= 40_000_000


def test_vocabulary_pruning_keeps_scores_on_the_corpus_it_was_pruned_on(tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    prune = _prune_module()
    src, dst = RERANKER_DIR / "tiny-code-reranker", tmp_path / "pruned"
    full = CrossEncoder(str(src), max_length=128)
    corpus = [
        "Convert a hex color string to an RGB tuple.",
        "Look up a user by their email address.",
        "def hex_to_rgb(value):\n    return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))",
        "def find_by_email(self, email):\n    return self.db.get(email=email)",
    ]
    vocab = full.tokenizer.convert_ids_to_tokens(list(range(len(full.tokenizer))))
    counts = prune.count_tokens(full.tokenizer, corpus, len(vocab))
    keep = prune.kept_ids(vocab, counts, 1, set(full.tokenizer.all_special_ids))
    stats = prune.write_model(src, dst, keep, vocab)
    assert stats["vocab_after"] == len(keep) < stats["vocab_before"] / 5, (
        "corpus tokens + characters + specials"
    )

    small = CrossEncoder(str(dst), max_length=128)
    pairs = [(q, p) for q in corpus[:2] for p in corpus[2:]]
    assert small.predict(pairs) == pytest.approx(full.predict(pairs), abs=1e-5)
    assert all(small.tokenizer.tokenize(t) == full.tokenizer.tokenize(t) for t in corpus)
    unseen = "Größe naïve 日本 zebra"
    assert "[UNK]" not in small.tokenizer.tokenize(unseen), (
        "unseen words fall back to kept characters"
    )
    assert len(small.tokenizer.tokenize(unseen)) > len(full.tokenizer.tokenize(unseen))
