"""Chunking with the real grammars and the real MiniLM tokenizer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from localpilot.experts.embedder import SentenceTransformerEmbedder
from localpilot.index.chunker import chunk_file
from localpilot.index.languages import detect_language, has_grammar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

POLYGLOT = Path(__file__).parent / "fixtures" / "polyglot"
EXPECTED: dict[str, list[str]] = tomllib.loads((POLYGLOT / "expected.toml").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_language_yields_its_qualified_symbols(
    name: str, minilm: SentenceTransformerEmbedder
) -> None:
    language = detect_language(name)
    assert has_grammar(language), f"{name} should map to a grammar, got {language}"
    text = (POLYGLOT / name).read_text()
    # A small budget forces big containers into header + members, so every member gets its own chunk.
    chunks = chunk_file(name, text, language, minilm.count_tokens, budget=40)
    symbols = {c.symbol for c in chunks}
    missing = [s for s in EXPECTED[name] if s not in symbols and not _inside_chunk(s, chunks)]
    assert not missing, f"{name}: symbols not found {missing}; got {sorted(symbols)}"


def _inside_chunk(symbol: str, chunks: list) -> bool:
    """A nested definition that fits inside its parent's single chunk is covered by that chunk."""
    return any(symbol.startswith(c.symbol + ".") and c.kind != "header" for c in chunks if c.symbol)


def test_chunks_are_exact_line_spans(minilm: SentenceTransformerEmbedder) -> None:
    for path in sorted(POLYGLOT.iterdir()):
        text = path.read_text()
        lines = text.split("\n")
        for c in chunk_file(
            path.name, text, detect_language(path.name), minilm.count_tokens, budget=40
        ):
            assert 1 <= c.start_line <= c.end_line <= len(lines)
            if c.kind != "header":
                assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line]), (path.name, c)


BIG_CLASS = '''\
import os

TIMEOUT = 30


class Client:
    """Sends requests with retries."""

    retries = 3

{methods}

def helper():
    return os.getcwd()
'''
METHOD = '''\
    def method_{i}(self, value):
        """Compute number {i} from the given value and the configured retries."""
        total = value * {i} + self.retries
        for attempt in range(self.retries):
            total += attempt * {i}
        return total
'''


def test_big_class_becomes_header_plus_members(minilm: SentenceTransformerEmbedder) -> None:
    text = BIG_CLASS.format(methods="\n".join(METHOD.format(i=i) for i in range(12)))
    chunks = chunk_file("client.py", text, "python", minilm.count_tokens, budget=200)
    by_symbol = {c.symbol: c for c in chunks}
    header = by_symbol["Client"]
    assert header.kind == "header"
    assert "class Client:" in header.text and "def method_0(self, value):" in header.text
    assert all(f"Client.method_{i}" in by_symbol for i in range(12))
    assert by_symbol["helper"].kind == "function"
    assert any(c.kind == "code" and "TIMEOUT = 30" in c.text for c in chunks), (
        "top-level code is chunked"
    )
    for c in chunks:
        assert c.truncated or minilm.count_tokens([c.text])[0] <= 200


def test_oversized_function_is_split_and_huge_line_is_flagged(
    minilm: SentenceTransformerEmbedder,
) -> None:
    body = "\n".join(f"    x{i} = compute_value({i}, name='item_{i}')" for i in range(200))
    text = f"def long_one():\n{body}\n    return x0\n\nBLOB = '{'word ' * 2000}'\n"
    chunks = chunk_file("long.py", text, "python", minilm.count_tokens, budget=120)
    parts = [c for c in chunks if c.symbol == "long_one"]
    assert len(parts) > 5
    assert parts[0].start_line == 1 and parts[-1].end_line == 202
    assert all(minilm.count_tokens([c.text])[0] <= 120 for c in parts)
    blob = [c for c in chunks if "BLOB" in c.text]
    assert blob and blob[0].truncated, (
        "a single line over the token limit is marked, not silently cut"
    )


def test_syntax_errors_still_index_what_parses(minilm: SentenceTransformerEmbedder) -> None:
    text = "def good(a, b):\n    return a + b\n\n\ndef broken(:\n    pass ((\n\n\nclass Fine:\n    x = 1\n"
    chunks = chunk_file("bad.py", text, "python", minilm.count_tokens, budget=200)
    symbols = {c.symbol for c in chunks}
    assert "good" in symbols and "Fine" in symbols
    assert "\n".join(c.text for c in chunks).count("broken") == 1, (
        "the unparsable part is still indexed as code"
    )


def test_markdown_chunks_by_heading(minilm: SentenceTransformerEmbedder) -> None:
    text = "# Title\n\nIntro.\n\n## Install\n\nRun it.\n\n```sh\n# not a heading\n```\n\n## Usage\n\nUse it.\n"
    chunks = chunk_file("README.md", text, "markdown", minilm.count_tokens, budget=200)
    assert [c.symbol for c in chunks] == ["Title", "Install", "Usage"]
    assert chunks[1].start_line == 5 and "# not a heading" in chunks[1].text


def test_plain_text_packs_paragraphs(minilm: SentenceTransformerEmbedder) -> None:
    paragraphs = [" ".join(f"word{i}x{j}" for j in range(30)) for i in range(20)]
    text = "\n\n".join(paragraphs) + "\n"
    chunks = chunk_file("notes.txt", text, "text", minilm.count_tokens, budget=150)
    assert len(chunks) > 3
    assert all(not c.text.startswith("\n") and not c.text.endswith("\n") for c in chunks)
    covered = {line for c in chunks for line in range(c.start_line, c.end_line + 1)}
    assert all(2 * i + 1 in covered for i in range(20)), "every paragraph line is in some chunk"


def test_embed_text_carries_path_and_symbol() -> None:
    from localpilot.types import Chunk

    c = Chunk(
        "src/http/client.py", 10, 20, "python", "Client.send", "function", "def send(self): ..."
    )
    assert c.embed_text().startswith("src/http/client.py Client.send\n")
    moved = Chunk(
        "lib/client.py", 1, 11, "python", "Client.send", "function", "def send(self): ..."
    )
    assert moved.content_hash == c.content_hash and moved.chunk_id != c.chunk_id


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_grammar_query_compiles_and_sample_parses_cleanly(name: str) -> None:
    from tree_sitter import Parser

    from localpilot.index.languages import grammar

    g = grammar(detect_language(name))
    tree = Parser(g.language).parse((POLYGLOT / name).read_bytes())
    assert not tree.root_node.has_error, f"{name} should be a valid sample"
    assert g.query.pattern_count > 0


def test_header_chunks_are_measured_on_their_final_text(
    minilm: SentenceTransformerEmbedder,
) -> None:
    methods = "\n".join(
        f"    def m{i}(self, alpha_{i}, beta_{i}, gamma_{i}):\n        return {i}\n"
        for i in range(60)
    )
    text = f'class Wide:\n    """Many members."""\n\n{methods}'
    chunks = chunk_file("wide.py", text, "python", minilm.count_tokens, budget=100)
    header = next(c for c in chunks if c.kind == "header")
    assert "def m0(self" in header.text and not header.truncated
    assert minilm.count_tokens([header.text])[0] <= 100


OVERLOADS = """\
export function parse(text: string): Doc;
export function parse(text: Buffer): Doc;
export function parse(text: string | Buffer): Doc {
  return new Doc(String(text));
}

export class Doc {
  constructor(public text: string) {}

  find(key: string): string;
  find(key: number): string;
  find(key: string | number): string {
    return this.text.split(",")[Number(key)];
  }
}
"""


def test_overload_signatures_belong_to_their_implementation(
    minilm: SentenceTransformerEmbedder,
) -> None:
    # a small budget splits the class, so its method is a chunk of its own
    chunks = chunk_file("doc.ts", OVERLOADS, "typescript", minilm.count_tokens, budget=60)
    spans = {c.symbol: (c.start_line, c.end_line) for c in chunks}
    assert spans["parse"] == (1, 5), chunks
    assert spans["Doc.find"] == (10, 14), chunks
    assert not [c for c in chunks if c.end_line - c.start_line == 0 and "parse" in c.text]


IMPL = """\
pub struct Stack { items: Vec<u32> }

impl Stack {
    pub fn push(&mut self, x: u32) {
        self.items.push(x);
    }

    pub fn pop(&mut self) -> Option<u32> {
        self.items.pop()
    }
}

impl Default for Stack {
    fn default() -> Self {
        Stack { items: Vec::new() }
    }
}
"""


def test_impl_with_several_methods_is_split_even_when_it_fits(
    minilm: SentenceTransformerEmbedder,
) -> None:
    chunks = chunk_file("stack.rs", IMPL, "rust", minilm.count_tokens, budget=200)
    by_symbol = {c.symbol: c for c in chunks}
    assert (by_symbol["Stack.push"].start_line, by_symbol["Stack.push"].end_line) == (4, 6)
    assert (by_symbol["Stack.pop"].start_line, by_symbol["Stack.pop"].end_line) == (8, 10)
    header = [c for c in chunks if c.kind == "header"]
    assert header and "pub fn pop(&mut self)" in header[0].text
    # one method: the impl stays a single chunk
    single = [c for c in chunks if c.start_line == 13]
    assert len(single) == 1 and single[0].end_line == 17 and single[0].kind == "impl"


def test_small_class_stays_whole(minilm: SentenceTransformerEmbedder) -> None:
    text = (
        "class Point:\n    def __init__(self, x):\n        self.x = x\n\n"
        "    def norm(self):\n        return abs(self.x)\n"
    )
    chunks = chunk_file("p.py", text, "python", minilm.count_tokens, budget=200)
    assert [(c.symbol, c.kind, c.start_line, c.end_line) for c in chunks] == [
        ("Point", "class", 1, 6)
    ]


def test_counting_before_the_model_loads_matches_the_model(
    minilm: SentenceTransformerEmbedder,
) -> None:
    """Chunking runs on tokenizer.json alone (no torch, so keyword search is ready sooner); its counts and
    length limit are the loaded model's, for code, prose, non-ASCII and texts far past the limit."""
    fresh = SentenceTransformerEmbedder(minilm.model_dir, minilm.name, device="cpu")
    texts = [
        *(p.read_text(encoding="utf-8") for p in sorted(POLYGLOT.iterdir())),
        "def größe(ä): return ä  # naïve café 🚀",
        "x = 1\n" * 400,
        "",
        '\t\tif err != nil {\n\t\t\treturn fmt.Errorf("%w", err)\n\t\t}',
    ]
    assert fresh.count_tokens(texts) == minilm.count_tokens(texts)
    assert fresh.max_tokens == minilm.max_tokens
    assert fresh._model is None  # counted without loading the network


KOA_STYLE = """\
/* Copyright header, not a doc block. */

module.exports = {
  /**
   * Shorthand for:
   *
   *    this.protocol == 'https'
   */

  get secure() {
    return 'https' === this.protocol;
  },

  /**
   * Get the ETag of a response.
   */

  get etag() {
    return this.get('ETag');
  },
};
"""


def test_doc_block_one_blank_line_above_belongs_to_its_definition(
    minilm: SentenceTransformerEmbedder,
) -> None:
    # a small budget splits the object, so each getter is a chunk of its own
    chunks = chunk_file("request.js", KOA_STYLE, "javascript", minilm.count_tokens, budget=40)
    spans = {c.symbol.rsplit(".", 1)[-1]: (c.start_line, c.end_line) for c in chunks if c.symbol}
    assert spans["secure"] == (4, 12), chunks
    assert spans["etag"] == (14, 20), chunks
    comment_only = [
        c
        for c in chunks
        if all(not ln.strip() or ln.strip().startswith(("/*", "*")) for ln in c.text.split("\n"))
    ]
    assert all("Copyright" in c.text for c in comment_only), comment_only


def test_go_comment_after_a_blank_line_is_not_a_doc_comment(
    minilm: SentenceTransformerEmbedder,
) -> None:
    text = "package p\n\n// Section: helpers.\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a + b\n}\n"
    chunks = chunk_file("p.go", text, "go", minilm.count_tokens, budget=200)
    add = next(c for c in chunks if c.symbol == "Add")
    assert (add.start_line, add.end_line) == (5, 8), chunks


COMMONJS_STYLE = """\
'use strict';
var utils = require('./utils');

function DataReader(data) {
    this.data = data;
    this.index = 0;
}

DataReader.prototype = {
    checkOffset: function(offset) {
        this.checkIndex(this.index + offset);
    },
    'setIndex': function(newIndex) {
        this.index = newIndex;
    },
};

DataReader.prototype.skip = function(n) {
    this.setIndex(this.index + n);
};

exports.inherits = function (ctor, superCtor) {
    ctor.prototype = Object.create(superCtor.prototype);
};

module.exports.load = (data) => new DataReader(data);
"""


@pytest.mark.parametrize("name", ["reader.js", "reader.ts"])
def test_functions_assigned_to_properties_are_definitions(
    name: str, minilm: SentenceTransformerEmbedder
) -> None:
    chunks = chunk_file(name, COMMONJS_STYLE, detect_language(name), minilm.count_tokens, budget=40)
    spans = {c.symbol: (c.start_line, c.end_line) for c in chunks if c.kind != "header"}
    assert spans["DataReader.checkOffset"] == (10, 12), chunks
    assert spans["DataReader.setIndex"] == (13, 15), chunks
    assert spans["DataReader.skip"] == (18, 20), chunks
    assert spans["inherits"] == (22, 24), chunks
    assert spans["load"] == (26, 26), chunks
    whole = chunk_file(name, COMMONJS_STYLE, detect_language(name), minilm.count_tokens, budget=200)
    assert ("DataReader", "class", 9, 16) in {
        (c.symbol, c.kind, c.start_line, c.end_line) for c in whole
    }
