"""Shared corpus for the benchmarks: third-party Python packages from pinned sdists, docstrings stripped.

``build_corpus()`` downloads (once, cached under ``~/.cache/localpilot-bench``) and extracts each sdist,
takes the ``.py`` files of its importable packages (not tests/docs/examples), removes every docstring,
writes the stripped files into a fresh git repo and returns, for every function and method, where it lies
in the stripped copy plus the first sentence of its original docstring (the query, when long enough).
"""

from __future__ import annotations

import ast
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.corpus")

#: Pinned versions (latest sdists on PyPI when the benchmark was written).
DEFAULT_PACKAGES: dict[str, str] = {"requests": "2.34.2", "attrs": "26.1.0", "flask": "3.1.3"}
CACHE = Path(os.environ.get("LOCALPILOT_BENCH_CACHE", Path.home() / ".cache" / "localpilot-bench"))
SKIP_DIRS = {"tests", "test", "testing", "docs", "doc", "examples", "example"}
MIN_QUERY_WORDS = 4


@dataclass(frozen=True)
class Function:
    """A function or method in the stripped copy (lines 1-based, inclusive, decorators included)."""

    package: str
    path: str  # repo-relative, POSIX
    qualname: str  # e.g. "Session.request"
    start_line: int
    end_line: int
    source: str  # stripped source of lines start..end
    query: str | None  # first docstring sentence of the original, None if none or too short

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.path, self.qualname, self.start_line)


@dataclass
class Corpus:
    root: Path
    packages: dict[str, str]
    files: list[str] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    docstrings_removed: int = 0

    def targets(self) -> list[Function]:
        """Functions with a usable query, minus queries that are shared by several functions (ambiguous)."""
        counts: dict[str, int] = {}
        for f in self.functions:
            if f.query:
                counts[f.query.lower()] = counts.get(f.query.lower(), 0) + 1
        return [f for f in self.functions if f.query and counts[f.query.lower()] == 1]


# --------------------------------------------------------------------------------------------- sdists


def reserved() -> set[str]:
    """Names in ../shared/reserved-packages.txt: kept for independent evaluation, never benchmarked here."""
    path = Path(__file__).resolve().parents[2] / "shared" / "reserved-packages.txt"
    if not path.is_file():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line.lower() for line in lines if line}


def fetch_sdist(name: str, version: str, cache: Path = CACHE) -> Path:
    """The sdist archive of ``name==version``, downloaded once with pip; a reserved package is refused."""
    if name.lower() in reserved():
        raise SystemExit(
            f"{name} is reserved for independent evaluation (../shared/reserved-packages.txt)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    found = _find_archive(cache, name, version)
    if found:
        return found
    log.info("downloading sdist %s==%s", name, version)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-q",
            "-d",
            str(cache),
            f"{name}=={version}",
        ],
        check=True,
    )
    found = _find_archive(cache, name, version)
    if not found:
        raise RuntimeError(f"pip download left no sdist for {name}=={version} in {cache}")
    return found


def _find_archive(cache: Path, name: str, version: str) -> Path | None:
    norm = re.sub(r"[-_.]+", "_", name).lower()
    for p in sorted(cache.glob("*.tar.gz")):
        stem = p.name[: -len(".tar.gz")]
        pname, _, pver = stem.rpartition("-")
        if re.sub(r"[-_.]+", "_", pname).lower() == norm and pver == version:
            return p
    return None


def extract(archive: Path, cache: Path = CACHE) -> Path:
    """Extract once into ``cache/src``; returns the sdist's top directory."""
    dest = cache / "src"
    top = dest / archive.name[: -len(".tar.gz")]
    if not top.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    if not top.is_dir():
        raise RuntimeError(f"{archive} did not extract to {top}")
    return top


def package_files(sdist: Path) -> tuple[Path, list[Path]]:
    """(base dir holding the import packages, their .py files) for one extracted sdist."""
    base = sdist / "src" if (sdist / "src").is_dir() else sdist
    pkgs = [
        d
        for d in sorted(base.iterdir())
        if d.is_dir() and (d / "__init__.py").is_file() and d.name not in SKIP_DIRS
    ]
    files = [
        p
        for d in pkgs
        for p in sorted(d.rglob("*.py"))
        if not SKIP_DIRS.intersection(p.relative_to(base).parts[:-1])
    ]
    return base, files


# ------------------------------------------------------------------------------------------ docstrings


def _is_string_stmt(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def strip_docstrings(source: str) -> tuple[str, int]:
    """``source`` with every docstring removed; (new source, number removed).

    "Docstring" means any statement that is a bare string literal: module/class/function docstrings and
    also Sphinx-style attribute docstrings (a string right after an assignment). A string alone on its
    lines loses those lines; a body left empty gets ``pass`` at the string's indentation. A string sharing
    a line with other code (``def f(): "doc"``) is replaced by ``pass``.
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    docs: list[tuple[ast.Expr, bool]] = []
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.stmt):
                continue
            strings = [s for s in body if _is_string_stmt(s)]
            emptied = len(strings) == len(body) and not isinstance(node, ast.Module)
            docs.extend((s, emptied and i == 0) for i, s in enumerate(strings))  # type: ignore[misc]
    for d, needs_pass in sorted(docs, key=lambda x: -x[0].lineno):
        first = lines[d.lineno - 1].encode()
        last = lines[d.end_lineno - 1].encode()  # type: ignore[operator]
        before = first[: d.col_offset]
        after = last[d.end_col_offset :]  # type: ignore[misc]
        alone = not before.strip() and (not after.strip() or after.strip().startswith(b"#"))
        if alone:
            lines[d.lineno - 1 : d.end_lineno] = [before.decode() + "pass\n"] if needs_pass else []
        else:
            lines[d.lineno - 1 : d.end_lineno] = [(before + b"pass" + after).decode()]
    out = "".join(lines)
    ast.parse(out)  # must still be valid Python
    return out, len(docs)


def first_sentence(doc: str) -> str:
    """First sentence of a docstring's first paragraph, reST roles and backticks reduced to plain text."""
    import inspect

    para = re.split(r"\n\s*\n", inspect.cleandoc(doc).strip(), maxsplit=1)[0]
    para = re.sub(r":[\w:.-]+:`~?([^`]*)`", r"\1", para)  # :meth:`~Foo.bar` -> Foo.bar
    para = " ".join(para.replace("`", "").split())
    m = re.match(r"(.+?[.!?])(?=\s|$)", para)
    return (m.group(1) if m else para).strip()


def functions_of(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Module-level functions and methods (of classes at any class-nesting depth), with qualified names.

    Functions nested inside functions are left out: they are part of their enclosing function.
    """
    out: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((prefix + node.name, node))
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(
                node, ast.If | ast.Try
            ):  # `if TYPE_CHECKING:` / `try: ... except ImportError:`
                for part in (
                    node.body,
                    node.orelse,
                    getattr(node, "finalbody", []),
                    *[h.body for h in getattr(node, "handlers", [])],
                ):
                    visit(part, prefix)

    visit(tree.body, "")
    return out


def span_of(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int]:
    start = min([node.lineno, *[d.lineno for d in node.decorator_list]])
    return start, node.end_lineno or node.lineno


# ----------------------------------------------------------------------------------------------- build


def git(root: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "-c",
            "commit.gpgsign=false",
            "-C",
            str(root),
            *args,
        ],
        check=True,
        capture_output=True,
    )


def init_repo(root: Path) -> None:
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "corpus")


def build_corpus(dest: Path, packages: dict[str, str] | None = None, cache: Path = CACHE) -> Corpus:
    """Write the stripped packages into ``dest`` (a new git repo) and describe every function in it.

    Repo paths are the import paths (``requests/models.py``, ``attr/_make.py``, ``flask/app.py``).
    """
    packages = dict(packages or DEFAULT_PACKAGES)
    dest.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(root=dest, packages=packages)
    seen: dict[str, str] = {}
    for name, version in packages.items():
        base, files = package_files(extract(fetch_sdist(name, version, cache), cache))
        for src in files:
            rel = src.relative_to(base).as_posix()
            if rel in seen:
                raise RuntimeError(f"{rel} is in both {seen[rel]} and {name}")
            seen[rel] = name
            original = src.read_text(encoding="utf-8")
            stripped, removed = strip_docstrings(original)
            corpus.docstrings_removed += removed
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(stripped, encoding="utf-8")
            corpus.files.append(rel)
            corpus.functions.extend(_pair_functions(name, rel, original, stripped))
    init_repo(dest)
    log.info(
        "corpus: %d files, %d functions (%d with queries), %d docstrings removed, in %s",
        len(corpus.files),
        len(corpus.functions),
        sum(f.query is not None for f in corpus.functions),
        corpus.docstrings_removed,
        dest,
    )
    return corpus


def _pair_functions(package: str, rel: str, original: str, stripped: str) -> list[Function]:
    """Functions of the stripped file, each with the query taken from its original docstring."""
    before = functions_of(ast.parse(original))
    after = functions_of(ast.parse(stripped))
    if [q for q, _ in before] != [q for q, _ in after]:
        raise RuntimeError(f"{rel}: function structure changed by stripping docstrings")
    lines = stripped.splitlines()
    out = []
    for (qual, orig), (_, node) in zip(before, after, strict=True):
        doc = ast.get_docstring(orig, clean=False)
        query = first_sentence(doc) if doc else None
        if query and len(query.split()) < MIN_QUERY_WORDS:
            query = None
        start, end = span_of(node)
        out.append(
            Function(package, rel, qual, start, end, "\n".join(lines[start - 1 : end]), query)
        )
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def emit(results: dict[str, Any], out: Path | None) -> int:
    """Print ``results`` as JSON, also write them to ``out`` when given; the exit status of a bench run."""
    import json

    text = json.dumps(results, indent=2)
    print(text)
    if out:
        out.write_text(text)
    return 0


def write_report(report: dict[str, Any], out: Path | None) -> None:
    """Write ``report`` as JSON to ``out`` (when given), creating its directory."""
    import json

    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        log.info("wrote %s", out)


def run_bench(parser: Any, argv: Any, prefix: str, run: Callable[[Any, Path], int]) -> int:
    """Shared ``main`` tail: the common options (--workdir, --out, -v), logging on stderr, then
    ``run(args, workdir)`` in --workdir or a removed temp dir."""
    parser.add_argument(
        "--workdir", type=Path, help="keep the repo and index here (default: a temp dir, removed)"
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for noisy in ("chromadb", "httpx", "sentence_transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    work = args.workdir or Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return run(args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
