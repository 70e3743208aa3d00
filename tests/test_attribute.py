"""Attribution: answer sentences cited by the real encoders against the snippets the prompt showed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from localpilot.attribute import UNSUPPORTED, Attributor, sentences
from localpilot.config import load_settings
from localpilot.experts.embedder import HashEmbedder, SentenceTransformerEmbedder
from localpilot.experts.llm import ScriptedGenerator
from localpilot.service import Assistant
from localpilot.types import Hit
from tests.conftest import Repo

ROUTES = '''import re


def route_pattern(path):
    """Turn a route path such as /users/{id:int} into a regular expression."""
    pattern = "^"
    for name, kind in re.findall(r"{(\\\\w+):(\\\\w+)}", path):
        converter = CONVERTERS[kind]
        pattern += f"(?P<{name}>{converter.regex})"
    return re.compile(pattern + "$")


def redirect_slashes(request):
    """Send a request for /path/ to /path."""
    url = request.url
    if url.path.endswith("/"):
        return url.replace(path=url.path.rstrip("/"))
    return None
'''

MAIL = '''def send_invoice_email(customer, invoice):
    """Mail an invoice as a PDF attachment."""
    pdf = render_pdf(invoice)
    message = Message(to=customer.email, subject="Your invoice")
    message.attach("invoice.pdf", pdf)
    smtp_send(message)
'''


def test_sentences_keep_code_blocks_whole_and_skip_fragments() -> None:
    text = "It compiles the path. Done.\n```python\nx = 1\ny = 2\n```\nThen the regex is returned to the caller."
    parts = [text[s:e] for s, e in sentences(text)]
    assert parts == [
        "It compiles the path.",
        "```python\nx = 1\ny = 2\n```",
        "Then the regex is returned to the caller.",
    ]


def test_each_claim_is_cited_with_the_lines_that_support_it(
    make_repo: Callable[..., Repo], assistant_for: Callable[..., Assistant]
) -> None:
    repo = make_repo({"routing.py": ROUTES, "mail.py": MAIL})
    a = assistant_for(repo)
    a.index()
    hits = a.search("how is a route path turned into a regular expression", 5)
    answer = (
        "route_pattern builds the pattern from each {name:kind} part, using the converter's regex. "
        "Invoices are mailed as a PDF attachment by send_invoice_email. "
        "The weather in Lisbon is usually mild in spring."
    )
    attribution = a.parts.attributor.attribute(answer, hits)
    first, second, third = attribution.claims
    assert first.path == "routing.py" and 4 <= first.start_line <= first.end_line <= 10
    assert first.end_line - first.start_line < 8  # lines, not the whole chunk
    assert second.path == "mail.py" and second.supported
    assert not third.supported  # nothing shown supports it
    marked = attribution.annotate(answer)
    assert f"[routing.py:{first.start_line}-{first.end_line}]" in marked and marked.endswith(
        UNSUPPORTED
    )
    assert attribution.sources()[0][3] >= attribution.sources()[-1][3]  # best supported first


@pytest.fixture
def scripted(
    make_repo: Callable[..., Repo], minilm: SentenceTransformerEmbedder
) -> Iterator[Callable[[str], Assistant]]:
    """A real Assistant (the default embedder and reranker, Chroma) over routing.py and mail.py whose small
    model says ``script``; indexed, closed at teardown."""
    repo = make_repo({"routing.py": ROUTES, "mail.py": MAIL})
    made: list[Assistant] = []

    def build(script: str) -> Assistant:
        small = ScriptedGenerator(script=script)
        made.append(
            Assistant(
                repo.root, load_settings(repo.root), embedder=minilm, generators={"small": small}
            )
        )
        made[-1].index()
        return made[-1]

    yield build
    for a in made:
        a.close()


def test_ask_cites_by_attribution_when_the_model_writes_no_lines(
    scripted: Callable[[str], Assistant],
) -> None:
    a = scripted("The route_pattern function builds a regular expression from the route path.")
    answer = a.ask("How is a route path like /users/{id:int} turned into a regex?").result()
    assert answer.expert == "small"
    assert answer.citations and answer.citations[0].how == "attributed"
    top = answer.citations[0]
    assert top.path == "routing.py" and 4 <= top.start_line <= top.end_line <= 10
    assert f"[routing.py:{top.start_line}-{top.end_line}]" in answer.text
    assert answer.coverage == 1.0 and answer.to_dict()["claims"][0]["path"] == "routing.py"


def test_attribution_without_stored_vectors_embeds_the_snippets() -> None:
    hit = Hit(
        "a.py",
        10,
        12,
        "parse_header",
        "python",
        "function",
        1.0,
        "def parse_header(line):\n    key, value = line.split(':', 1)\n    return key.strip(), value.strip()",
    )
    embedder = HashEmbedder()
    attributor = Attributor(embedder.embed, lambda hits: [None for _ in hits])
    claims = attributor.attribute(
        "parse_header splits the line at the first colon into key and value.", [hit]
    ).claims
    assert claims[0].path == "a.py" and 10 <= claims[0].start_line <= claims[0].end_line <= 12


def test_a_question_the_code_cannot_answer_is_not_found_without_an_llm(
    scripted: Callable[[str], Assistant],
) -> None:
    a = scripted("SMS reminders are sent by the reminder service.")
    answer = a.ask("How do we send SMS reminders to users?").result()
    assert answer.expert == "search" and answer.model == ""  # no LLM ran
    assert answer.text.startswith("Not found in this repository") and answer.reason.startswith(
        "not found"
    )
    assert answer.hits and "Nearest code" in answer.text  # the nearest hits, not an invented answer
    forced = a.ask("How do we send SMS reminders to users?", expert="small").result()
    assert forced.expert == "small"  # asking an expert by name still gets it


def test_a_sentence_repeating_a_doc_comment_cites_the_code_it_documents() -> None:
    text = (
        "/**\n * Get the ETag of a response.\n *\n * @return {String}\n */\n\n"
        "get etag() {\n  return this.get('ETag');\n}"
    )
    hit = Hit("lib/response.js", 100, 108, "etag", "javascript", "method", 1.0, text)
    attributor = Attributor(HashEmbedder().embed, lambda hits: [None for _ in hits])
    claim = attributor.attribute(
        "It returns the ETag of a response from its headers.", [hit]
    ).claims[0]
    assert (
        claim.path == "lib/response.js" and claim.start_line == 106
    )  # `get etag() {`, not the comment


def test_a_summarised_header_chunk_is_cited_within_its_lines() -> None:
    header = "class Limiter {\n  /**\n   * Adds a job to the queue.\n       ...\n  /**\n   * Runs a job.\n       ..."
    hit = Hit(
        "lib/limiter.js", 10, 12, "Limiter", "javascript", "header", 1.0, header
    )  # 7 text lines, 3 file lines
    attributor = Attributor(HashEmbedder().embed, lambda hits: [None for _ in hits])
    claim = attributor.attribute("The Limiter runs a job from the queue.", [hit]).claims[0]
    assert claim.path == "lib/limiter.js" and 10 <= claim.start_line <= claim.end_line <= 12


COOKIES_FROM_DICT = Hit(
    "requests/cookies.py",
    583,
    588,
    "cookiejar_from_dict",
    "python",
    "function",
    0.8,
    "def cookiejar_from_dict(cookie_dict, cookiejar=None, overwrite=True):\n"
    "    if cookiejar is None:\n        cookiejar = RequestsCookieJar()\n    for name in cookie_dict:\n"
    "        cookiejar.set_cookie(create_cookie(name, cookie_dict[name]))\n    return cookiejar",
)
DICT_FROM_COOKIES = Hit(
    "requests/utils.py",
    500,
    504,
    "dict_from_cookiejar",
    "python",
    "function",
    1.9,
    "def dict_from_cookiejar(cj):\n    cookie_dict = {}\n    for cookie in cj:\n"
    "        cookie_dict[cookie.name] = cookie.value\n    return cookie_dict",
)


def _lines_of(hit: Hit) -> Callable[[object], bool]:
    return lambda c: c.path == hit.path and hit.start_line <= c.start_line <= hit.end_line  # type: ignore[attr-defined]


def test_a_claim_naming_a_shown_function_is_cited_to_it_over_better_ranked_code() -> None:
    ranked_first = replace(COOKIES_FROM_DICT, score=1.9)
    named = replace(DICT_FROM_COOKIES, score=0.8)
    attributor = Attributor(HashEmbedder().embed, lambda hits: [None for _ in hits])
    claim = attributor.attribute(
        "The `dict_from_cookiejar` function takes a cookie jar and returns a key/value cookie dictionary.",
        [ranked_first, named],
    ).claims[0]
    assert _lines_of(named)(claim), claim


def test_a_claim_two_snippets_support_alike_goes_to_the_better_ranked_one() -> None:
    # the lower-ranked snippet shares slightly more of the sentence's terms; retrieval's order decides
    attributor = Attributor(HashEmbedder().embed, lambda hits: [None for _ in hits])
    claim = attributor.attribute(
        "The cookie dictionary holds each cookie of the jar by name.",
        [DICT_FROM_COOKIES, COOKIES_FROM_DICT],
    ).claims[0]
    assert _lines_of(DICT_FROM_COOKIES)(claim), claim


def test_answer_signals_say_whether_the_answer_rests_on_the_best_hit() -> None:
    from localpilot.asking import answer_signals

    attributor = Attributor(HashEmbedder().embed, lambda hits: [None for _ in hits])
    text = "The `dict_from_cookiejar` function takes a cookie jar and returns a key/value cookie dictionary."
    shown = [DICT_FROM_COOKIES, COOKIES_FROM_DICT]
    on_top = answer_signals(text, shown, attributor.attribute(text, shown))
    assert on_top["top_cited"] == 1.0 and on_top["names_top"] == 1.0 and on_top["top_share"] == 1.0
    elsewhere = answer_signals(text, shown[::-1], attributor.attribute(text, shown[::-1]))
    assert elsewhere["top_cited"] == 0.0 and elsewhere["names_top"] == 0.0


def test_a_small_answer_that_ignores_the_best_match_is_answered_again_by_the_big_model(
    make_repo: Callable[..., Repo], minilm: SentenceTransformerEmbedder
) -> None:
    from localpilot.answer import Conversation
    from localpilot.confidence import Confidence, Logistic

    repo = make_repo({"routing.py": ROUTES, "mail.py": MAIL})
    small = ScriptedGenerator(script="Mail is sent with an attachment by the message helpers here.")
    big = ScriptedGenerator(
        script="route_pattern compiles each {name:kind} part into a named group."
    )
    a = Assistant(
        repo.root,
        load_settings(repo.root),
        embedder=minilm,
        generators={"small": small, "big": big},
    )
    try:
        a.index()
        # p < 0.5 unless the answer names the best hit
        a.router.confidence = Confidence(None, None, Logistic(("names_top",), (4.0,), -2.0, 0.5))
        conversation = Conversation()
        events = list(a.ask("How is a route path turned into a regular expression?", conversation))
        kinds = [e.kind for e in events]
        assert "escalate" in kinds and kinds[-1] == "done"
        done = events[-1].answer
        assert done is not None and done.expert == "big" and done.escalated_from
        assert "route_pattern" in done.text and done.signals["names_top"] == 1.0
        assert len(conversation.turns) == 1 and "route_pattern" in conversation.turns[0].answer
        kept = a.ask(
            "How is a route path turned into a regular expression?", expert="small"
        ).result()
        assert kept.expert == "small"  # asking an expert by name is never re-answered
    finally:
        a.close()
