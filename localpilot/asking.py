"""One request, end to end: route → retrieve → (maybe) not found → prompt → stream → attribute → cite.

The router picks the cheapest expert. Retrieval's own signals can settle a request before any LLM runs (the
repository holds nothing that answers it: "not found" with the nearest hits). The small model's first tokens
are held back until a calibrated estimate (``localpilot.confidence``) says the draft is sound, so a weak draft
is replaced by the big model before the user sees it. Every answer's sentences are then attributed to the
snippets the prompt showed (``localpilot.attribute``): those are its citations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from localpilot.answer import (
    Answer,
    AskEvent,
    Budget,
    Conversation,
    Prompt,
    Turn,
    build_prompt,
    complete_citations,
    format_snippet,
    mean_logprob,
    sanitize,
    search_answer_text,
    sources,
)
from localpilot.attribute import Attribution, Attributor, names
from localpilot.config import Settings
from localpilot.experts.llm import Generator, Token
from localpilot.retrieve import Retriever
from localpilot.router import Route, Router
from localpilot.types import Hit

CONTEXT_HITS = 8  # reranked hits offered to the prompt builder
NEAREST_HITS = 5  # hits a "not found" answer lists


class Backend(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def retriever(self) -> Retriever: ...

    @property
    def router(self) -> Router: ...

    @property
    def attributor(self) -> Attributor: ...

    def generator(self, which: str = "small") -> Generator: ...


@dataclass
class Request:
    """One question on its way through the experts."""

    question: str
    conversation: Conversation
    forced: bool  # the user chose the expert: no escalation
    cancel: threading.Event | None
    hits: list[Hit] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(
        default_factory=lambda: time.perf_counter()
    )  # looked up at call time (tests freeze it)
    escalated_from: str = ""


def answer_request(
    a: Backend,
    question: str,
    conversation: Conversation,
    expert: str | None,
    cancel: threading.Event | None,
) -> Iterator[AskEvent]:
    req = Request(question, conversation, expert is not None, cancel)
    route = a.router.decide(question, expert)
    yield AskEvent("route", f"{route.expert}: {route.reason}")
    found = a.retriever.search(question, CONTEXT_HITS)
    req.hits, req.signals = found.hits, retrieval_signals(found.signals)
    req.timings = {k: round(v, 1) for k, v in found.timings.items()}
    yield AskEvent("hits", hits=req.hits)
    # a follow-up ("and what does it return?") leans on the earlier turns' snippets: never "not found"
    first_turn = not conversation.turns
    missing = (
        a.router.not_found(req.signals, question)
        if route.expert != "search" and not req.forced and first_turn
        else None
    )
    if missing is not None:
        route = missing
    if route.expert == "search":
        yield _search_answer(req, route)
        return
    if (
        not req.forced and req.hits and route.expert == "small"
    ):  # only a small route can escalate for size
        route = a.router.after_retrieval(
            route, relevant_tokens(req.hits, a.generator("small")), a.settings.context_tokens
        )
    yield from _generate(a, route, req)


def retrieval_signals(signals: Mapping[str, float]) -> dict[str, float]:
    out = {k: float(v) for k, v in signals.items()}
    if "rerank_best" in out:
        out["rerank_margin"] = out["rerank_best"] - out.get("rerank_second", 0.0)
    return out


def _search_answer(req: Request, route: Route) -> AskEvent:
    hits = req.hits
    if route.reason.startswith("not found"):
        hits = hits[:NEAREST_HITS]
        text = (
            "Not found in this repository: no indexed code answers this well.\n\nNearest code:\n"
            + search_answer_text(hits)
        )
    else:
        text = search_answer_text(hits)
    answer = Answer(
        req.question,
        text,
        "search",
        route.reason,
        "",
        hits=hits,
        timings=req.timings,
        signals=req.signals,
    )
    return AskEvent("done", answer.text, answer=answer)


def relevant_tokens(hits: Sequence[Hit], generator: Generator, share: float = 0.8) -> int:
    """Tokens of the hits that score close to the best one: the code the answer needs to see."""
    top = max(h.score for h in hits)
    floor = top * share if top > 0 else top / share
    return sum(generator.count_tokens(format_snippet(h)) for h in hits if h.score >= floor)


def _generate(a: Backend, route: Route, req: Request) -> Iterator[AskEvent]:
    gen = a.generator(route.expert)
    scale = 2 if route.expert == "big" else 1
    budget = Budget(gen.n_ctx, a.settings.answer_tokens, a.settings.context_tokens * scale)
    prompt = build_prompt(req.question, req.hits, req.conversation, gen, budget)
    probe = route.expert == "small" and not req.forced and a.router.big_available
    tokens: list[Token] = []
    first_shown = 0.0
    window = a.router.config.probe_tokens
    stream = gen.stream(prompt.messages, a.settings.answer_tokens, req.cancel)
    for token in stream:
        tokens.append(token)
        if probe and len(tokens) < window:
            continue
        if probe:  # the window is full: judge the draft before anyone sees it
            probe = False
            big = a.router.judge_draft(draft_signals(a, req, prompt, tokens[:window]))
            if big is not None and big.expert == "big":
                stream.close()  # type: ignore[attr-defined]
                yield AskEvent("escalate", big.reason)
                yield from _generate(a, big, replace(req, forced=True, escalated_from=gen.name))
                return
            first_shown = time.perf_counter()
            yield from (AskEvent("token", t.text) for t in tokens)
            continue
        first_shown = first_shown or time.perf_counter()
        yield AskEvent("token", token.text)
    if probe and tokens:  # the whole answer fit in the probe window
        first_shown = time.perf_counter()
        yield from (AskEvent("token", t.text) for t in tokens)
    done = _finish(a, route, req, prompt, tokens, gen, first_shown)
    again = _recheck(a, route, req, done)
    if again is None:
        yield done
        return
    req.conversation.turns.pop()  # the small answer is replaced, not kept as a turn
    yield AskEvent("escalate", again.reason)
    yield from _generate(a, again, replace(req, forced=True, escalated_from=gen.name))


def _recheck(a: Backend, route: Route, req: Request, done: AskEvent) -> Route | None:
    """The big model's route when the small model's finished answer does not rest on the best match."""
    if route.expert != "small" or req.forced or done.answer is None:
        return None
    if req.cancel is not None and req.cancel.is_set():
        return None
    return a.router.judge_answer(done.answer.signals)


def draft_signals(
    a: Backend, req: Request, prompt: Prompt, draft: Sequence[Token]
) -> dict[str, float]:
    """What the confidence estimate reads about a draft: retrieval's signals, the draft's mean log-prob and
    how well the shown snippets support its first sentence."""
    text = "".join(t.text for t in draft)
    claims = a.attributor.attribute(text, prompt.visible).claims if prompt.visible else ()
    return {
        **req.signals,
        "mean_logprob": mean_logprob(draft),
        "draft_support": max((c.support for c in claims), default=0.0),
    }


def answer_signals(
    text: str, snippets: Sequence[Hit], attribution: Attribution
) -> dict[str, float]:
    """What the whole answer says about itself against retrieval: does attribution put its claims on the hit
    the reranker ranked first, and does it name that hit (two experts agreeing), how much of it is supported."""
    claims = attribution.claims
    if not snippets:
        return {"coverage": round(attribution.coverage, 3)}
    top = snippets[0]
    on_top = [
        c
        for c in claims
        if c.path == top.path and c.start_line <= top.end_line and c.end_line >= top.start_line
    ]
    return {
        "coverage": round(attribution.coverage, 3),
        "top_share": round(len(on_top) / len(claims), 3) if claims else 0.0,
        "top_cited": float(bool(on_top)),
        "names_top": float(names(text, top.symbol)),
        "best_support": round(max((c.support for c in claims), default=0.0), 3),
    }


def _finish(
    a: Backend,
    route: Route,
    req: Request,
    prompt: Prompt,
    tokens: list[Token],
    gen: Generator,
    first_shown: float,
) -> AskEvent:
    raw = "".join(t.text for t in tokens).strip()
    req.conversation.turns.append(
        Turn(req.question, prompt.messages[-1]["content"], raw, prompt.snippets)
    )
    attributed = time.perf_counter()
    text = sanitize(complete_citations(raw, [*prompt.snippets, *prompt.visible]))
    attribution = (
        a.attributor.attribute(text, prompt.visible) if prompt.visible else Attribution(())
    )
    annotated = attribution.annotate(text)
    stats = gen.last
    timings = {
        **req.timings,
        "ttft_ms": round(((first_shown or time.perf_counter()) - req.started) * 1000, 1),
        "model_ttft_ms": round(stats.ttft_s * 1000, 1),
        "gen_tokens_per_s": round(stats.gen_tokens_per_s, 1),
        "prompt_tokens": prompt.tokens,
        "cached_prompt_tokens": stats.cached_tokens,
        "gen_tokens": stats.gen_tokens,
        "attribute_ms": round((time.perf_counter() - attributed) * 1000, 1),
        "total_ms": round((time.perf_counter() - req.started) * 1000, 1),
    }
    draft = draft_signals(a, req, prompt, tokens[: a.router.config.probe_tokens])
    signals = {
        **draft,
        "mean_logprob": round(draft["mean_logprob"], 4),
        **answer_signals(text, prompt.snippets, attribution),
    }
    answer = Answer(
        req.question,
        annotated,
        route.expert,
        route.reason,
        gen.name,
        sources(text, prompt.visible, attribution),
        prompt.snippets,
        timings,
        prompt.left_out,
        prompt.turns_dropped,
        req.escalated_from,
        list(attribution.claims),
        signals,
    )
    return AskEvent("done", annotated, answer=answer)
