"""Indexing end to end: real git repos, real MiniLM, real Chroma."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Repo

from localpilot.errors import IndexBusy, IndexMissing, NotAGitRepo
from localpilot.experts.embedder import HashEmbedder
from localpilot.index.state import ChunkRow
from localpilot.service import Assistant

UPLOADS = '''\
import time


def upload_with_retry(client, blob, attempts=5):
    """Upload a blob, retrying failed uploads with exponential backoff."""
    for attempt in range(attempts):
        try:
            return client.put(blob)
        except IOError:
            time.sleep(2 ** attempt)
    raise RuntimeError("upload failed")


def parse_size(text):
    units = {"k": 1024, "m": 1024 ** 2}
    return int(text[:-1]) * units[text[-1].lower()]


def format_duration(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"
'''
CONFIG = '''\
class Settings:
    """Application settings loaded from the environment."""

    def __init__(self, env):
        self.database_url = env.get("DATABASE_URL", "sqlite://")
        self.debug = env.get("DEBUG") == "1"
'''
SERVER_GO = """\
package server

// Listen starts the HTTP server on the given port.
func Listen(port int) error {
    return http.ListenAndServe(fmt.Sprintf(":%d", port), nil)
}
"""


@pytest.fixture
def basic(make_repo: Callable[..., Repo]) -> Repo:
    return make_repo(
        {
            "app/uploads.py": UPLOADS,
            "app/config.py": CONFIG,
            "server/server.go": SERVER_GO,
            "README.md": "# Demo\n\nA demo project for uploads.\n",
        }
    )


def stored_rows(a: Assistant) -> list[ChunkRow]:
    """The recorded chunks whose vectors the store holds; the store itself keeps no text or metadata."""
    got = a.store._col.get(include=["documents", "metadatas"])  # type: ignore[attr-defined]
    assert not any(got["documents"]) and not any(got["metadatas"]), "text lives in SQLite only"
    ids = sorted(a.store.all_ids())
    rows = a.state.chunk_rows(ids)
    assert set(rows) == set(ids), "every stored vector is a recorded chunk"
    return list(rows.values())


def stored_documents(a: Assistant) -> list[str]:
    return [r.text for r in stored_rows(a)]


def test_index_then_search_finds_the_function(
    basic: Repo, assistant_for: Callable[..., Assistant]
) -> None:
    a = assistant_for(basic)
    stats = a.index()
    assert stats.files_indexed == 4 and stats.chunks_embedded == stats.chunks_written > 4
    hits = a.search("where do we retry failed uploads", k=3)
    assert (hits[0].path, hits[0].symbol) == ("app/uploads.py", "upload_with_retry")
    assert (hits[0].start_line, hits[0].end_line) == (4, 11)
    assert "def upload_with_retry" in hits[0].snippet
    top = a.search("start the http server on a port", k=1)[0]
    assert (top.path, top.symbol, top.language) == ("server/server.go", "Listen", "go")
    assert top.start_line == 3, "the doc comment above the function belongs to its chunk"


def test_search_survives_reopening(basic: Repo, assistant_for: Callable[..., Assistant]) -> None:
    assistant_for(basic).index()
    hits = assistant_for(basic).search("database url from environment", k=1)
    assert hits[0].path == "app/config.py"


def test_gitignored_files_are_never_indexed(
    make_repo: Callable[..., Repo], assistant_for: Callable[..., Assistant]
) -> None:
    repo = make_repo(
        {
            ".gitignore": "build/\n*.log\nsecret_notes.txt\n",
            "src/main.py": "def main():\n    pass\n",
            "build/gen.py": "def generated():\n    pass\n",
            "debug.log": "log line\n",
        }
    )
    repo.write("secret_notes.txt", "never index me\n")
    repo.write("notes/untracked.md", "# Plan\n\nUntracked but not ignored.\n")
    a = assistant_for(repo)
    a.index()
    paths = set(a.state.files())
    assert paths == {".gitignore", "src/main.py", "notes/untracked.md"}
    assert not any("never index me" in d for d in stored_documents(a))


def test_nested_gitignore_and_config_excludes_together(
    make_repo: Callable[..., Repo], assistant_for: Callable[..., Assistant]
) -> None:
    """A nested .gitignore (git's own rules) and user excludes with gitignore semantics: anchored, negated,
    directory-only and ** patterns."""
    repo = make_repo(
        {
            "src/main.py": "def main():\n    pass\n",
            "src/.gitignore": "*.gen.py\n!keep.gen.py\n",
            "vendor/lib.py": "def vendored():\n    pass\n",
            "src/vendor/own.py": "def own():\n    pass\n",
            "proto/a/b/x_pb2.py": "X = 1\n",
            "proto/a/b/keep_pb2.py": "K = 1\n",
        }
    )
    repo.write(
        "src/skip.gen.py", "def skipped():\n    pass\n"
    )  # untracked, ignored by src/.gitignore
    repo.write("src/keep.gen.py", "def kept():\n    pass\n")  # untracked, re-included there
    a = assistant_for(repo, exclude=("/vendor", "**/*_pb2.py", "!proto/a/b/keep_pb2.py"))
    a.index()
    indexed = {p for p, r in a.state.files().items() if r.status == "indexed"}
    assert {
        "src/main.py",
        "src/keep.gen.py",
        "src/vendor/own.py",
        "proto/a/b/keep_pb2.py",
    } <= indexed
    assert not indexed & {"src/skip.gen.py", "vendor/lib.py", "proto/a/b/x_pb2.py"}


def test_second_run_embeds_nothing_and_edit_embeds_only_the_change(
    basic: Repo, assistant_for: Callable[..., Assistant]
) -> None:
    a = assistant_for(basic)
    cold = a.index()
    warm = a.index()
    assert (warm.chunks_embedded, warm.chunks_written, warm.files_indexed) == (0, 0, 0)
    assert warm.files_unchanged == 4
    basic.write("app/uploads.py", UPLOADS.replace("units = {", "# binary units\n    units = {"))
    edited = a.index()
    assert edited.files_indexed == 1 and edited.chunks_embedded == 1, edited.summary()
    assert edited.chunks_reused >= 1, "the shifted function below the edit reuses its cached vector"
    assert a.store.count() == cold.chunks_written
    assert any("# binary units" in d for d in stored_documents(a))


def test_touch_without_change_reads_but_does_not_embed(
    basic: Repo, assistant_for: Callable[..., Assistant]
) -> None:
    a = assistant_for(basic)
    a.index()
    os.utime(basic.root / "app/config.py", ns=(1, 1))
    again = a.index()
    assert (again.chunks_embedded, again.files_indexed, again.files_unchanged) == (0, 0, 4)
    assert a.state.files()["app/config.py"].mtime_ns == 1


def test_copies_renames_and_deletes(basic: Repo, assistant_for: Callable[..., Assistant]) -> None:
    a = assistant_for(basic)
    a.index()
    basic.write("vendor/uploads_copy.py", UPLOADS)
    (basic.root / "app/config.py").rename(basic.root / "app/settings.py")
    (basic.root / "server/server.go").unlink()
    stats = a.index()
    assert stats.chunks_embedded == 0, "copies and renames reuse cached embeddings"
    assert stats.files_removed == 2
    paths = set(a.state.files())
    assert (
        "app/settings.py" in paths
        and "app/config.py" not in paths
        and "server/server.go" not in paths
    )
    rows = stored_rows(a)
    assert {r.path for r in rows} == {
        "app/uploads.py",
        "vendor/uploads_copy.py",
        "app/settings.py",
        "README.md",
    }
    per_path = {
        p: sum(r.path == p for r in rows) for p in ("app/uploads.py", "vendor/uploads_copy.py")
    }
    assert per_path["app/uploads.py"] == per_path["vendor/uploads_copy.py"] > 1


def test_bad_inputs_are_skipped_with_reasons(
    make_repo: Callable[..., Repo], tmp_path: Path, assistant_for: Callable[..., Assistant]
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def outside_secret():\n    return 'outside the repo'\n")
    repo = make_repo(
        {
            "ok.py": "def fine():\n    return 1\n",
            "image.png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)),
            "big.py": "x = 1\n" * 5000,
            "dist/app.js": "var a=function(){return 1};" * 200,
            "latin1.py": "name = 'caf\xe9'\n".encode("latin-1"),
            "broken.py": "def works():\n    return 2\n\ndef broken(:\n",
            "empty.py": "",
            ".env": "DATABASE_PASSWORD=hunter2\n",
            "deploy/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
            "certs/server.pem": "-----BEGIN CERTIFICATE-----\nabc\n",
            "settings.py": "AWS_KEY = 'AKIAIOSFODNN7EXAMPLE'\nGH = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'\n",
        }
    )
    os.symlink(outside, repo.root / "link.py")
    a = assistant_for(repo, max_file_bytes=20_000)
    stats = a.index()
    skipped = a.status()["skipped"]
    assert skipped["image.png"] == "binary"
    assert skipped["big.py"].startswith("too large")
    assert skipped["dist/app.js"].startswith("minified")
    assert skipped["latin1.py"] == "not UTF-8 text"
    assert skipped["empty.py"] == "empty"
    assert skipped["link.py"] == "symlink (not followed)"
    for secret_file in (".env", "deploy/id_rsa", "certs/server.pem"):
        assert skipped[secret_file] == "looks like a secret (by file name)"
    assert stats.files_skipped == len(skipped) == 9
    indexed = {p for p, r in a.state.files().items() if r.status == "indexed"}
    assert indexed == {"ok.py", "broken.py", "settings.py"}
    docs = "\n".join(stored_documents(a))
    assert "def works" in docs and "outside the repo" not in docs and "hunter2" not in docs
    assert (
        "AKIAIOSFODNN7EXAMPLE" not in docs
        and "ghp_abcdef" not in docs
        and "[REDACTED:aws-access-key]" in docs
    )


def test_not_a_git_repo_and_empty_repo(
    tmp_path: Path, make_repo: Callable[..., Repo], assistant_for: Callable[..., Assistant]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotAGitRepo, match="not inside a git repository"):
        Assistant(plain)
    empty = make_repo()
    a = assistant_for(empty)
    with pytest.raises(IndexMissing, match="localpilot index"):
        a.search("anything")
    stats = a.index()
    assert stats.files_seen == 0 and a.search("anything") == []
    assert a.status()["last_commit"] is None


def test_switching_embedder_builds_a_separate_index(
    basic: Repo, assistant_for: Callable[..., Assistant]
) -> None:
    real = assistant_for(basic)
    real.index()
    fake = Assistant(basic.root, real.settings, embedder=HashEmbedder(name="other-model"))
    assert fake.index_dir == real.index_dir
    stats = fake.index()
    assert stats.files_indexed == 4, "a new model does not inherit the other model's manifest"
    assert fake.store.count() == real.store.count()
    assert real.index().chunks_embedded == 0, "the first model's index is untouched"
    fake.close()


def test_second_writer_is_refused(basic: Repo, assistant_for: Callable[..., Assistant]) -> None:
    a = assistant_for(basic)
    a.index_dir.mkdir(parents=True, exist_ok=True)
    with (a.index_dir / "write.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write("4242")
        fh.flush()
        with pytest.raises(IndexBusy, match="4242"):
            a.index()
    assert a.index().files_indexed == 4


def test_status_reports_languages_and_location(
    basic: Repo, assistant_for: Callable[..., Assistant]
) -> None:
    a = assistant_for(basic)
    a.index()
    basic.commit()
    status = a.status()
    assert status["files"] == 4 and status["chunks"] == a.store.count()
    assert status["languages"] == {"python": 2, "go": 1, "markdown": 1}
    assert status["embedder"].startswith("code-minilm") and status["index_bytes"] > 0
    assert not Path(status["index_dir"]).is_relative_to(basic.root), (
        "the index never lives in the repo"
    )
    assert status["last_indexed"] is not None


def test_review_edge_cases(
    make_repo: Callable[..., Repo], tmp_path: Path, assistant_for: Callable[..., Assistant]
) -> None:
    outside = tmp_path / "outside_dir"
    outside.mkdir()
    (outside / "leak.py").write_text("def leaked():\n    return 'outside'\n")
    repo = make_repo(
        {
            "sub/ok.py": "def inside():\n    return 1\n",
            "macros.h": "int before(void);\n#define SQUARE(x) ((x) * (x))\n",
            "KEY.PEM": "-----BEGIN CERTIFICATE-----\n",
            "tests/test_x.py": "def test_x():\n    pass\n",
            "big.py": "x = 1\n" * 100,
        }
    )
    (repo.root / "sub").rename(repo.root / "sub_real")
    os.symlink(outside, repo.root / "sub")  # a tracked dir replaced by a symlink leading out
    with open(os.fsencode(repo.root) + b"/odd\xff.py", "wb") as fh:  # a name that is not UTF-8
        fh.write(b"y = 2\n")
    a = assistant_for(repo, max_file_bytes=300, exclude=("tests/",))
    stats = a.index()
    skipped = a.status()["skipped"]
    assert "symlink" in skipped["sub"] and "leak.py" not in "".join(stored_documents(a))
    assert skipped["KEY.PEM"] == "looks like a secret (by file name)"
    assert skipped["tests/test_x.py"] == "excluded by config"
    assert skipped["big.py"].startswith("too large")
    assert any("SQUARE" in d for d in stored_documents(a)), (
        "a macro at the end of a file is chunked"
    )
    assert stats.skipped["odd\ufffd.py"] == "file name is not valid UTF-8"
    raised = assistant_for(repo, max_file_bytes=10_000, exclude=("tests/",))
    again = raised.index()
    assert again.files_indexed == 1 and "big.py" not in raised.status()["skipped"], (
        "settings re-examined"
    )


def test_interrupted_run_is_reconciled_with_the_store(make_repo: Callable[..., Repo]) -> None:
    """Logic test with fakes: a kill between the store write and the manifest commit leaves orphans or holes."""
    import numpy as np

    from localpilot.store import MemoryStore

    repo = make_repo(
        {"a.py": "def alpha():\n    return 1\n", "b.py": "def beta():\n    return 2\n"}
    )
    store = MemoryStore()
    from localpilot.config import load_settings

    a = Assistant(
        repo.root, load_settings(repo.root, reranker="none"), embedder=HashEmbedder(), store=store
    )
    a.index()
    recorded = set().union(*a.state.chunk_ids_by_path().values())
    assert store.all_ids() == recorded
    store.upsert(["orphan"], np.ones((1, 64), np.float32))  # stored, never recorded
    store.delete(sorted(a.state.chunk_ids_by_path()["a.py"]))  # recorded, but its vectors are gone
    a.state.set_meta(run_in_progress=True)
    stats = a.index()
    assert stats.files_indexed == 0 and stats.chunks_embedded == 0, (
        "lost vectors come back from the cache"
    )
    assert store.all_ids() == set().union(*a.state.chunk_ids_by_path().values())
    assert "orphan" not in store.all_ids() and a.search("alpha", k=1)[0].path == "a.py"
    store.delete(sorted(a.state.chunk_ids_by_path()["b.py"]))
    a.state.db.execute(
        "DELETE FROM embeddings"
    )  # neither stored nor cached: re-embedded from SQLite's text, the file is not re-read
    a.state.set_meta(run_in_progress=True)
    stats = a.index()
    assert (
        stats.files_indexed == 0
        and stats.chunks_embedded >= 1
        and a.search("beta", k=1)[0].path == "b.py"
    )
    assert store.all_ids() == set().union(*a.state.chunk_ids_by_path().values())
    a.close()


def test_an_index_from_a_newer_version_is_refused_not_wiped(tmp_path: Path) -> None:
    import sqlite3

    from localpilot.errors import StoreError
    from localpilot.index.state import SCHEMA_VERSION, IndexState

    db = tmp_path / "state.sqlite"
    IndexState(db, "m").close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.execute("CREATE TABLE future (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer localpilot"):
        IndexState(db, "m")
    con = sqlite3.connect(db)
    assert con.execute("SELECT name FROM sqlite_master WHERE name='future'").fetchone()  # untouched
    con.close()


class _StopEmbedding(Exception):
    pass


def test_keyword_search_works_before_vectors_and_embedding_resumes(
    make_repo: Callable[..., Repo], assistant_for: Callable[..., Assistant]
) -> None:
    """The reading pass makes every file searchable by keyword and symbol; a run stopped while embedding
    resumes with only the pending chunks, most wanted first (recent source, source, tests, docs)."""
    files = {
        f"pkg/mod_{i}.py": f"def handler_{i}(value):\n    return value * {i}\n" for i in range(30)
    }
    files |= {
        "tests/test_mod.py": "def test_handler():\n    assert True\n",
        "docs/guide.md": "# Guide\n\nHi.\n",
    }
    repo = make_repo(files)
    repo.write("pkg/mod_29.py", "def handler_29(value):\n    return value * 290\n")
    repo.commit()
    a = assistant_for(repo)
    import localpilot.index.indexer as indexer

    def stop(p: object) -> None:  # after the first batch of vectors, as a kill would
        if getattr(p, "stage", "") == "embedding" and getattr(p, "vectors_done", 0):
            raise _StopEmbedding

    old_batch, indexer.BATCH_CHUNKS = indexer.BATCH_CHUNKS, 8
    try:
        with pytest.raises(_StopEmbedding):
            a.index(stop)
        waiting = a.state.pending(100)
        assert 0 < len(waiting) < a.state.chunk_count() and a.status()["chunks_waiting_for_vectors"]
        paths = [r.path for r in map(a.state.chunk_rows([*waiting]).get, waiting) if r]
        assert "pkg/mod_29.py" not in paths, "the file the last commit changed was embedded first"
        assert paths.index("tests/test_mod.py") > max(
            paths.index(f"pkg/mod_{i}.py") for i in range(20, 29)
        )
        assert paths[-1] == "docs/guide.md"
        # an editor opens a file while another process holds the index: its chunks go first
        with (a.index_dir / "write.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            assert a.index_buffer("docs/guide.md", "# Guide\n\nHi.\n") is False
        first = a.state.chunk_rows(a.state.pending(1))
        assert [r.path for r in first.values()] == ["docs/guide.md"]
        hit = a.search("handler_17", k=3)[
            0
        ]  # no vector for it yet: lexical and symbol channels find it
        assert hit.path == "pkg/mod_17.py"
        assert a.symbol_info("handler_17")["definitions"][0]["path"] == "pkg/mod_17.py"
        stats = a.index()
    finally:
        indexer.BATCH_CHUNKS = old_batch
    assert stats.files_indexed == 0 and stats.chunks_embedded == len(waiting)
    assert a.state.pending_count() == 0 and a.store.count() == a.state.chunk_count()
    assert a.search("multiply a value by seventeen", k=5)


def test_a_new_chunker_rechunks_unchanged_files_and_reuses_their_vectors(
    basic: Repo, assistant_for: Callable[..., Assistant], monkeypatch: pytest.MonkeyPatch
) -> None:
    from localpilot.index import indexer

    assistant_for(basic).index()
    monkeypatch.setattr(indexer, "CHUNKER_VERSION", indexer.CHUNKER_VERSION + 1)
    calls: list[str] = []
    real = indexer.chunk_file
    monkeypatch.setattr(
        indexer, "chunk_file", lambda path, *a, **k: calls.append(path) or real(path, *a, **k)
    )
    again = assistant_for(basic).index()
    assert sorted(calls) == ["README.md", "app/config.py", "app/uploads.py", "server/server.go"]
    assert again.files_indexed == 4 and again.chunks_embedded == 0, "same texts: cached vectors"
