"""Calibrated confidence from what the experts already measured (no extra model call).

Two logistic regressions over named signals, fitted by ``bench/answer.py --fit`` on dev questions only (the
requests sdist; never the evaluation repositories) and stored in ``models/confidence.toml``:

* ``answerable``, before any generation: does the repository hold code that answers this? From retrieval
  alone (the reranker's best probability and its margin over the second, the best vector similarity). Below
  its threshold the answer is "not found in this repository" with the nearest hits, and no LLM runs.
* ``correct``, on the small model's held-back first tokens: will this draft be right? Retrieval's signals
  plus the draft's mean log-probability and how much of it the shown snippets support (attribution). Below its
  threshold the request escalates to the big model when one is installed.
* ``answer``, on the small model's whole answer: is it about the code retrieval found? Whether it names the
  reranker's best hit and how much of it attribution puts there, with the reranker's margin. Below its
  threshold the big model answers again (``bench/grounding.py --fit-answer``: fitted on dev answers, judged
  on held-out ones).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from localpilot.resources import data_dir, read_toml

CONFIDENCE_FILE = "confidence.toml"


@dataclass(frozen=True)
class Logistic:
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float  # probability below which the estimate says no

    def probability(self, signals: Mapping[str, float]) -> float:
        z = self.bias + sum(
            w * float(signals.get(f, 0.0)) for f, w in zip(self.features, self.weights, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def applies(self, signals: Mapping[str, float]) -> bool:
        """Every feature was measured (no reranker, for one, means no reranker signals: never guessed)."""
        return all(f in signals for f in self.features)

    def says_no(self, signals: Mapping[str, float]) -> bool:
        return self.applies(signals) and self.probability(signals) < self.threshold

    def to_toml(self, name: str) -> str:
        feats = ", ".join(f'"{f}"' for f in self.features)
        weights = ", ".join(f"{w:.6g}" for w in self.weights)
        return (
            f"[{name}]\nfeatures = [{feats}]\nweights = [{weights}]\nbias = {self.bias:.6g}\n"
            f"threshold = {self.threshold:.6g}\n"
        )


@dataclass(frozen=True)
class Confidence:
    answerable: Logistic | None
    correct: Logistic | None
    answer: Logistic | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> Confidence:
        """The shipped estimates; a missing file or section disables that decision (never guessed)."""
        path = path or data_dir("models") / CONFIDENCE_FILE
        try:
            data = read_toml(path)
        except (OSError, ValueError):
            return cls(None, None)
        return cls(
            logistic_from(data.get("answerable")),
            logistic_from(data.get("correct")),
            logistic_from(data.get("answer")),
        )


def logistic_from(section: object) -> Logistic | None:
    if not isinstance(section, dict):
        return None
    return Logistic(
        tuple(section["features"]),
        tuple(float(w) for w in section["weights"]),
        float(section["bias"]),
        float(section["threshold"]),
    )
