"""Hybrid retrieval: fusion logic with fakes, channels and bad queries with the real stack."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import Repo

from localpilot.index.state import ChunkRow
from localpilot.retrieve import cap_per_file, clean_query, fuse, fuse_scores
from localpilot.service import Assistant
from localpilot.text import code_terms, query_terms, split_identifier


def test_identifier_splitting() -> None:
    assert split_identifier("parseHTTPResponse_v2") == ["parse", "http", "response", "v", "2"]
    assert "max_retries" in code_terms("self.max_retries = 3")
    assert query_terms("How are the retries configured for HTTPAdapter?") == [
        "retries",
        "configured",
        "http",
        "adapter",
        "httpadapter",
    ]


def test_rrf_rewards_agreement_between_channels() -> None:
    fused = fuse(
        {"vector": [("a", 0.9), ("b", 0.8)], "lexical": [("b", 10.0), ("c", 5.0)]},
        {"vector": 1.0, "lexical": 1.0},
    )
    assert [cid for cid, _ in fused] == ["b", "a", "c"]


def test_score_fusion_normalises_each_channel() -> None:
    fused = fuse_scores(
        {"vector": [("a", 0.8), ("b", 0.4)], "lexical": [("b", 30.0)], "symbol": []},
        {"vector": 1.0, "lexical": 0.6},
    )
    assert fused == [("b", pytest.approx(0.5 + 0.6)), ("a", pytest.approx(1.0))]


def test_cap_per_file_keeps_order() -> None:
    rows = {
        c: ChunkRow(c, "same.py" if c != "z" else "other.py", 1, 2, "python", "", "code", "")
        for c in "abcz"
    }
    capped = cap_per_file([(c, 1.0) for c in "abcz"], rows, 2)
    assert [c for c, _ in capped] == ["a", "b", "z"]


def test_clean_query_collapses_and_bounds() -> None:
    assert clean_query("  find \n the   thing ") == "find the thing"
    assert len(clean_query("x" * 20_000)) == 2000


APP = {
    "billing/invoice.py": (
        "class InvoiceRenderer:\n"
        "    def render_pdf(self, invoice):\n"
        "        return self.engine.draw(invoice.lines, template='invoice.html')\n\n"
        "def compute_vat(amount, rate=0.2):\n"
        "    return round(amount * rate, 2)\n"
    ),
    "auth/tokens.py": (
        "import hmac\n\n"
        "def verify_signature(payload, signature, secret):\n"
        "    expected = hmac.new(secret, payload, 'sha256').hexdigest()\n"
        "    return hmac.compare_digest(expected, signature)\n"
    ),
    "docs/intro.md": "# Billing\n\nInvoices are rendered to PDF and VAT is computed per line.\n",
}


@pytest.fixture
def app(make_repo: Callable[..., Repo], assistant_for: Callable[..., Assistant]) -> Assistant:
    a = assistant_for(make_repo(APP))
    a.index()
    return a


def test_exact_identifier_query_hits_via_lexical_and_symbol_channels(app: Assistant) -> None:
    hits = app.search("compute_vat", k=3, explain=True)
    assert hits[0].symbol == "compute_vat"
    assert {"vector", "lexical", "symbol", "fused"} <= set(hits[0].explain or {})
    assert hits[0].explain["lexical"]["rank"] == 1  # type: ignore[index]


def test_natural_language_query(app: Assistant) -> None:
    assert app.search("check an HMAC signature of a payload", k=1)[0].path == "auth/tokens.py"


@pytest.mark.parametrize(
    "query",
    [
        "x" * 10_000 + " verify signature",
        "名前を変更する関数 ünïcödé",
        '(.*)+[a-z]{3}\\ "unbalanced AND OR NOT NEAR( * ^ $',
        "-- DROP TABLE chunks; --",
        "\0\x01\x02",
    ],
)
def test_odd_queries_do_not_crash(app: Assistant, query: str) -> None:
    hits = app.search(query, k=5)
    assert isinstance(hits, list) and len(hits) <= 5


def test_term_coverage_says_how_much_of_a_question_the_repository_mentions(app: Assistant) -> None:
    signals = app.retriever.search("verify the hmac signature of a payload").signals
    assert signals["term_coverage"] == 1.0
    foreign = app.retriever.search("send sms reminders to a patient").signals["term_coverage"]
    assert foreign == 0.0
    half = app.retriever.search("render the invoice as a spreadsheet xlsx").signals["term_coverage"]
    assert 0.0 < half < 1.0
    chatty = "explain in great detail how every part of the invoice renderer works, line by line"
    assert (
        app.retriever.search(chatty).signals["term_coverage"] == 1.0
    )  # question prose is not the topic
    assert app.state.term_coverage([]) == 1.0 and app.state.term_coverage(['"); DROP']) == 0.0


def test_empty_query_returns_nothing(app: Assistant) -> None:
    assert app.search("   ") == [] and app.search("") == []


def test_hits_without_explain_omit_it(app: Assistant) -> None:
    hit = app.search("render invoice pdf", k=1)[0]
    assert "explain" not in hit.to_dict() and hit.symbol.startswith("InvoiceRenderer")


def _indexed_with_fakes(repo: Repo) -> Assistant:
    """An indexed Assistant over ``repo`` with the fake embedder and store and no reranker (logic tests)."""
    from localpilot.config import load_settings
    from localpilot.experts.embedder import HashEmbedder
    from localpilot.store import MemoryStore

    a = Assistant(
        repo.root,
        load_settings(repo.root, reranker="none"),
        embedder=HashEmbedder(),
        store=MemoryStore(),
    )
    a.index()
    return a


def test_rerank_blends_with_the_fused_score(make_repo: Callable[..., Repo]) -> None:
    """Logic test with the fakes: the reranker reorders candidates, ties are broken by the fused score."""
    from localpilot.experts.reranker import OverlapReranker

    repo = make_repo(
        {"a.py": "def alpha_total():\n    return 1\n", "b.py": "def beta_total():\n    return 2\n"}
    )
    a = _indexed_with_fakes(repo)
    plain = a.search("def alpha_total", k=2, explain=True)
    assert plain[0].symbol == "alpha_total" and "rerank" not in (plain[0].explain or {})
    a.retriever.reranker = OverlapReranker()
    reranked = a.search("def alpha_total", k=2, explain=True)
    top = reranked[0].explain or {}
    assert reranked[0].symbol == "alpha_total" and top["rerank"] == 1.0
    blend = a.retriever.config.rerank_blend
    assert reranked[0].score == pytest.approx(1.0 + blend * 1.0, abs=1e-3)
    a.close()


def test_definitions_are_found_by_the_last_part_of_a_symbol(make_repo: Callable[..., Repo]) -> None:
    """The symbol table (SQLite, no model) answers "where is this name defined?" with the first chunk of
    the definition; a name defined in more files than asked for is too ambiguous to help."""
    repo = make_repo(
        {
            "money.py": "class Money:\n    cents: int\n\n\ndef to_cents(amount):\n    return 1\n",
            "a.py": "def render():\n    return 'a'\n",
            "b.py": "def render():\n    return 'b'\n",
            "c.py": "def render():\n    return 'c'\n",
            "long.py": "def long_one():\n"
            + "".join(f"    x{i} = {i} * 2 + {i}\n" for i in range(400)),
        }
    )
    a = _indexed_with_fakes(repo)
    found = a.retriever.definitions(["to_cents", "render", "missing", "Money"])
    assert [(h.path, h.symbol) for h in found] == [("money.py", "to_cents"), ("money.py", "Money")]
    assert len(a.retriever.definitions(["render"], most=3)) == 3
    assert sum(symbol == "long_one" for _, symbol, _ in a.state.symbols().rows) > 2
    (long,) = a.retriever.definitions(["long_one"])  # split into windows: the first one, once
    assert long.start_line == 1 and long.end_line < 401
    a.close()


def test_code_outside_definitions_ranks_below_a_definition_it_outscores_by_a_little(
    make_repo: Callable[..., Repo],
) -> None:
    """Logic test with the fakes: an import block that names a function more often than its definition
    does outranks it at an even weight; scaled as code outside every definition, it comes second."""
    import dataclasses

    repo = make_repo(
        {
            "use.js": "import { pumpEncodedStream } from './codec'\n"
            "const pumpLimit = pumpEncodedStream.limit(pumpEncodedStream)\n",
            "codec.js": "function pumpEncodedStream(reader) {\n  return reader\n}\n",
        }
    )
    a = _indexed_with_fakes(repo)
    hits = a.search("pumpEncodedStream limit", k=5)
    assert [h.path for h in hits] == ["codec.js", "use.js"], hits
    assert hits[1].symbol == "" and hits[1].score < hits[0].score
    level = dataclasses.replace(a.retriever.config, anonymous_weight=1.0)
    a.retriever.config = level
    raised = a.search("pumpEncodedStream limit", k=5)
    assert [h.path for h in raised] == ["use.js", "codec.js"], raised
    a.close()
