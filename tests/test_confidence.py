"""The calibrated estimates: loading, probabilities, and the router decisions they drive."""

from __future__ import annotations

from pathlib import Path

from localpilot.confidence import Confidence, Logistic
from localpilot.router import Router

ANSWERABLE = Logistic(("rerank_best",), (10.0,), -2.0, 0.5)  # p = 0.5 at rerank_best 0.2
CORRECT = Logistic(("draft_support",), (10.0,), -3.0, 0.5)


def test_logistic_round_trips_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "confidence.toml"
    path.write_text(ANSWERABLE.to_toml("answerable") + "\n" + CORRECT.to_toml("correct"))
    loaded = Confidence.load(path)
    assert loaded.answerable == ANSWERABLE and loaded.correct == CORRECT
    assert abs(ANSWERABLE.probability({"rerank_best": 0.2}) - 0.5) < 1e-9
    assert ANSWERABLE.says_no({"rerank_best": 0.05}) and not ANSWERABLE.says_no(
        {"rerank_best": 0.9}
    )


def test_missing_or_broken_file_disables_the_decisions(tmp_path: Path) -> None:
    assert Confidence.load(tmp_path / "absent.toml") == Confidence(None, None)
    (tmp_path / "bad.toml").write_text("[answerable\n")
    assert Confidence.load(tmp_path / "bad.toml") == Confidence(None, None)


def test_the_shipped_file_loads() -> None:
    shipped = Confidence.load()
    assert (
        shipped.answerable is not None
    )  # [correct] is not shipped: its held-out AUROC was below chance


def test_router_says_not_found_only_on_weak_retrieval() -> None:
    router = Router(confidence=Confidence(ANSWERABLE, CORRECT), big_available=True)
    route = router.not_found({"rerank_best": 0.02})
    assert route is not None and route.expert == "search" and route.reason.startswith("not found")
    assert router.not_found({"rerank_best": 0.8}) is None
    assert router.not_found({"vector_best": 0.1}) is None  # no reranker signals: never guessed
    assert (
        router.not_found({"rerank_best": 0.02}, "Give me an overview of the architecture") is None
    )


def test_router_escalates_a_weak_draft_with_its_reason() -> None:
    router = Router(confidence=Confidence(ANSWERABLE, CORRECT), big_available=True)
    route = router.judge_draft({"draft_support": 0.1, "rerank_best": 0.5})
    assert route is not None and route.expert == "big" and "draft support 0.10" in route.reason
    assert router.judge_draft({"draft_support": 0.9}) is None
    no_big = Router(confidence=Confidence(ANSWERABLE, CORRECT), big_available=False)
    weak = no_big.judge_draft({"draft_support": 0.1})
    assert weak is not None and weak.expert == "small"  # nothing to escalate to: said so


def test_without_an_estimate_the_log_prob_rule_remains() -> None:
    router = Router(confidence=Confidence(None, None), big_available=True)
    assert router.judge_draft({"mean_logprob": -0.2}) is None
    route = router.judge_draft({"mean_logprob": -2.0})
    assert route is not None and route.expert == "big"
