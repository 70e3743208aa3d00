"""Config precedence and the untrusted-repo rule."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from localpilot.config import load_settings
from localpilot.errors import ConfigError


def test_precedence_defaults_user_repo_env_flags(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().k == 10
    user = isolated_env / "config" / "localpilot"
    user.mkdir(parents=True)
    (user / "config.toml").write_text("k = 11\nmax_file_bytes = 5000\nbatch_size = 8\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".localpilot.toml").write_text("k = 12\nmax_file_bytes = 6000\n")
    monkeypatch.setenv("LOCALPILOT_MAX_FILE_BYTES", "7000")
    s = load_settings(repo, k=None, batch_size=4)
    assert (s.k, s.max_file_bytes, s.batch_size) == (12, 7000, 4)
    assert load_settings(repo, k=13).k == 13


def test_repo_config_cannot_set_models_or_dirs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".localpilot.toml").write_text(
        'embedder = "/tmp/evil-model"\ncache_dir = "/tmp/evil"\nexclude = ["vendor/*"]\n'
    )
    with caplog.at_level(logging.WARNING):
        s = load_settings(tmp_path)
    assert s.embedder == "code-minilm" and "evil" not in str(s.cache_dir)
    assert s.exclude == ("vendor/*",)
    assert "ignoring 'embedder'" in caplog.text


def test_index_lives_in_user_cache_keyed_by_repo(tmp_path: Path, isolated_env: Path) -> None:
    s = load_settings()
    a, b = s.index_dir(tmp_path / "a" / "proj"), s.index_dir(tmp_path / "b" / "proj")
    assert a != b and a.is_relative_to(isolated_env / "cache")


def test_bad_values_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALPILOT_K", "many")
    with pytest.raises(ConfigError, match="'k'"):
        load_settings()


def test_repo_config_cannot_disable_search(tmp_path: Path) -> None:
    (tmp_path / ".localpilot.toml").write_text("per_file = 0\n")
    with pytest.raises(ConfigError, match="positive"):
        load_settings(tmp_path)


def test_zero_is_a_valid_hook_budget_and_errors_name_key_file_and_values(tmp_path: Path) -> None:
    (tmp_path / ".localpilot.toml").write_text("hook_budget_s = 0\n")
    assert load_settings(tmp_path).hook_budget_s == 0
    (tmp_path / ".localpilot.toml").write_text('k = "many"\n')
    with pytest.raises(ConfigError, match=r"'k' \(from .*\.localpilot\.toml\).*positive integer"):
        load_settings(tmp_path)
    with pytest.raises(ConfigError, match=r"LOCALPILOT_DEVICE.*one of auto, cpu, cuda"):
        import os

        os.environ["LOCALPILOT_DEVICE"] = "tpu"
        try:
            load_settings()
        finally:
            del os.environ["LOCALPILOT_DEVICE"]
    assert load_settings(exclude="vendor/, *.min.js").exclude == ("vendor/", "*.min.js")
