#!/usr/bin/env python
"""Training pairs for JavaScript, TypeScript, Go, Rust and Java, in the shape the Python data has.

Each documented function of the packages below becomes ``{"file", "pkg", "qualname", "query", "passage"}``:
query = the first sentence of its doc comment, passage = ``"relpath qualname\\ncode"`` with every doc comment
of the file removed (``bench/_polyglot.py`` does the fetching, stripping and pairing; the benchmark uses the
same code on *other* packages). None of these packages is a benchmark package (``bench/_polyglot.PACKAGES``)
or reserved for independent evaluation (``../shared/reserved-packages.txt``): both are checked by name
before anything is fetched.

Usage: .venv/bin/python models/polyglot_data.py --out models/reranker/cache/polyglot.json.gz
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _polyglot import (
    PACKAGES,
    Source,
    code_files,
    fetch,
    pair_functions,
    refuse_reserved,
    strip_doc_comments,
)

log = logging.getLogger("polyglot_data")
MAX_CODE_CHARS = 1500
GO = "usr/share/gocode/src"
RUST = "usr/share/cargo/registry"

TRAIN_SOURCES: dict[str, list[Source]] = {
    "javascript": [
        Source("npm", "webpack", "5.96.1", "lib", "webpack"),
        Source("npm", "svelte", "5.2.0", "src", "svelte"),
        Source("npm", "crypto-js", "4.2.0", "", "crypto-js"),
        Source("npm", "mathjs", "13.2.0", "lib/esm", "mathjs"),
        Source("npm", "eslint-plugin-react", "7.37.2", "lib", "eslint-plugin-react"),
        Source("npm", "graphql", "16.9.0", "", "graphql"),
        Source("npm", "kysely", "0.27.4", "dist/esm", "kysely"),
        Source("npm", "undici", "6.21.0", "lib", "undici"),
        Source("npm", "yjs", "13.6.20", "src", "yjs"),
        Source("npm", "lib0", "0.2.98", "", "lib0"),
        Source("npm", "socket.io", "4.8.1", "dist", "socket.io"),
        Source("npm", "@codemirror/state", "6.4.1", "dist", "codemirror-state"),
        Source("npm", "handlebars", "4.7.8", "lib", "handlebars"),
    ],
    "typescript": [
        Source("npm", "effect", "3.10.0", "src", "effect"),
        Source("npm", "mongodb", "6.10.0", "src", "mongodb"),
        Source("npm", "bson", "6.10.0", "src", "bson"),
        Source("npm", "@azure/msal-common", "14.16.0", "src", "msal-common"),
        Source("npm", "@xterm/xterm", "5.5.0", "src", "xterm"),
        Source("npm", "@microsoft/signalr", "8.0.7", "src", "signalr"),
        Source("npm", "immer", "10.1.1", "src", "immer"),
        Source("npm", "@trpc/client", "10.45.2", "src", "trpc-client"),
        Source("npm", "@noble/ciphers", "1.0.0", "src", "noble-ciphers"),
        Source("npm", "@tanstack/form-core", "0.35.0", "src", "form-core"),
    ],
    "go": [
        Source("deb", "golang-golang-x-text-dev", "0.7.0-1", GO, "x-text"),
        Source("deb", "golang-golang-x-net-dev", "1:0.7.0+dfsg-1", GO, "x-net"),
        Source("deb", "golang-github-prometheus-client-golang-dev", "1.14.0-3", GO, "prometheus"),
        Source("deb", "golang-github-miekg-dns-dev", "1.1.50-2", GO, "dns"),
        Source("deb", "golang-github-klauspost-compress-dev", "1.15.12+ds1-3", GO, "compress"),
        Source("deb", "golang-google-protobuf-dev", "1.28.1-3", GO, "protobuf"),
        Source("deb", "golang-github-yuin-goldmark-dev", "1.5.4-1", GO, "goldmark"),
        Source("deb", "golang-github-lib-pq-dev", "1.10.7-2", GO, "pq"),
    ],
    "rust": [
        Source("deb", "librust-tokio-dev", "1.24.2-1", RUST, "tokio"),
        Source("deb", "librust-futures-util-dev", "0.3.21-1", RUST, "futures-util"),
        Source("deb", "librust-syn-dev", "1.0.107-1", RUST, "syn"),
        Source("deb", "librust-nom-dev", "7.1.1-1", RUST, "nom"),
        Source("deb", "librust-hyper-dev", "0.14.19-1", RUST, "hyper"),
        Source("deb", "librust-time-dev", "0.3.9-1+deb12u1", RUST, "time"),
        Source("deb", "librust-rayon-dev", "1.6.1-1", RUST, "rayon"),
        Source("deb", "librust-bstr-dev", "0.2.17-1+b1", RUST, "bstr"),
        Source("deb", "librust-http-dev", "0.2.7-1", RUST, "http"),
    ],
    "java": [
        Source("debsrc", "libcommons-io-java", "2.11.0", "src/main/java", "commons-io"),
        Source("debsrc", "libcommons-codec-java", "1.15", "src/main/java", "commons-codec"),
        Source("debsrc", "libcommons-compress-java", "1.22", "src/main/java", "commons-compress"),
    ],
}


def check_disjoint() -> None:
    """No training package is a benchmark package or reserved (by name)."""
    bench = {s.name.lower() for srcs in PACKAGES.values() for s in srcs}
    bench |= {s.label.lower() for srcs in PACKAGES.values() for s in srcs}
    for srcs in TRAIN_SOURCES.values():
        for s in srcs:
            refuse_reserved(s)
            if {s.name.lower(), s.label.lower()} & bench:
                raise SystemExit(f"{s.name} is a benchmark package: never train on it")


def functions_of(language: str, src: Source) -> list[dict]:
    base = fetch(src)
    out = []
    for path in code_files(base, language):
        rel = f"{src.label}/{path.relative_to(base).as_posix()}"
        original = path.read_bytes()
        stripped, _ = strip_doc_comments(original, language)
        for f in pair_functions(src.label, rel, original, stripped, language) or []:
            if f.query:
                out.append(
                    {
                        "file": f"{language}/{rel}",
                        "pkg": f"{language}:{src.label}",
                        "qualname": f.qualname,
                        "query": f.query,
                        "passage": f"{rel} {f.qualname}\n{f.source[:MAX_CODE_CHARS]}",
                        "code_hash": hashlib.sha1(f.source.encode()).hexdigest()[:16],
                    }
                )
    return out


def build(languages: list[str]) -> list[dict]:
    check_disjoint()
    out: list[dict] = []
    for language in languages:
        for src in TRAIN_SOURCES[language]:
            try:
                got = functions_of(language, src)
            except Exception as exc:  # a package that cannot be fetched: report, go on
                log.warning("%s %s: %s", language, src.name, exc)
                continue
            log.info("%s %s: %d documented functions", language, src.label, len(got))
            out.extend(got)
    counts = Counter(f["pkg"].split(":")[0] for f in out)
    log.info("polyglot: %d functions %s", len(out), dict(counts))
    return out


def add_polyglot(data: dict, path: str, args: argparse.Namespace) -> None:
    """Mix in other languages' pairs (``models/polyglot_data.py``): whole files of each language held out
    as its dev set (``data["dev_sets"]``), the rest joins the train pool, with Python pairs sampled to make
    ``--python-share`` of the pairs."""
    funcs, seen = [], set()
    for f in json.loads(gzip.decompress(Path(path).read_bytes())):
        if f["code_hash"] not in seen:  # vendored copies across packages
            seen.add(f["code_hash"])
            funcs.append(f)
    counts = Counter(f["query"].lower() for f in funcs)
    funcs = [f for f in funcs if counts[f["query"].lower()] == 1]  # ambiguous queries out
    rng = random.Random(args.seed)
    by_lang: dict[str, dict[str, list[dict]]] = {}
    for f in funcs:
        by_lang.setdefault(f["file"].split("/", 1)[0], {}).setdefault(f["file"], []).append(f)
    data["dev_sets"] = {"python": {"pool": data["dev_pool"], "queries": data["dev_queries"]}}
    extra: list[dict] = []
    for lang, files in sorted(by_lang.items()):
        names = sorted(files)
        rng.shuffle(names)
        pool: list[dict] = []
        while names and len(pool) < args.dev_pool_lang:
            pool.extend(files[names.pop()])
        queries = sorted(rng.sample(range(len(pool)), min(args.dev_queries_lang, len(pool))))
        data["dev_sets"][lang] = {"pool": pool, "queries": queries}
        extra.extend(f for n in names for f in files[n])
    python = [f for f in data["train_pool"] if f["query"]]
    rng.shuffle(python)
    keep = int(len(extra) * args.python_share / max(1e-9, 1 - args.python_share))
    data["train_pool"] = python[:keep] + extra
    data["stats"]["polyglot"] = {
        "python_pairs": min(keep, len(python)),
        "other_pairs": len(extra),
        "dev": {k: len(v["queries"]) for k, v in data["dev_sets"].items()},
    }
    log.info("polyglot: %s", data["stats"]["polyglot"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--languages", nargs="+", default=list(TRAIN_SOURCES))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data = build(args.languages)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(gzip.compress(json.dumps(data).encode(), 6, mtime=0))


if __name__ == "__main__":
    main()
