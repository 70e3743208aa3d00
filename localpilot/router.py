"""The expert router: each request goes to the cheapest expert that can serve it.

``search`` (ranked hits, no LLM) < ``small`` (the default code LLM) < ``big`` (the bigger installed LLM).
Decisions use cheap signals only, never another LLM call:
1. rules on the request's wording (search verbs, question words, "in depth"), and a bare identifier or path;
2. the nearest example requests in ``models/router.toml`` under the index's own embedder (~5 ms);
3. after retrieval: how much relevant code there is (long context escalates);
4. while answering: the small model's mean token log-probability over its first tokens (low confidence
   escalates before anything was shown);
5. after the small model's answer: does it rest on the best match (``Confidence.answer``)? If not, the big
   model answers again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from localpilot.confidence import Confidence
from localpilot.experts.embedder import Embedder
from localpilot.resources import data_dir, read_toml

EXPERTS = ("search", "small", "big")
SEARCH_WORDS = re.compile(
    r"^\s*(please\s+)?(find|locate|search(\s+for)?|grep|show(\s+me)?|list|jump\s+to|go\s+to|open|"
    r"where\s+(is|are)\b.*\b(defined|declared|implemented|located)\b|"
    r"which\s+(file|files|module|modules|class|classes|function|functions|test|tests)\b)",
    re.I,
)
QUESTION_WORDS = re.compile(
    r"\b(why|how|explain|what|when|does|do\s+we|is\s+it|are\s+there|can|could|should|would|summari[sz]e|"
    r"describe|write|generate|implement|refactor|fix|compare|difference|walk\s+me)\b",
    re.I,
)
BIG_WORDS = re.compile(
    r"\b(in\s+(depth|detail)|step[-\s]by[-\s]step|think\s+(hard|carefully)|thorough(ly)?|"
    r"(big|bigger|larger|best)\s+model)\b",
    re.I,
)
# Questions about the repository as a whole: no one snippet answers them, so weak retrieval is no sign of
# "not found" (they are answered from what retrieval found).
BROAD_WORDS = re.compile(
    r"\b(overview|architecture|structure|design|summar(y|ise|ize)|big\s+picture|what\s+(does|is)"
    r"\s+(this|the)\s+(project|repo|repository|library|package|code\s*base|app))\b",
    re.I,
)
IDENTIFIER = re.compile(r"^\s*[\w$@]+(?:[.:/#-][\w$@]+)*(?:\(\))?\s*$")


@dataclass(frozen=True)
class Route:
    expert: str  # search | small | big
    reason: str


@dataclass
class RouterConfig:
    probe_tokens: int = 12  # small-model tokens held back while judging confidence
    min_logprob: float = -1.0  # mean log-prob below this escalates to the big model
    context_share: float = (
        0.8  # hits scoring within this share of the best count as relevant context
    )


@cache
def examples() -> dict[str, list[str]]:
    table = read_toml(data_dir("models") / "router.toml")
    return {"search": list(table["search"]), "question": list(table["question"])}


class Router:
    def __init__(
        self,
        embedder: Embedder | None = None,
        big_available: bool = False,
        config: RouterConfig | None = None,
        confidence: Confidence | None = None,
    ) -> None:
        self.embedder, self.big_available = embedder, big_available
        self.config = config or RouterConfig()
        self.confidence = confidence if confidence is not None else Confidence.load()
        self._examples: Any = None

    def decide(self, request: str, override: str | None = None) -> Route:
        """The first route for ``request``, before any retrieval."""
        if override:
            return (
                self._big_or_small(override, "you asked for this expert")
                if override != "search"
                else Route("search", "you asked for search only")
            )
        if BIG_WORDS.search(request):
            return self._big_or_small("big", "the request asks for depth")
        if IDENTIFIER.match(request):
            return Route("search", "the request is a bare symbol or path")
        if SEARCH_WORDS.match(request) and not QUESTION_WORDS.search(
            SEARCH_WORDS.sub("", request, count=1)
        ):
            return Route("search", "the request asks to find code, not to explain it")
        if QUESTION_WORDS.search(request) or request.rstrip().endswith("?"):
            return Route("small", "a question about the code")
        return self._nearest(request)

    def _nearest(self, request: str) -> Route:
        if self.embedder is None:
            return Route("small", "no clear search intent")
        import numpy as np

        if self._examples is None:
            table = examples()
            self._examples = {k: np.asarray(self.embedder.embed(v)) for k, v in table.items()}
        query = np.asarray(self.embedder.embed_query(request))
        sims = {k: float(np.sort(m @ query)[-3:].mean()) for k, m in self._examples.items()}
        if sims["search"] > sims["question"]:
            return Route(
                "search",
                f"closest to search requests ({sims['search']:.2f} vs {sims['question']:.2f})",
            )
        return Route(
            "small", f"closest to questions ({sims['question']:.2f} vs {sims['search']:.2f})"
        )

    def _big_or_small(self, expert: str, reason: str) -> Route:
        if expert == "big" and not self.big_available:
            return Route(
                "small", f"{reason}, but no bigger model is installed (`localpilot models list`)"
            )
        return Route(expert, reason)

    def after_retrieval(self, route: Route, relevant_tokens: int, small_budget: int) -> Route:
        """Escalate when the relevant code is more than the small model can take in."""
        if route.expert == "small" and relevant_tokens > small_budget:
            return self._big_or_small(
                "big",
                f"the relevant code ({relevant_tokens} tokens) exceeds the small "
                f"model's budget ({small_budget})",
            )
        return route

    def not_found(self, signals: Mapping[str, float], request: str = "") -> Route | None:
        """A search-only route when retrieval says the repository holds nothing that answers the request
        (never for a question about the repository as a whole)."""
        model = self.confidence.answerable
        if (
            model is None
            or not signals
            or BROAD_WORDS.search(request)
            or not model.says_no(signals)
        ):
            return None
        p = model.probability(signals)
        return Route(
            "search",
            f"not found in this repository: the best match is weak (reranker "
            f"{signals.get('rerank_best', 0.0):.2f}; answerable p={p:.2f} < {model.threshold:.2f})",
        )

    def judge_answer(self, signals: Mapping[str, float]) -> Route | None:
        """The big model's route when the small model's whole answer is likely not about the code retrieval
        found (it does not name the best hit, attribution puts little of it there), else None."""
        model = self.confidence.answer
        if model is None or not self.big_available or not model.says_no(signals):
            return None
        p = model.probability(signals)
        return Route(
            "big",
            f"the small model's answer does not rest on the best match (p={p:.2f} < "
            f"{model.threshold:.2f}: names it {signals.get('names_top', 0.0):.0f}, share of claims on it "
            f"{signals.get('top_share', 0.0):.2f})",
        )

    def judge_draft(self, signals: Mapping[str, float]) -> Route | None:
        """The big model's route when the small model's held-back draft is likely wrong, else None."""
        model = self.confidence.correct
        if model is not None and model.applies(signals):
            if not model.says_no(signals):
                return None
            p = model.probability(signals)
            return self._big_or_small(
                "big",
                f"the small model's draft looks unreliable (p={p:.2f} < "
                f"{model.threshold:.2f}: draft support "
                f"{signals.get('draft_support', 0.0):.2f}, reranker "
                f"{signals.get('rerank_best', 0.0):.2f})",
            )
        score = signals.get("mean_logprob", 0.0)
        if score >= self.config.min_logprob:
            return None
        return self._big_or_small(
            "big",
            f"the small model was unsure (mean log-prob {score:.2f} < {self.config.min_logprob})",
        )
