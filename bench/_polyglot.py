"""Per-language retrieval corpora: real third-party code, every doc comment stripped, queries from the docs.

The same shape as ``_corpus.py`` (Python sdists) for JavaScript, TypeScript, Go, Rust and Java:

* sources are pinned and fetched once into ``~/.cache/localpilot-bench`` — npm tarballs (``npm pack``),
  Debian binary packages that carry sources (``golang-*-dev`` → ``/usr/share/gocode/src``,
  ``librust-*-dev`` → ``/usr/share/cargo/registry``; ``apt-get download`` + ``dpkg-deb -x``, nothing is
  installed) and Debian source packages for Java (``apt-get source --download-only`` with a private
  deb-src list);
* every doc comment is removed — functions', classes', types', fields' — with the file re-parsed after
  stripping so line numbers are exact (JS/TS/Java ``/** */``, Rust ``///`` ``//!`` ``/** */`` ``/*! */``,
  Go comments outside function bodies, which is where Go's doc comments live);
* the query of a function is the first sentence of its original doc comment (JSDoc/Javadoc tags, inline
  ``{@link X}``, HTML and Markdown reduced to text); Go's leading identifier ("Foo returns …") is dropped
  so the name is not given away. TypeScript overloads: the implementation is the target and the doc
  comment of the first overload signature is its query.

A package listed in ``../shared/reserved-packages.txt`` is refused, whatever its source.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _corpus import (
    CACHE,
    MIN_QUERY_WORDS,
    Corpus,
    Function,
    build_corpus,
    first_sentence,
    init_repo,
)
from _corpus import reserved as reserved_names

log = logging.getLogger("bench.polyglot")


@dataclass(frozen=True)
class Source:
    """One pinned package: where it comes from and which directory under it holds the code."""

    kind: str  # "npm" | "deb" | "debsrc" | "pypi"
    name: str  # npm name, Debian package name or PyPI name
    version: str
    root: str  # directory inside the extracted package holding the code ("" = top)
    label: str  # short package name used as the top directory of the corpus repo


GOCODE, CARGO = "usr/share/gocode/src", "usr/share/cargo/registry"

#: Benchmark packages (≥ 2 per language), none of them reserved and none used for training.
PACKAGES: dict[str, list[Source]] = {
    "python": [
        Source("pypi", "requests", "2.34.2", "", "requests"),
        Source("pypi", "attrs", "26.1.0", "", "attrs"),
        Source("pypi", "flask", "3.1.3", "", "flask"),
    ],
    "javascript": [
        Source("npm", "node-forge", "1.3.1", "lib", "node-forge"),
        Source("npm", "mongoose", "8.8.1", "lib", "mongoose"),
        Source("npm", "eslint", "9.14.0", "lib", "eslint"),
        Source("npm", "ws", "8.18.0", "lib", "ws"),
        Source("npm", "knex", "3.1.0", "lib", "knex"),
    ],
    "typescript": [
        Source("npm", "@reduxjs/toolkit", "2.3.0", "src", "redux-toolkit"),
        Source("npm", "@trpc/server", "10.45.2", "src", "trpc-server"),
        Source("npm", "@noble/curves", "1.6.0", "src", "noble-curves"),
        Source("npm", "mobx", "6.13.5", "src", "mobx"),
        Source("npm", "@tanstack/query-core", "5.59.0", "src", "query-core"),
        Source("npm", "@tanstack/table-core", "8.20.5", "src", "table-core"),
        Source("npm", "@noble/hashes", "1.5.0", "src", "noble-hashes"),
    ],
    "go": [
        Source(
            "deb", "golang-github-google-go-cmp-dev", "0.5.9-1", "usr/share/gocode/src", "go-cmp"
        ),
        Source("deb", "golang-gopkg-yaml.v3-dev", "3.0.1-3", "usr/share/gocode/src", "yaml.v3"),
        Source(
            "deb",
            "golang-github-spf13-pflag-dev",
            "1.0.6~git20210604-d5e0c0615ace-1",
            "usr/share/gocode/src",
            "pflag",
        ),
        Source(
            "deb", "golang-github-burntsushi-toml-dev", "1.2.0-2", "usr/share/gocode/src", "toml"
        ),
        Source(
            "deb",
            "golang-github-mitchellh-mapstructure-dev",
            "1.5.0-2",
            "usr/share/gocode/src",
            "mapstructure",
        ),
    ],
    "rust": [
        Source("deb", "librust-bytes-dev", "1.2.1-1", "usr/share/cargo/registry", "bytes"),
        Source("deb", "librust-memchr-dev", "2.5.0-1", "usr/share/cargo/registry", "memchr"),
        Source("deb", "librust-smallvec-dev", "1.9.0-1", "usr/share/cargo/registry", "smallvec"),
        Source("deb", "librust-semver-dev", "1.0.14-1", "usr/share/cargo/registry", "semver"),
        Source("deb", "librust-chrono-dev", "0.4.23-2", "usr/share/cargo/registry", "chrono"),
        Source("deb", "librust-url-dev", "2.3.1-1", "usr/share/cargo/registry", "url"),
    ],
    "java": [
        Source("debsrc", "libcommons-lang3-java", "3.12.0", "src/main/java", "commons-lang3"),
        Source(
            "debsrc", "libcommons-collections4-java", "4.2", "src/main/java", "commons-collections4"
        ),
    ],
}

#: Dev packages for tuning per-language settings (``tune_languages.py``): neither benchmark packages, nor
#: training packages of the embedder (``models/polyglot_data.TRAIN_SOURCES``; the reranker saw Python only),
#: nor reserved. Java has none: Debian's source mirror here serves only the benchmark's two.
DEV_PACKAGES: dict[str, list[Source]] = {
    "javascript": [
        Source("npm", "jszip", "3.10.2", "lib", "jszip"),
        Source("npm", "fastify", "5.2.1", "lib", "fastify"),
        Source("npm", "pino", "9.6.0", "lib", "pino"),
    ],
    "typescript": [
        Source("npm", "@tanstack/router-core", "1.171.39", "src", "router-core"),
        Source("npm", "@tanstack/virtual-core", "3.19.13", "src", "virtual-core"),
        Source("npm", "@scure/base", "2.4.0", "", "scure-base"),
        Source("npm", "@tanstack/store", "0.11.3", "src", "tanstack-store"),
    ],
    "go": [
        Source("deb", "golang-github-pkg-errors-dev", "0.9.1-2", GOCODE, "pkg-errors"),
        Source("deb", "golang-github-dustin-go-humanize-dev", "1.0.0-3", GOCODE, "humanize"),
        Source("deb", "golang-github-gorilla-websocket-dev", "1.5.0-2", GOCODE, "websocket"),
        Source("deb", "golang-github-fsnotify-fsnotify-dev", "1.6.0-2", GOCODE, "fsnotify"),
    ],
    "rust": [
        Source("deb", "librust-byteorder-dev", "1.4.3-2", CARGO, "byteorder"),
        Source("deb", "librust-either-dev", "1.6.1-1", CARGO, "either"),
        Source("deb", "librust-bitflags-dev", "1.3.2-3", CARGO, "bitflags"),
        Source("deb", "librust-base64-dev", "0.13.0-1", CARGO, "base64"),
        Source("deb", "librust-unicode-segmentation-dev", "1.9.0-1", CARGO, "unicode-seg"),
    ],
}

EXTENSIONS = {
    "javascript": (".js", ".mjs", ".cjs"),
    "typescript": (".ts", ".mts"),
    "go": (".go",),
    "rust": (".rs",),
    "java": (".java",),
}
SKIP_PARTS = {
    "test",
    "tests",
    "__tests__",
    "testdata",
    "testing",
    "spec",
    "benches",
    "bench",
    "examples",
    "example",
    "docs",
    "doc",
    "fuzz",
    "internal_test",
}
SKIP_SUFFIXES = (".d.ts", "_test.go", ".test.ts", ".spec.ts", ".test.js", ".spec.js", ".min.js")
MAX_FILE_BYTES = 400_000
MAX_FILES = 150  # per package: a seeded sample keeps big packages (commons-collections) affordable


def refuse_reserved(src: Source) -> None:
    """Raise if ``src`` is (or is packaged from) a package kept for independent evaluation."""
    names = {src.name.lower(), src.label.lower(), src.name.lower().split("/")[-1]}
    deb = re.sub(r"^(golang-|librust-|lib)|(-dev|-java)$", "", src.name.lower())
    names |= {deb, deb.split("-")[-1]}
    hit = names & reserved_names() | {
        r for r in reserved_names() if "/" in r and r.replace("/", "-").replace(".", "-") in deb
    }
    if hit:
        raise SystemExit(f"{src.name} is reserved for independent evaluation ({sorted(hit)})")


# ------------------------------------------------------------------------------------------- fetching


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)


def fetch(src: Source, cache: Path = CACHE) -> Path:
    """The extracted package's code directory (``src.root`` inside it), fetched once."""
    refuse_reserved(src)
    top = cache / "poly" / f"{src.label}-{src.version}"
    if not top.is_dir():
        work = cache / "poly" / "dl" / src.label
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        log.info("fetching %s %s %s", src.kind, src.name, src.version)
        {"npm": _fetch_npm, "deb": _fetch_deb, "debsrc": _fetch_debsrc}[src.kind](src, work)
        shutil.move(str(work / "x"), top)
    base = _code_root(top, src)
    if not base.is_dir():
        raise RuntimeError(f"{src.name}: no {src.root} in {top}")
    return base


def _code_root(top: Path, src: Source) -> Path:
    base = top / src.root
    if src.kind == "deb" and src.root.endswith("cargo/registry"):
        crates = sorted(base.iterdir())
        return crates[0] / "src"
    if src.kind == "deb":  # gocode/src/<module path>: the deepest directory above every .go file
        dirs = {str(p.parent) for p in base.rglob("*.go")}
        return Path(os.path.commonpath(sorted(dirs))) if dirs else base
    return base


def _fetch_npm(src: Source, work: Path) -> None:
    _run(["npm", "pack", "-q", f"{src.name}@{src.version}"], work)
    (tgz,) = work.glob("*.tgz")
    with tarfile.open(tgz) as tf:
        tf.extractall(work, filter="data")
    (work / "package").rename(work / "x")


def _fetch_deb(src: Source, work: Path) -> None:
    _run(["apt-get", "download", f"{src.name}={src.version}"], work)
    (deb,) = work.glob("*.deb")
    _run(["dpkg-deb", "-x", deb.name, "x"], work)


def _fetch_debsrc(src: Source, work: Path) -> None:
    lists = work / "lists"
    (lists / "partial").mkdir(parents=True)
    (work / "sources.list").write_text("deb-src http://deb.debian.org/debian bookworm main\n")
    opts = [
        "-o",
        f"Dir::Etc::SourceList={work / 'sources.list'}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={lists}",
    ]
    _run(["apt-get", *opts, "update"], work)
    _run(["apt-get", *opts, "source", "--download-only", src.name], work)
    (orig,) = work.glob(f"*_{src.version}.orig.tar.*" if src.version else "*.orig.tar.*")
    log.info("%s: %s", src.name, orig.name)
    with tarfile.open(orig) as tf:
        tf.extractall(work / "orig", filter="data")
    (inner,) = (work / "orig").iterdir()
    inner.rename(work / "x")


def code_files(base: Path, language: str) -> list[Path]:
    out = []
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base)
        if not p.is_file() or not p.name.endswith(EXTENSIONS[language]):
            continue
        if p.name.endswith(SKIP_SUFFIXES) or SKIP_PARTS.intersection(rel.parts[:-1]):
            continue
        if p.stat().st_size <= MAX_FILE_BYTES:
            out.append(p)
    if len(out) > MAX_FILES:
        out = sorted(random.Random(0).sample(out, MAX_FILES))
    return out


# ------------------------------------------------------------------------------------------- parsing


def parser(language: str) -> Any:
    from tree_sitter import Parser

    from localpilot.index.languages import grammar

    return Parser(grammar(language).language)


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


_DOC_PREFIX = {
    "javascript": ("/**",),
    "typescript": ("/**",),
    "java": ("/**",),
    "rust": ("///", "//!", "/**", "/*!"),
}
_GO_BODIES = {"block", "func_literal"}


def is_doc_comment(node: Any, language: str) -> bool:
    if "comment" not in node.type:
        return False
    text = node.text.decode("utf-8", "replace")
    if language == "go":
        p = node.parent
        while p is not None:
            if p.type in _GO_BODIES:
                return False
            p = p.parent
        return True
    if language == "rust" and text.startswith("////"):
        return False
    return text.startswith(_DOC_PREFIX[language]) and not text.startswith("/**/")


def strip_doc_comments(source: bytes, language: str) -> tuple[bytes, int]:
    """``source`` without its doc comments: whole lines go when a comment is alone on them."""
    tree = parser(language).parse(source)
    docs = [n for n in _walk(tree.root_node) if is_doc_comment(n, language)]
    out = bytearray(source)
    for n in sorted(docs, key=lambda n: -n.start_byte):
        line_start = out.rfind(b"\n", 0, n.start_byte) + 1
        nl = out.find(b"\n", n.end_byte)
        line_end = len(out) if nl < 0 else nl + 1
        before, after = out[line_start : n.start_byte], out[n.end_byte : line_end]
        if not before.strip() and not after.strip():
            del out[line_start:line_end]
        else:
            del out[n.start_byte : n.end_byte]
    return bytes(out), len(docs)


# ----------------------------------------------------------------------------------- functions + docs

_JS_FUNCS = {"arrow_function", "function_expression", "function", "generator_function"}
_WRAPPERS = {
    "export_statement",
    "lexical_declaration",
    "variable_declaration",
    "expression_statement",
    "ambient_declaration",
}
_SKIP_BACK = {
    "decorator",
    "attribute_item",
    "inner_attribute_item",
    "marker_annotation",
    "annotation",
}


@dataclass(frozen=True)
class Found:
    qualname: str
    name: str
    node: Any  # the function node (its lines are the target)
    anchor: Any  # the outermost node a doc comment sits right before


def _name(node: Any, field: str = "name") -> str | None:
    child = node.child_by_field_name(field)
    return child.text.decode("utf-8", "replace") if child is not None else None


def _owner(node: Any, language: str) -> str:
    """Name of the enclosing class / impl / trait ("" at module level)."""
    p = node.parent
    while p is not None:
        if p.type in {
            "class_declaration",
            "abstract_class_declaration",
            "class",
            "interface_declaration",
            "enum_declaration",
            "trait_item",
        }:
            return _name(p) or ""
        if p.type == "impl_item":
            t = p.child_by_field_name("type")
            return t.text.decode("utf-8", "replace") if t is not None else ""
        p = p.parent
    return ""


def _anchor(node: Any) -> Any:
    a = node
    while a.parent is not None and a.parent.type in _WRAPPERS | {"variable_declarator"}:
        a = a.parent
    return a


def _candidate(node: Any, language: str) -> tuple[str, Any] | None:
    """(name, anchor) when ``node`` is a function definition with a body, else None."""
    t = node.type
    if language in ("javascript", "typescript"):
        if t in ("function_declaration", "generator_function_declaration", "method_definition"):
            name = _name(node)
            return (name, _anchor(node)) if name else None
        if t == "variable_declarator":
            value = node.child_by_field_name("value")
            if value is not None and value.type in _JS_FUNCS:
                name = _name(node)
                return (name, _anchor(node)) if name else None
        if t == "assignment_expression":
            right = node.child_by_field_name("right")
            if right is not None and right.type in _JS_FUNCS:
                return (_name(node, "left") or "", _anchor(node))
        if t == "pair":
            value = node.child_by_field_name("value")
            if value is not None and value.type in _JS_FUNCS:
                return (_name(node, "key") or "", node)
        return None
    if language == "go" and t in ("function_declaration", "method_declaration"):
        return (_name(node) or "", node)
    if language == "rust" and t == "function_item" and node.child_by_field_name("body"):
        return (_name(node) or "", node)
    java = ("method_declaration", "constructor_declaration")
    if language == "java" and t in java and node.child_by_field_name("body") is not None:
        return (_name(node) or "", node)
    return None


def _go_receiver(node: Any) -> str:
    recv = node.child_by_field_name("receiver")
    if recv is None:
        return ""
    words = re.findall(r"[A-Za-z_]\w*", recv.text.decode("utf-8", "replace"))
    return words[-1] if words else ""


def find_functions(tree: Any, language: str) -> list[Found]:
    out = []
    for node in _walk(tree.root_node):
        got = _candidate(node, language)
        if got is None or not got[0]:
            continue
        name, anchor = got
        owner = _go_receiver(node) if language == "go" else _owner(node, language)
        short = name.rsplit(".", 1)[-1]
        qual = f"{owner}.{short}" if owner and "." not in name else name
        out.append(Found(qual, short, node, anchor))
    return out


def _is_overload(node: Any, name: str) -> bool:
    inner = node
    if inner.type == "export_statement" and inner.named_children:
        inner = inner.named_children[-1]
    return inner.type in {
        "function_signature",
        "method_signature",
        "abstract_method_signature",
    } and (_name(inner) == name)


def doc_before(found: Found, language: str) -> str | None:
    """Text of the doc comment right before the function (overloads and attributes skipped)."""
    node = found.anchor
    prev = node.prev_sibling
    while prev is not None and (prev.type in _SKIP_BACK or _is_overload(prev, found.name)):
        node, prev = prev, prev.prev_sibling
    parts: list[Any] = []
    edge = node.start_point[0]
    while prev is not None and is_doc_comment(prev, language) and edge - prev.end_point[0] <= 1:
        parts.insert(0, prev)
        edge = prev.start_point[0]
        prev = prev.prev_sibling
        if language not in ("go", "rust"):
            break  # one /** */ block
    if not parts:
        return None
    return "\n".join(p.text.decode("utf-8", "replace") for p in parts)


def clean_doc(raw: str) -> str:
    """Comment markers, tags, inline links, HTML and Markdown reduced to plain text."""
    lines = []
    for line in raw.splitlines():
        s = line.strip()
        s = re.sub(r"^(/\*\*|/\*!|/\*|///|//!|//)", "", s)
        s = re.sub(r"\*/$", "", s).strip()
        s = re.sub(r"^\*\s?", "", s)
        if s.startswith("@"):
            break  # JSDoc / Javadoc block tags end the description
        lines.append(s)
    text = "\n".join(lines)
    text = re.sub(r"\{@\w+\s+([^}|]+?)(?:\|[^}]*)?\}", r"\1", text)  # {@link Foo} {@code x}
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"\[`?([^\]`]+)`?\]\([^)]*\)", r"\1", text)  # [text](url)
    text = re.sub(r"\[`([^\]`]+)`\]", r"\1", text)  # Rust intra-doc [`Foo`]
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text


def query_of(found: Found, raw: str | None, language: str) -> str | None:
    if not raw:
        return None
    text = clean_doc(raw)
    if re.match(r"\s*(\{?@inheritDoc|Deprecated)", text, re.I):
        return None
    query = first_sentence(text)
    if language == "go":  # "Foo returns ..." -> "Returns ...": the name is not given away
        words = query.split()
        if len(words) > 1 and words[0].strip(",.") in {found.name, found.qualname}:
            query = " ".join(words[1:])
            query = query[:1].upper() + query[1:]
    if len(query.split()) < MIN_QUERY_WORDS:
        return None
    return query


# ---------------------------------------------------------------------------------------------- build


def build_language(
    dest: Path, language: str, cache: Path = CACHE, sources: list[Source] | None = None
) -> Corpus:
    """Write the stripped packages of ``language`` (``sources``, by default the benchmark's) into ``dest``
    (a new git repo) and describe them."""
    sources = PACKAGES[language] if sources is None else sources
    if language == "python":
        return build_corpus(dest, {s.name: s.version for s in sources}, cache)
    dest.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(root=dest, packages={s.label: s.version for s in sources})
    for src in sources:
        base = fetch(src, cache)
        for path in code_files(base, language):
            rel = f"{src.label}/{path.relative_to(base).as_posix()}"
            original = path.read_bytes()
            stripped, removed = strip_doc_comments(original, language)
            functions = pair_functions(src.label, rel, original, stripped, language)
            if functions is None:
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(stripped)
            corpus.docstrings_removed += removed
            corpus.files.append(rel)
            corpus.functions.extend(_drop_wrappers(functions))
    init_repo(dest)
    log.info(
        "%s corpus: %d files, %d functions (%d with queries), %d doc comments removed",
        language,
        len(corpus.files),
        len(corpus.functions),
        sum(f.query is not None for f in corpus.functions),
        corpus.docstrings_removed,
    )
    return corpus


def pair_functions(
    package: str, rel: str, original: bytes, stripped: bytes, language: str
) -> list[Function] | None:
    """The functions of the stripped file, each with the query from its original doc comment; None when
    stripping changed which functions the file has (the file is then left out)."""
    p = parser(language)
    before = find_functions(p.parse(original), language)
    after = find_functions(p.parse(stripped), language)
    if [f.qualname for f in before] != [f.qualname for f in after]:
        log.warning("%s: functions changed by stripping doc comments; file skipped", rel)
        return None
    lines = stripped.decode("utf-8", "replace").splitlines()
    out = []
    for orig, new in zip(before, after, strict=True):
        start, end = new.node.start_point[0] + 1, new.node.end_point[0] + 1
        query = query_of(orig, doc_before(orig, language), language)
        source = "\n".join(lines[start - 1 : end])
        out.append(Function(package, rel, orig.qualname, start, end, source, query))
    return out


def _drop_wrappers(functions: list[Function]) -> list[Function]:
    """Leave out functions that contain another documented function (module/IIFE wrappers)."""
    documented = [f for f in functions if f.query]

    def wraps(f: Function) -> bool:
        return any(
            g is not f and f.start_line <= g.start_line and g.end_line <= f.end_line
            for g in documented
        )

    return [f for f in functions if not wraps(f)]
