"""Test suggestions without a commit: changed symbols, their tests, cases from signatures, suggest-tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Repo, git

from localpilot.cli import main
from localpilot.config import ConfigError, load_settings
from localpilot.errors import LocalpilotError
from localpilot.experts.llm import ScriptedGenerator
from localpilot.gitrepo import take_git_env
from localpilot.service import Assistant
from localpilot.suggest import cases as casing
from localpilot.suggest.finder import is_test_path
from localpilot.suggest.git import Git, StagedSnapshot
from localpilot.suggest.symbols import outline, symbol_changes

OPS = '''def add(a, b):
    return a + b


def scale(values, factor=2):
    """Multiply every value."""
    return [v * factor for v in values]


class Meter:
    def __init__(self, unit: str = "m"):
        self.unit = unit

    def read(self, raw: float) -> str:
        return f"{raw:.1f} {self.unit}"
'''
TESTS = """from calc.ops import Meter, add


def test_add():
    assert add(1, 2) == 3


class TestMeter:
    def test_read(self):
        assert Meter().read(1) == "1.0 m"
"""
BASE = {"calc/__init__.py": "", "calc/ops.py": OPS, "tests/test_ops.py": TESTS}


def test_outline_names_kinds_and_extents() -> None:
    syms = {s.name: s for s in outline("calc/ops.py", OPS)}
    assert set(syms) == {"add", "scale", "Meter", "Meter.__init__", "Meter.read"}
    assert (syms["Meter"].kind, syms["Meter.read"].kind, syms["add"].kind) == (
        "class",
        "method",
        "function",
    )
    assert (syms["Meter"].start, syms["Meter"].end) == (10, 15)  # members included
    assert (syms["scale"].start, syms["scale"].end) == (5, 7)
    go = "package m\n\ntype T struct{}\n\nfunc (t *T) Run(n int) error {\n\treturn nil\n}\n"
    assert [s.name for s in outline("m.go", go)] == ["T", "T.Run"]


def test_changed_symbols_follow_the_diff() -> None:
    new = OPS.replace("return a + b", "return b + a").replace(
        "        self.unit = unit\n", "        self.unit = unit\n        self.count = 0\n"
    )
    new = new.replace('    """Multiply every value."""\n', "")  # a deletion inside scale
    new += "\n\ndef clamp(x, lo=0, hi=1):\n    return max(lo, min(x, hi))\n"
    got = {(c.symbol.name, c.status) for c in symbol_changes("calc/ops.py", OPS, new)}
    assert got == {
        ("add", "modified"),
        ("scale", "modified"),
        ("Meter.__init__", "modified"),
        ("clamp", "added"),
    }
    removed = symbol_changes("calc/ops.py", OPS, OPS.split("\n\nclass Meter")[0] + "\n")
    assert {(c.symbol.name, c.status) for c in removed} == {
        ("Meter", "removed")
    }  # members not listed again
    crlf_old, crlf_new = (
        OPS.replace("\n", "\r\n"),
        OPS.replace("return a + b", "return a - b").replace("\n", "\r\n"),
    )
    assert [c.symbol.name for c in symbol_changes("calc/ops.py", crlf_old, crlf_new)] == ["add"]
    assert symbol_changes("notes.txt", "a\n", "b\n") == []


def test_cases_come_from_the_signature() -> None:
    src = (
        "def jittered(attempt: int, spread: float = 0.1, names: list[str] | None = None, *, strict=False) -> "
        'float:\n    if attempt < 0:\n        raise ValueError("negative")\n    for n in names or []:\n'
        "        pass\n    return attempt * spread\n"
    )
    sig = casing.signature(src, "jittered", "python")
    got = casing.cases(sig, "function")
    assert got[0] == "a typical call (attempt, spread, names) gives the expected result"
    assert "`attempt` at 0, negative and large values" in got
    assert (
        "`names` empty, one item and many; None/absent" in got
        and "raises `ValueError` for bad input" in got
    )
    assert (
        "`spread` at 0, negative and large values; left at its default (0.1) and given explicitly"
        in got
    )
    ts = (
        "export async function fetchUser(id: number, opts?: Options): Promise<User> {\n"
        "  if (!id) throw new RangeError('id');\n  return get(id);\n}\n"
    )
    tsig = casing.signature(ts, "fetchUser", "typescript")
    assert (
        [p.name for p in tsig.params] == ["id", "opts"]
        and tsig.raises == ["RangeError"]
        and tsig.is_async
    )
    go = casing.signature(
        "func Parse(s string, strict bool) (*Doc, error) {\n\treturn nil, nil\n}\n", "Parse", "go"
    )
    assert [p.name for p in go.params] == ["s", "strict"] and "error" in go.raises
    assert "the error path returns a non-nil error" in casing.cases(go, "function")
    old = casing.signature("def f(a, b=1):\n    return a\n", "f", "python")
    new = casing.signature(
        "def f(a, b=2, c=None):\n    if a:\n        raise KeyError(a)\n    return a\n",
        "f",
        "python",
    )
    assert casing.changed_cases(old, new, [1]) == [
        "`b`'s new default 2 (was 1)",
        "the new parameter `c` (default None)",
        "the new `KeyError` path",
        "the 1 new branch",
    ]


def test_names_targets_and_commands_follow_conventions() -> None:
    assert casing.test_name("Meter.read", "method", "python") == "test_meter_read"
    assert casing.test_name("parseHTTPResponse", "function", "python") == "test_parse_http_response"
    assert casing.test_name("T.Run", "method", "go") == "TestT_Run"
    assert casing.target_file("calc/ops.py", "python", {"tests/test_x.py"}) == "tests/test_ops.py"
    assert casing.target_file("pkg/a.go", "go", set()) == "pkg/a_test.go"
    assert casing.target_file("src/ui/button.tsx", "tsx", set()) == "src/ui/button.test.tsx"
    assert (
        casing.run_command("python", ["tests/t.py::TestA::test_b", "tests/t.py::test_c"])
        == "pytest tests/t.py::TestA::test_b tests/t.py::test_c"
    )
    assert casing.run_command("go", ["pkg/a_test.go::TestA"]) == "go test ./pkg -run '^(TestA)$'"
    for path in (
        "tests/test_a.py",
        "a_test.go",
        "src/x.test.ts",
        "spec/models/user_spec.rb",
        "FooTest.java",
        "pkg/tests/helpers.py",
        "web/__tests__/app.js",
    ):
        assert is_test_path(path), path
    for path in (
        "calc/ops.py",
        "tests/fixtures/sample.py",
        "testdata/x.go",
        "docs/testing.md",
        "latest.py",
    ):
        assert not is_test_path(path), path


def test_take_git_env_moves_repository_variables_out(tmp_path: Path) -> None:
    env = {
        "GIT_INDEX_FILE": ".git/index",
        "GIT_DIR": ".git",
        "GIT_AUTHOR_NAME": "a",
        "PATH": "/bin",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "x.y",
        "GIT_CONFIG_VALUE_0": "1",
    }
    taken = take_git_env(env)
    assert set(env) == {"GIT_AUTHOR_NAME", "PATH"}
    assert Path(taken["GIT_INDEX_FILE"]).is_absolute() and taken["GIT_CONFIG_KEY_0"] == "x.y"


def test_hook_settings_coerce_and_a_repo_may_make_its_hook_strict(
    make_repo: Callable[..., Repo], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(
        {".localpilot.toml": 'hook_strict = true\nhook_budget_s = 9\nllm = "evil.gguf"\n'}
    )
    s = load_settings(repo.root)
    assert (s.hook_strict, s.hook_budget_s, s.hook_write, s.llm) == (
        True,
        9,
        False,
        "qwen2.5-coder-0.5b",
    )
    monkeypatch.setenv("LOCALPILOT_HOOK_WRITE", "yes")
    monkeypatch.setenv("LOCALPILOT_HOOK_STRICT", "0")
    s = load_settings(repo.root)
    assert (s.hook_write, s.hook_strict) == (True, False)
    monkeypatch.setenv("LOCALPILOT_HOOK_WRITE", "maybe")
    with pytest.raises(ConfigError, match="must be true or false"):
        load_settings(repo.root)


@pytest.fixture
def changed(make_repo: Callable[..., Repo]) -> Repo:
    """BASE committed; add() changed and clamp() added, both staged."""
    repo = make_repo(BASE)
    repo.write(
        "calc/ops.py",
        OPS.replace("return a + b", "return b + a")
        + "\n\ndef clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:\n"
        "    if lo > hi:\n        raise ValueError('empty range')\n    return max(lo, min(x, hi))\n",
    )
    git(repo.root, "add", "calc/ops.py")
    return repo


def test_report_maps_symbols_to_tests_and_suggests_the_rest(changed: Repo) -> None:
    report = Assistant(changed.root).suggest_tests(StagedSnapshot(Git(changed.root)))
    by = {s.symbol: s for s in report.suggestions}
    assert set(by) == {"add", "clamp"} and report.found_by == "git grep"
    assert by["add"].tests[0].ids() == ["tests/test_ops.py::test_add"]
    assert by["add"].run == "pytest tests/test_ops.py::test_add"
    clamp = by["clamp"]
    assert (clamp.status, clamp.test_name, clamp.target) == (
        "added",
        "test_clamp",
        "tests/test_ops.py",
    )
    assert "raises `ValueError` for bad input" in clamp.cases
    assert clamp.example_path == "tests/test_ops.py" and "def test_add" in (clamp.example or "")
    assert [f"{s.path}::{s.symbol}" for s in report.untested_public()] == ["calc/ops.py::clamp"]


def test_write_test_prompts_with_the_repos_own_test_style(changed: Repo) -> None:
    fake = ScriptedGenerator(
        script="```python\nfrom calc.ops import clamp\n\n\ndef test_clamp():\n"
        "    assert clamp(2) == 1\n```"
    )
    assistant = Assistant(changed.root, generators={"small": fake})
    report = assistant.suggest_tests(StagedSnapshot(Git(changed.root)))
    clamp = report.untested_public()[0]
    reply = "".join(assistant.write_test(clamp))
    prompt = fake.calls[0][-1]["content"]
    assert (
        "Example test file from this repository (tests/test_ops.py)" in prompt
        and "def test_add():" in prompt
    )
    assert "def clamp(x: float" in prompt and "Write the test `test_clamp` for `clamp`" in prompt
    assert (
        "`from calc.ops import clamp`" in prompt and "- raises `ValueError` for bad input" in prompt
    )
    from localpilot.suggest.skeleton import extract_code, parses

    assert parses(extract_code(reply), "python") and extract_code(reply).startswith(
        "from calc.ops import clamp"
    )


def test_suggest_tests_cli_staged_diff_range_path_and_json(
    changed: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(changed.root)
    assert main(["suggest-tests", "--repo", root]) == 0
    out = capsys.readouterr().out
    assert (
        "calc/ops.py" in out
        and "clamp  (function, added" in out
        and "suggest: test_clamp in tests/test_ops.py" in out
        and "add  (function, modified, line 2)  [tested] tests/test_ops.py::test_add" in out
    )
    assert main(["suggest-tests", "--staged", "--strict", "--repo", root]) == 1
    changed.commit("second")
    assert (
        main(["suggest-tests", "--repo", root]) == 0
    )  # nothing staged: the work tree against HEAD (clean)
    assert "nothing staged" in capsys.readouterr().err
    assert main(["suggest-tests", "--diff", "HEAD~1..HEAD", "--json", "--repo", root]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == "HEAD~1..HEAD" and data["untested"] == ["calc/ops.py::clamp"]
    assert {s["symbol"]: s["tested"] for s in data["symbols"]} == {"add": True, "clamp": False}
    changed.write("calc/ops.py", OPS)  # the work tree goes back to the first version
    assert main(["suggest-tests", "--diff", "HEAD", "--json", "--repo", root]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {(s["symbol"], s["status"]) for s in data["symbols"]} == {
        ("add", "modified"),
        ("clamp", "removed"),
    }
    assert (
        main(["suggest-tests", str(changed.root / "calc" / "ops.py"), "--json", "--repo", root])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert {s["symbol"] for s in data["symbols"]} == {
        "add",
        "scale",
        "Meter",
    }  # members fold into the class
    assert main(["suggest-tests", "nope.py", "--repo", root]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_tools_get_a_dict_for_a_path_or_a_proposed_diff(changed: Repo) -> None:
    """What the MCP tool calls: a unified diff (applied to the work tree or not) or a path; nothing is written."""
    assistant = Assistant(changed.root)
    diff = git(changed.root, "diff", "--cached")
    git(changed.root, "reset", "-q")
    target = changed.root / "calc" / "ops.py"
    applied = target.read_bytes()
    for when in ("applied", "proposed"):
        if when == "proposed":
            git(changed.root, "checkout", "-q", "--", "calc/ops.py")
        before = target.read_bytes()
        data = assistant.suggest_tests(diff=diff)
        assert data["source"] == "proposed" and data["untested"] == ["calc/ops.py::clamp"], when
        assert {s["symbol"]: s["tested"] for s in data["symbols"]} == {"add": True, "clamp": False}
        assert target.read_bytes() == before
    assert before != applied
    other = assistant.suggest_tests(diff=diff.replace("return a + b", "return a * b"))
    assert other["symbols"] == [] and any("does not apply" in n for n in other["notes"])
    new_file = (
        "--- /dev/null\n+++ b/calc/extra.py\n@@ -0,0 +1,2 @@\n+def extra(n):\n+    return n\n"
    )
    assert assistant.suggest_tests(diff=new_file)["untested"] == ["calc/extra.py::extra"]
    data = assistant.suggest_tests(path="calc/ops.py")
    assert {s["symbol"]: s["status"] for s in data["symbols"]} == {
        "add": "present",
        "scale": "present",
        "Meter": "present",
    }
    with pytest.raises(LocalpilotError, match="not a file or directory"):
        assistant.suggest_tests(path="../elsewhere.py")
