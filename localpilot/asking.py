"""One request, end to end: route → retrieve → (maybe) escalate → prompt → stream → cite.

The router picks the cheapest expert; the small model's first tokens are held back until its
confidence is known, so a low-confidence draft is replaced by the big model before the user sees it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from localpilot.answer import (
    Answer,
    AskEvent,
    Budget,
    Conversation,
    Prompt,
    Turn,
    build_prompt,
    citations,
    complete_citations,
    format_snippet,
    mean_logprob,
    sanitize,
    search_answer_text,
)
from localpilot.config import Settings
from localpilot.experts.llm import Generator, Token
from localpilot.retrieve import Retriever
from localpilot.router import Route, Router
from localpilot.types import Hit

CONTEXT_HITS = 8  # reranked hits offered to the prompt builder


class Backend(Protocol):
    settings: Settings
    retriever: Retriever
    router: Router

    def generator(self, which: str = "small") -> Generator: ...


def answer_request(a: Backend, question: str, conversation: Conversation, expert: str | None,
                   cancel: threading.Event | None) -> Iterator[AskEvent]:
    started = time.perf_counter()
    route = a.router.decide(question, expert)
    yield AskEvent("route", f"{route.expert}: {route.reason}")
    found = a.retriever.search(question, CONTEXT_HITS)
    hits = found.hits
    timings = {k: round(v, 1) for k, v in found.timings.items()}
    yield AskEvent("hits", hits=hits)
    if route.expert == "search":
        answer = Answer(question, search_answer_text(hits), "search", route.reason, "", hits=hits, timings=timings)
        yield AskEvent("done", answer.text, answer=answer)
        return
    if expert is None and hits and route.expert == "small":  # only a small route can escalate for size
        small = a.generator("small")
        route = a.router.after_retrieval(route, relevant_tokens(hits, small), a.settings.context_tokens)
    yield from _generate(a, route, question, hits, conversation, expert is not None, cancel, started, timings)


def relevant_tokens(hits: Sequence[Hit], generator: Generator, share: float = 0.8) -> int:
    """Tokens of the hits that score close to the best one: the code the answer needs to see."""
    top = max(h.score for h in hits)
    floor = top * share if top > 0 else top / share
    return sum(generator.count_tokens(format_snippet(h)) for h in hits if h.score >= floor)


def _generate(a: Backend, route: Route, question: str, hits: list[Hit], conversation: Conversation, forced: bool,
              cancel: threading.Event | None, started: float, timings: dict[str, float],
              escalated_from: str = "") -> Iterator[AskEvent]:
    gen = a.generator(route.expert)
    scale = 2 if route.expert == "big" else 1
    budget = Budget(gen.n_ctx, a.settings.answer_tokens, a.settings.context_tokens * scale)
    prompt = build_prompt(question, hits, conversation, gen, budget)
    probe = route.expert == "small" and not forced and a.router.big_available
    tokens: list[Token] = []
    first_shown = 0.0
    window = a.router.config.probe_tokens
    stream = gen.stream(prompt.messages, a.settings.answer_tokens, cancel)
    for token in stream:
        tokens.append(token)
        if probe and len(tokens) < window:
            continue
        if probe:  # the window is full: judge the draft before anyone sees it
            probe = False
            score = mean_logprob(tokens)
            if not a.router.confident(score):
                stream.close()  # type: ignore[attr-defined]
                big = a.router.low_confidence(score)
                yield AskEvent("escalate", big.reason)
                yield from _generate(a, big, question, hits, conversation, True, cancel, started, timings, gen.name)
                return
            first_shown = time.perf_counter()
            yield from (AskEvent("token", t.text) for t in tokens)
            continue
        first_shown = first_shown or time.perf_counter()
        yield AskEvent("token", token.text)
    if probe and tokens:  # the whole answer fit in the probe window
        first_shown = time.perf_counter()
        yield from (AskEvent("token", t.text) for t in tokens)
    yield from _finish(a, route, question, prompt, tokens, conversation, gen, started, first_shown, timings,
                       escalated_from)


def _finish(a: Backend, route: Route, question: str, prompt: Prompt, tokens: list[Token],
            conversation: Conversation, gen: Generator, started: float, first_shown: float,
            timings: dict[str, float], escalated_from: str) -> Iterator[AskEvent]:
    raw = "".join(t.text for t in tokens)
    text = sanitize(complete_citations(raw.strip(), [*prompt.snippets, *prompt.visible]))
    conversation.turns.append(Turn(question, prompt.messages[-1]["content"], raw.strip(), prompt.snippets))
    stats = gen.last
    timings = {**timings, "ttft_ms": round(((first_shown or time.perf_counter()) - started) * 1000, 1),
               "model_ttft_ms": round(stats.ttft_s * 1000, 1),
               "gen_tokens_per_s": round(stats.gen_tokens_per_s, 1),
               "prompt_tokens": prompt.tokens, "cached_prompt_tokens": stats.cached_tokens,
               "gen_tokens": stats.gen_tokens, "total_ms": round((time.perf_counter() - started) * 1000, 1)}
    answer = Answer(question, text, route.expert, route.reason, gen.name, citations(text, prompt.visible),
                    prompt.snippets, timings, prompt.left_out, prompt.turns_dropped, escalated_from)
    yield AskEvent("done", text, answer=answer)
