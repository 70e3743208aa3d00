"""A named test case and the cases it should check, read off a definition's signature and body (no model).

Python definitions are read with ``ast`` (parameters, defaults, annotations, raised exceptions, branches,
generators); other languages with a bracket-matching look at the parameter list and a few keywords.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

NUMERIC = re.compile(
    r"\b(int|float|number|double|long|short|i8|i16|i32|i64|isize|u8|u16|u32|u64|usize|f32|f64|"
    r"decimal|Decimal|uint\d*|int\d+|float\d+)\b"
)
NUMERIC_NAME = re.compile(
    r"^(n|i|k|count|size|limit|index|idx|attempts?|retries|timeout|delay|seconds|depth|"
    r"width|height|offset|level|port|(max|min|num)_?\w*|\w*_(count|size|limit|ms|s|secs))$",
    re.I,
)
TEXT = re.compile(r"\b(str|string|String|&str|char|Text)\b")
TEXT_NAME = re.compile(
    r"^(s|text|name|title|query|line|word|prefix|suffix|message|msg|label|key|url|uri|"
    r"\w*_(name|text|str))$",
    re.I,
)
PATH_NAME = re.compile(r"^(path|file|filename|dir|directory|\w*_(path|file|dir))$", re.I)
SEQUENCE = re.compile(
    r"(\b(list|List|Sequence|Iterable|Iterator|tuple|Tuple|set|Set|Vec|array|Array|Collection|"
    r"slice)\b|\[\]|\[\w*\]$)"
)
MAPPING = re.compile(r"\b(dict|Dict|Mapping|map|Map|HashMap|Record|object)\b")
BOOL = re.compile(r"\b(bool|boolean|Boolean)\b")
OPTIONAL = re.compile(r"(\bOptional\b|\bNone\b|\| ?None|\bnull\b|\bundefined\b|\?$|^\*|\bOption<)")


@dataclass
class Param:
    name: str
    annotation: str = ""
    default: str | None = None
    variadic: bool = False


@dataclass
class Signature:
    """What the cases are made from."""

    name: str
    params: list[Param] = field(default_factory=list)
    returns: str = ""
    raises: list[str] = field(default_factory=list)
    branches: int = 0
    is_async: bool = False
    is_generator: bool = False
    methods: list[str] = field(default_factory=list)  # public members, for classes


def signature(source: str, name: str, language: str) -> Signature:
    """The signature of definition ``name`` (short name) whose source is ``source``."""
    if language == "python":
        parsed = _python(source, name)
        if parsed is not None:
            return parsed
    return _generic(source, name, language)


def _python(source: str, name: str) -> Signature | None:
    try:
        tree = ast.parse(textwrap.dedent(source.replace("\r\n", "\n")))
    except SyntaxError:
        return None
    node = next(
        (
            n
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and n.name == name
        ),
        None,
    )
    if node is None:
        return None
    if isinstance(node, ast.ClassDef):
        init = next(
            (
                n
                for n in node.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "__init__"
            ),
            None,
        )
        sig = _python_function(init, name) if init is not None else Signature(name)
        sig.methods = [
            n.name
            for n in node.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")
        ]
        if init is None:  # dataclass-style fields
            sig.params = [
                Param(
                    t.target.id,
                    ast.unparse(t.annotation),
                    ast.unparse(t.value) if t.value else None,
                )
                for t in node.body
                if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)
            ]
        return sig
    return _python_function(node, name)


def _python_function(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> Signature:
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(
        a.defaults
    )
    params = [
        Param(
            p.arg, ast.unparse(p.annotation) if p.annotation else "", ast.unparse(d) if d else None
        )
        for p, d in zip(positional, defaults, strict=True)
    ]
    params += [
        Param(
            p.arg, ast.unparse(p.annotation) if p.annotation else "", ast.unparse(d) if d else None
        )
        for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
    ]
    if a.vararg:
        params.append(Param(a.vararg.arg, variadic=True))
    if a.kwarg:
        params.append(Param(a.kwarg.arg, variadic=True))
    params = [p for p in params if p.name not in ("self", "cls")]
    raises: list[str] = []
    branches = 0
    generator = False
    for n in ast.walk(node):
        if isinstance(n, ast.Raise) and n.exc is not None:
            exc = n.exc.func if isinstance(n.exc, ast.Call) else n.exc
            label = ast.unparse(exc)
            if label not in raises and re.fullmatch(r"[\w.]+", label):
                raises.append(label)
        elif isinstance(n, (ast.If, ast.IfExp, ast.Match, ast.ExceptHandler, ast.For, ast.While)):
            branches += 1
        elif isinstance(n, (ast.Yield, ast.YieldFrom)):
            generator = True
    return Signature(
        name,
        params,
        ast.unparse(node.returns) if node.returns else "",
        raises,
        branches,
        isinstance(node, ast.AsyncFunctionDef),
        generator,
    )


def _generic(source: str, name: str, language: str) -> Signature:
    text = source.replace("\r\n", "\n")
    sig = Signature(name)
    at = re.search(rf"(?<![\w$]){re.escape(name)}\s*(<[^(]*>)?\s*\(", text)
    if at is not None:
        inner, end = _balanced(text, at.end() - 1)
        sig.params = [
            p for p in (_param(part, language) for part in _split_top(inner)) if p is not None
        ]
        tail = text[end : end + 200].split("{", 1)[0]
        sig.returns = re.sub(r"^\s*(->|:)?\s*", "", tail).strip()
    body = text[at.end() if at else 0 :]
    sig.raises = list(
        dict.fromkeys(
            re.findall(r"\bthrow\s+new\s+(\w+)", body)
            + re.findall(r"\braise\s+(\w+)", body)
            + (["panic"] if re.search(r"\bpanic!?\(", body) else [])
        )
    )
    if language == "go" and re.search(r"\berror\b", sig.returns):
        sig.raises.append("error")
    sig.branches = len(re.findall(r"\b(if|case|catch|rescue|elif|elsif|for|while)\b", body))
    sig.is_async = bool(re.search(rf"\basync\b[^\n(]*\b{re.escape(name)}\b", text))
    sig.is_generator = bool(re.search(r"\byield\b", body)) or f"function* {name}" in text
    return sig


def _balanced(text: str, open_at: int) -> tuple[str, int]:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] in "([{<" and not (text[i] == "<" and text[i - 1 : i + 1] in ("<=", " <")):
            depth += text[i] != "<"
        elif text[i] in ")]}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i], i + 1
    return text[open_at + 1 :], len(text)


def _split_top(inner: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _param(part: str, language: str) -> Param | None:
    part = re.sub(r"/\*.*?\*/|//.*$|#.*$", "", part).strip()
    default = None
    if "=" in part and "=>" not in part:
        part, default = (x.strip() for x in part.split("=", 1))
    variadic = part.startswith(("...", "*")) or "..." in part
    part = part.lstrip(".*&").strip()
    if not part or part in ("self", "&self", "&mut self", "this", "mut self"):
        return None
    if ":" in part:  # name: Type (TS, Rust, Python, Kotlin, Swift)
        name, annotation = (x.strip() for x in part.split(":", 1))
    elif language in ("go",):  # name Type
        name, _, annotation = part.partition(" ")
    elif " " in part:  # Type name (Java, C, C#, C++)
        annotation, _, name = part.rpartition(" ")
    else:
        name, annotation = part, ""
    name = name.strip("?&*$ ").removeprefix("mut ").strip()
    if not re.fullmatch(r"[A-Za-z_]\w*", name) or name in ("self", "this"):
        return None
    return Param(name, annotation.strip(), default, variadic)


def cases(sig: Signature, kind: str) -> list[str]:
    """What a test of this definition should check, most telling first (at most six)."""
    out: list[str] = []
    if kind in ("class", "struct") and sig.methods:
        out.append(f"construct it{_with(sig.params)} and check its state")
        out.extend(f"`{m}` on a fresh instance" for m in sig.methods[:3])
    elif sig.is_generator:
        out.append("consume it: the items in order, and the empty case")
    elif sig.returns and BOOL.search(sig.returns):
        out.append("both outcomes: a case that gives true and one that gives false")
    else:
        out.append(f"a typical call{_with(sig.params)} gives the expected result")
    for exc in sig.raises:
        out.append(
            "the error path returns a non-nil error"
            if exc == "error"
            else "the panic case"
            if exc == "panic"
            else f"raises `{exc}` for bad input"
        )
    if sig.is_async:
        out.append("await it (an async test)")
    for p in sig.params:
        parts = _param_cases(p)
        if parts:
            out.append("; ".join([parts[0], *(x.split("` ", 1)[1] for x in parts[1:])]))
    if sig.branches >= 2:
        out.append(f"each branch ({sig.branches} conditions/loops) at least once")
    return list(dict.fromkeys(out))[:6]


def _with(params: Sequence[Param]) -> str:
    names = [p.name for p in params if not p.variadic][:3]
    return f" ({', '.join(names)})" if names else ""


def _outer(annotation: str) -> str:
    """The outermost type of an annotation: ``Optional[list[str]]`` -> ``list[str]``'s ``list``."""
    text = re.sub(r"^(typing\.)?Optional\[(.*)\]$", r"\2", annotation.strip())
    text = re.split(r"\s*\|\s*(?:None|null|undefined)\b", text)[0]
    return re.split(r"[\[<({]", text, maxsplit=1)[0].strip() or text


def _param_cases(p: Param) -> list[str]:
    ann, name = p.annotation, p.name
    outer = _outer(ann) if ann else ""
    out: list[str] = []
    if p.variadic:
        return [f"no `{name}` at all, and several"]
    if BOOL.search(outer) or (p.default in ("True", "False", "true", "false")):
        out.append(f"`{name}` true and false")
    elif (
        SEQUENCE.search(outer)
        or ann.startswith("[]")
        or (not ann and name.endswith("s") and len(name) > 3 and not NUMERIC_NAME.match(name))
    ):
        out.append(f"`{name}` empty, one item and many")
    elif MAPPING.search(outer):
        out.append(f"`{name}` empty and with a missing key")
    elif NUMERIC.search(outer) or (not ann and NUMERIC_NAME.match(name)) or _is_number(p.default):
        unsigned = re.search(r"\b(u\d+|usize|uint\d*)\b", outer)
        out.append(f"`{name}` at 0{'' if unsigned else ', negative'} and large values")
    elif PATH_NAME.match(name):
        out.append(f"`{name}` missing or unreadable")
    elif TEXT.search(outer) or (not ann and TEXT_NAME.match(name)):
        out.append(f"`{name}` empty and non-ASCII")
    if OPTIONAL.search(ann) or p.default in ("None", "null", "nil", "undefined"):
        out.append(f"`{name}` None/absent")
    elif p.default is not None and p.default not in ("True", "False", "true", "false"):
        out.append(f"`{name}` left at its default ({_short(p.default)}) and given explicitly")
    return out


def _is_number(value: str | None) -> bool:
    return value is not None and re.fullmatch(r"-?\d[\d_]*(\.\d+)?", value) is not None


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def changed_cases(old: Signature, new: Signature, lines: Sequence[int]) -> list[str]:
    """What an existing test should now also check, from the difference between two versions."""
    out: list[str] = []
    before = {p.name: p for p in old.params}
    after = {p.name: p for p in new.params}
    for name, p in after.items():
        if name not in before:
            out.append(
                f"the new parameter `{name}`"
                + (f" (default {_short(p.default)})" if p.default else "")
            )
        elif before[name].default != p.default and p.default is not None:
            out.append(
                f"`{name}`'s new default {_short(p.default)} (was {_short(before[name].default or 'none')})"
            )
    out.extend(
        f"callers that still pass `{name}` (removed)" for name in before if name not in after
    )
    out.extend(f"the new `{e}` path" for e in new.raises if e not in old.raises)
    if new.returns != old.returns and new.returns:
        out.append(f"the new return type `{_short(new.returns, 40)}`")
    if new.branches > old.branches:
        extra = new.branches - old.branches
        out.append(f"the {extra} new branch{'es' if extra > 1 else ''}")
    if not out and lines:
        out.append(f"what changed on line{'s' if len(lines) > 1 else ''} {_ranges(lines)}")
    return out[:5]


def _ranges(lines: Sequence[int]) -> str:
    spans: list[list[int]] = []
    for n in sorted(lines):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in spans[:4]) + (
        " …" if len(spans) > 4 else ""
    )


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower().strip("_")


def test_name(qualified: str, kind: str, language: str) -> str:
    """The conventional name of a new test for ``qualified``."""
    parts = [p for p in qualified.split(".") if p]
    short = parts[-1].strip("_") or parts[-1]
    owner = parts[-2] if len(parts) > 1 else ""
    camel = "".join(w[:1].upper() + w[1:] for w in re.split(r"_+", short) if w)
    if language == "go":
        return f"Test{owner}_{camel}" if owner else f"Test{camel}"
    if language in ("java", "c_sharp", "kotlin", "php"):
        return f"test{camel}"
    if language in ("javascript", "typescript", "tsx", "ruby"):
        return f"{owner}.{short}" if owner and kind == "method" else short
    pieces = [snake(owner), snake(short)] if owner and kind == "method" else [snake(short)]
    return "test_" + "_".join(p for p in pieces if p)


def target_file(path: str, language: str, files: set[str]) -> str:
    """Where a new test for code in ``path`` conventionally goes in this repository."""
    pure = PurePosixPath(path)
    stem, parent, suffix = pure.stem, pure.parent.as_posix(), pure.suffix
    has = lambda prefix: any(f.startswith(prefix) for f in files)  # noqa: E731
    if language == "python":
        if has("tests/"):
            return f"tests/test_{stem}.py"
        if has("test/"):
            return f"test/test_{stem}.py"
        return str(PurePosixPath(parent) / f"test_{stem}.py")
    if language == "go":
        return str(PurePosixPath(parent) / f"{stem}_test.go")
    if language in ("javascript", "typescript", "tsx"):
        if any("/__tests__/" in f"/{f}" for f in files):
            return str(PurePosixPath(parent) / "__tests__" / f"{stem}.test{suffix}")
        return str(PurePosixPath(parent) / f"{stem}.test{suffix}")
    if language == "rust":
        return f"{path} (#[cfg(test)] mod tests)"
    if language == "java":
        return str(
            PurePosixPath(path.replace("src/main/", "src/test/", 1)).with_name(f"{stem}Test.java")
        )
    if language == "ruby":
        return f"spec/{stem}_spec.rb" if has("spec/") else f"test/test_{stem}.rb"
    if language == "c_sharp":
        return f"tests/{stem}Tests.cs"
    return f"tests/test_{stem}{suffix}"


def run_command(language: str, ids: Sequence[str]) -> str | None:
    """A command that runs exactly the tests ``ids`` ("path::Class::test"), when the language has one."""
    if not ids:
        return None
    if language == "python" and all(i.endswith(".py") or "::" in i for i in ids):
        shown = list(dict.fromkeys(ids))[:6]
        return "pytest " + " ".join(_shell(i) for i in shown) + (" …" if len(ids) > 6 else "")
    if language == "go":
        dirs = sorted({str(PurePosixPath(i.split("::")[0]).parent) for i in ids})
        names = sorted({i.split("::")[-1] for i in ids if "::" in i})
        pattern = f" -run '^({'|'.join(names)})$'" if names else ""
        return f"go test {' '.join('./' + d if d != '.' else '.' for d in dirs)}{pattern}"
    return None


def _shell(text: str) -> str:
    return (
        text if re.fullmatch(r"[\w@%+=:,./-]+", text) else "'" + text.replace("'", "'\"'\"'") + "'"
    )
