"""Inline completion as an editor session meets it: typing replayed through the real LSP server over its pipes.

Repositories in three languages: python-dateutil (PyPI sdist), semver (npm tarball) and google/uuid (Debian's
golang-github-google-uuid-dev), each a new git repo indexed by ``localpilot index``. None of them is reserved for
evaluation, none was used to build the engine.

For each sampled spot (the start of a non-trivial line inside a function body) the line is removed, the
document opened, and after 2 s (the user reads) the editor asks for a completion with the cursor after the
indentation (a new spot), then after each of the next three keystrokes of the real line (didChange +
completion, as an editor sends them).
Reported, per language and overall:

* latency p50/p95 at a new spot and while typing (the ratio to the raw baseline below is the headline);
* quality at the new spot: exact match and edit similarity of the first completed line against the real line;
  the same engine in-process without other-file context beside it;
* the raw baseline, in the same run: llama-cpp-python's FIM with the completion model on a llama.vim-sized
  window (256 lines before, 64 after, no retrieval, one cold prompt per request), generation stopped at the end
  of the first line;
* the time to first token of a chat answer (``localpilot.ask``) alone and while completions run.

Usage: .venv/bin/python bench/completion.py [--spots 6] [--workdir DIR] [--out F]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import CACHE, emit, extract, fetch_sdist, init_repo, percentile, run_bench

LANGUAGES = {
    "python": (".py", r"^\s+(?!#|\"|')\S.{12,}$"),
    "javascript": (".js", r"^\s+(?!//|\*)\S.{12,}$"),
    "go": (".go", r"^\s+(?!//)\S.{12,}$"),
}
KEYSTROKES = 3
READ_S = 2.0  # seconds between opening a file and the first completion request


@dataclass(frozen=True)
class Spot:
    path: str
    line: int  # 0-based line whose content is typed
    text: str  # the real line

    @property
    def indent(self) -> str:
        return self.text[: len(self.text) - len(self.text.lstrip())]


# ------------------------------------------------------------------------------------------ repositories


def python_repo(dest: Path) -> Path:
    root = extract(fetch_sdist("python-dateutil", "2.9.0.post0"))
    _copy(
        root / "src" / "dateutil" if (root / "src").is_dir() else root / "dateutil",
        dest / "dateutil",
        ".py",
    )
    return dest


def js_repo(dest: Path) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    tgz = CACHE / "semver-7.7.2.tgz"
    if not tgz.is_file():
        subprocess.run(["npm", "pack", "semver@7.7.2"], cwd=CACHE, check=True, capture_output=True)
    src = CACHE / "src" / "semver-7.7.2"
    if not src.is_dir():
        with tarfile.open(tgz) as tf:
            tf.extractall(src, filter="data")
    _copy(src / "package", dest, ".js")
    return dest


def go_repo(dest: Path) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = sorted(CACHE.glob("golang-github-google-uuid-dev_*.deb"))
    if not debs:
        subprocess.run(
            ["apt-get", "download", "golang-github-google-uuid-dev"],
            cwd=CACHE,
            check=True,
            capture_output=True,
        )
        debs = sorted(CACHE.glob("golang-github-google-uuid-dev_*.deb"))
    src = CACHE / "src" / debs[-1].stem
    if not src.is_dir():
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(src)], check=True)
    _copy(next(src.rglob("github.com/google/uuid")), dest, ".go")
    return dest


def _copy(src: Path, dest: Path, suffix: str) -> None:
    for p in sorted(src.rglob(f"*{suffix}")):
        out = dest / p.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(p.read_text(encoding="utf-8"), encoding="utf-8")


def spots(root: Path, language: str, n: int) -> list[Spot]:
    suffix, pattern = LANGUAGES[language]
    rng = random.Random(11)
    candidates = []
    for p in sorted(root.rglob(f"*{suffix}")):
        rel = p.relative_to(root).as_posix()
        if "test" in rel:
            continue
        lines = p.read_text(encoding="utf-8").split("\n")
        candidates += [
            Spot(rel, i, line) for i, line in enumerate(lines) if re.match(pattern, line) and i > 5
        ]
    return rng.sample(candidates, min(n, len(candidates)))


def document(root: Path, spot: Spot, typed: str) -> str:
    lines = (root / spot.path).read_text(encoding="utf-8").split("\n")
    return "\n".join([*lines[: spot.line], spot.indent + typed, *lines[spot.line + 1 :]])


def first_line(text: str) -> str:
    return next((line for line in text.split("\n") if line.strip()), "").strip()


def quality(pairs: Sequence[tuple[str, str]]) -> dict[str, float]:
    from rapidfuzz import fuzz

    exact = [first_line(got) == want.strip() for got, want in pairs]
    sim = [fuzz.ratio(first_line(got), want.strip()) / 100 for got, want in pairs]
    return {
        "exact_match": round(sum(exact) / max(len(exact), 1), 3),
        "edit_similarity": round(sum(sim) / max(len(sim), 1), 3),
    }


# -------------------------------------------------------------------------------------- the LSP replay


def server_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALPILOT_")}
    env["XDG_CACHE_HOME"] = str(cache)
    return env


async def lsp_session(
    root: Path, cache: Path, language: str, chosen: Sequence[Spot]
) -> dict[str, Any]:
    from lsprotocol import types as t
    from pygls.lsp.client import LanguageClient

    logging.getLogger("pygls").setLevel(logging.WARNING)
    client = LanguageClient("bench", "1")
    await client.start_io(
        sys.executable, "-m", "localpilot", "lsp", cwd=str(root), env=server_env(cache)
    )
    await client.initialize_async(
        t.InitializeParams(capabilities=t.ClientCapabilities(), root_uri=root.resolve().as_uri())
    )
    client.initialized(t.InitializedParams())
    new_spot: list[float] = []
    typing: list[float] = []
    pairs: list[tuple[str, str]] = []
    hits = 0
    try:
        for n, spot in enumerate(chosen):
            uri = (root / spot.path).resolve().as_uri()
            version = 1
            client.text_document_did_open(
                t.DidOpenTextDocumentParams(
                    text_document=t.TextDocumentItem(
                        uri=uri,
                        language_id=language,
                        version=version,
                        text=document(root, spot, ""),
                    )
                )
            )
            await asyncio.sleep(READ_S)  # the user looks at the file before typing
            body = spot.text.lstrip()
            for k in range(KEYSTROKES + 1):
                typed = body[:k]
                if k:
                    version += 1
                    client.text_document_did_change(
                        t.DidChangeTextDocumentParams(
                            text_document=t.VersionedTextDocumentIdentifier(
                                uri=uri, version=version
                            ),
                            content_changes=[
                                t.TextDocumentContentChangeWholeDocument(
                                    text=document(root, spot, typed)
                                )
                            ],
                        )
                    )
                    await asyncio.sleep(0.12)  # a fast typist's gap between keys
                started = time.perf_counter()
                res = await client.text_document_completion_async(
                    t.CompletionParams(
                        text_document=t.TextDocumentIdentifier(uri=uri),
                        position=t.Position(
                            line=spot.line, character=len(spot.indent) + len(typed)
                        ),
                    )
                )
                ms = (time.perf_counter() - started) * 1000
                text = res.items[0].insert_text if res and res.items else ""
                (typing if k else new_spot).append(ms)
                if k == 0:
                    pairs.append((text, body))
                elif text and body.startswith(typed + first_line(text)[:3]):
                    hits += 1
            client.text_document_did_close(
                t.DidCloseTextDocumentParams(text_document=t.TextDocumentIdentifier(uri=uri))
            )
            print(
                f"  {language} spot {n + 1}/{len(chosen)}: new {new_spot[-1]:.0f} ms, typing "
                f"{', '.join(f'{x:.0f}' for x in typing[-KEYSTROKES:])} ms",
                file=sys.stderr,
            )
        ttft = await chat_ttft(client, root, chosen)
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return {
        "new_spot_ms": _dist(new_spot),
        "typing_ms": _dist(typing),
        "quality": quality(pairs),
        "typing_still_right": round(hits / max(len(typing), 1), 3),
        "chat": ttft,
        "_new": new_spot,
        "_typing": typing,
    }


async def chat_ttft(client: Any, root: Path, chosen: Sequence[Spot]) -> dict[str, float]:
    """Model TTFT of chat answers alone and while completions are asked in a loop, alternating, each question
    new (so neither side reads a cached question), medians of two each."""
    from lsprotocol import types as t

    async def ask(spot: Spot) -> float:
        answer = await client.workspace_execute_command_async(
            t.ExecuteCommandParams(
                command="localpilot.ask",
                arguments=[f"What does the code in {spot.path} around line {spot.line} do?"],
            )
        )
        return float(answer["timings"].get("model_ttft_ms") or answer["timings"]["ttft_ms"])

    async def busy(spot: Spot) -> float:
        stop = asyncio.Event()
        uri = (root / chosen[0].path).resolve().as_uri()

        async def completions() -> None:
            i = 0
            while not stop.is_set():
                await client.text_document_completion_async(
                    t.CompletionParams(
                        text_document=t.TextDocumentIdentifier(uri=uri),
                        position=t.Position(line=chosen[0].line + i % 5, character=0),
                    )
                )
                i += 1

        loop = asyncio.create_task(completions())
        await asyncio.sleep(0.5)
        try:
            return await ask(spot)
        finally:
            stop.set()
            await loop

    await ask(chosen[0])  # loads the chat model
    alone, loaded = [await ask(chosen[1])], [await busy(chosen[2])]
    alone.append(await ask(chosen[3]))
    loaded.append(await busy(chosen[4]))
    a, b = (
        sorted(alone)[0] / 2 + sorted(alone)[1] / 2,
        sorted(loaded)[0] / 2 + sorted(loaded)[1] / 2,
    )
    return {
        "ttft_alone_ms": round(a),
        "ttft_with_completions_ms": round(b),
        "ratio": round(b / max(a, 1e-9), 3),
    }


def _dist(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.5)),
        "p95": round(percentile(values, 0.95)),
        "n": len(values),
    }


# ------------------------------------------------------------------------------------ in-process runs


def raw_baseline(
    model_path: Path, threads: int, root: Path, chosen: Sequence[Spot]
) -> dict[str, Any]:
    """llama-cpp-python FIM on a llama.vim window (256 before, 64 after), no retrieval, cold prompt each time."""
    import llama_cpp

    llm = llama_cpp.Llama(
        str(model_path), n_ctx=4096, n_threads=threads, n_batch=512, verbose=False
    )
    pre, suf, mid = llm._model.token_prefix(), llm._model.token_suffix(), llm._model.token_middle()
    times, pairs = [], []
    for spot in chosen:
        lines = document(root, spot, "").split("\n")
        prefix = "\n".join([*lines[max(0, spot.line - 256) : spot.line], spot.indent])
        suffix = "\n".join(["", *lines[spot.line + 1 : spot.line + 65]])
        tokens = [
            pre,
            *llm.tokenize(prefix.encode(), add_bos=False),
            suf,
            *llm.tokenize(suffix.encode(), add_bos=False),
            mid,
        ]
        llm.reset()
        started = time.perf_counter()
        out = b""
        for n, tok in enumerate(llm.generate(tokens, temp=0.0, repeat_penalty=1.1, reset=True)):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
                break
            out += llm.detokenize([tok])
            if (b"\n" in out.lstrip(b"\n") and out.strip()) or n >= 63:
                break
        times.append((time.perf_counter() - started) * 1000)
        pairs.append((out.decode("utf-8", "replace"), spot.text.lstrip()))
    return {"ms": _dist(times), "quality": quality(pairs), "_ms": times}


def no_context_quality(root: Path, cache: Path, chosen: Sequence[Spot]) -> dict[str, float]:
    """The same engine in this process with other-file context turned off."""
    from dataclasses import replace

    from localpilot.complete import Completer
    from localpilot.config import load_settings
    from localpilot.service import Assistant

    a = Assistant(root, load_settings(root, cache_dir=cache / "localpilot"))
    engine = Completer(
        lambda: a.generator("fim"),
        lambda q, k: [],
        replace(a.parts.completer.config, extra_chunks=0, speculate=False),
    )
    pairs = []
    for spot in chosen:
        text = document(root, spot, "")
        lines = text.split("\n")
        prefix = "\n".join([*lines[: spot.line], spot.indent])
        suffix = "\n".join(lines[spot.line + 1 :])
        got = engine.complete(spot.path, _language(spot.path), prefix, "\n" + suffix).text
        pairs.append((got, spot.text.lstrip()))
    a.close()
    return quality(pairs)


def _language(path: str) -> str:
    from localpilot.index.languages import detect_language

    return detect_language(path)


# ----------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace, work: Path) -> int:
    from localpilot.config import load_settings
    from localpilot.experts.build import fim_model
    from localpilot.experts.registry import resolve_llm

    settings = load_settings()
    fim = fim_model(
        settings
    )  # the completion model (the big one when installed): the raw baseline's too
    model = resolve_llm(fim, settings.models_dir).path
    results: dict[str, Any] = {
        "model": fim,
        "threads": settings.threads,
        "spots": args.spots,
        "languages": {},
    }
    all_new, all_typing, all_raw = [], [], []
    for language, make in (("python", python_repo), ("javascript", js_repo), ("go", go_repo)):
        root = make(work / language)
        init_repo(root)
        cache = work / f"cache-{language}"
        subprocess.run(
            [sys.executable, "-m", "localpilot", "index", "-q"],
            cwd=root,
            env=server_env(cache),
            check=True,
        )
        chosen = spots(root, language, args.spots)
        session = asyncio.run(lsp_session(root, cache, language, chosen))
        raw = raw_baseline(model, settings.threads, root, chosen)
        plain = no_context_quality(root, cache, chosen)
        all_new += session.pop("_new")
        all_typing += session.pop("_typing")
        all_raw += raw.pop("_ms")
        results["languages"][language] = {
            **session,
            "raw_baseline": raw,
            "quality_without_context": plain,
            "lines": sum(
                p.read_text().count("\n")
                for p in root.rglob("*.*")
                if p.is_file() and ".git" not in p.parts
            ),
        }
    raw_p50 = percentile(all_raw, 0.5)
    results["overall"] = {
        "new_spot_ms": _dist(all_new),
        "typing_ms": _dist(all_typing),
        "raw_ms": _dist(all_raw),
        "new_spot_vs_raw": round(percentile(all_new, 0.5) / raw_p50, 3),
        "typing_vs_raw": round(percentile(all_typing, 0.5) / raw_p50, 3),
    }
    return emit(results, args.out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spots", type=int, default=6)
    return run_bench(parser, argv, "lp-completion-", run)


if __name__ == "__main__":
    raise SystemExit(main())
