"""Text helpers shared by indexing and retrieval: code-aware terms for the lexical and symbol channels."""

from __future__ import annotations

import re

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

STOPWORDS = frozenset(
    """
a an and are as at be been by can do does for from has have how i if in into is it its of on or our should so
that the their them then there these this those to was we were what when where which who why will with you your
code function method class file files find show me return returns value values use used using given all any
""".split()
)

#: Prose of questions that code rarely spells ("explain in great detail how every part works"): left out of
#: ``term_coverage``, which asks whether the repository mentions what a question is about.
QUESTION_WORDS = frozenset(
    """
about across also another anything around ask before between both bit briefly can could describe detail
detailed details does doing done each else enough entire every everything example exactly explain
explanation great happen happens happening help here idea implement implemented implementation inside
just kind know less like line lines look made main make makes many mean means more most much need
needs one only other overall part parts please possible really repository repo same see some
something step steps tell thing things through walk want way ways well whole why work works working
""".split()
)


def split_identifier(ident: str) -> list[str]:
    """``parseHTTPResponse_v2`` -> ``["parse", "http", "response", "v2"]`` (lower-case parts)."""
    parts: list[str] = []
    for piece in ident.split("_"):
        parts.extend(p.lower() for p in _CAMEL.findall(piece))
    return [p for p in parts if p]


def code_terms(text: str) -> list[str]:
    """Every identifier in ``text`` as its split parts plus, when compound, the whole identifier."""
    out: list[str] = []
    for ident in _IDENT.findall(text):
        parts = split_identifier(ident)
        out.extend(parts)
        whole = ident.lower().strip("_")
        if len(parts) > 1 and whole:
            out.append(whole)
    return out


def query_terms(text: str) -> list[str]:
    """Distinct code terms of a query without English stop words, in order of appearance."""
    seen: dict[str, None] = {}
    for term in code_terms(text):
        if term not in STOPWORDS and len(term) > 1:
            seen.setdefault(term, None)
    return list(seen)
