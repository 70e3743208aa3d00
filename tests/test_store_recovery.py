"""A damaged or incompatible vector store is detected at open, moved aside and rebuilt; the caller survives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localpilot.config import load_settings
from localpilot.service import Assistant
from localpilot.store import check_embedded_store

FILES = {
    "a.py": "def alpha_handler():\n    return 1\n",
    "b.py": "def beta_parser(text):\n    return text\n",
}


def rebuilt_equals_fresh(repo: Any, minilm: Any, tmp_path: Path) -> None:
    a = Assistant(repo.root, load_settings(repo.root), embedder=minilm)
    stats = a.index()
    assert stats.chunks_embedded == 0  # rebuilt from the embedding cache
    fresh = Assistant(
        repo.root, load_settings(repo.root, cache_dir=tmp_path / "fresh"), embedder=minilm
    )
    fresh.index()
    try:
        assert a.store.all_ids() == fresh.store.all_ids()
        assert a.search("beta parser", 2)[0].path == "b.py"
    finally:
        a.close()
        fresh.close()


def test_garbage_store_is_moved_aside_and_rebuilt(
    make_repo: Callable[..., Any], minilm: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = make_repo(FILES)
    a = Assistant(repo.root, load_settings(repo.root), embedder=minilm)
    a.index()
    chroma = a.index_dir / "chroma"
    a.close()
    (chroma / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING):
        rebuilt_equals_fresh(repo, minilm, tmp_path)
    assert "moved it to" in caplog.text
    assert list(chroma.parent.glob("chroma.broken-*"))


def test_a_store_that_crashes_its_reader_is_checked_in_a_child(
    make_repo: Callable[..., Any], minilm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an interrupted run the store is opened first in a child process. A store that segfaults its reader
    (simulated: the child's check kills itself with SIGSEGV) is moved aside; this process carries on."""
    import localpilot.store

    repo = make_repo(FILES)
    a = Assistant(repo.root, load_settings(repo.root), embedder=minilm)
    a.index()
    a.state.set_meta(run_in_progress=True)  # as if killed mid-run
    chroma = a.index_dir / "chroma"
    a.close()
    assert check_embedded_store(chroma) is None  # a healthy store passes the check
    monkeypatch.setattr(
        localpilot.store, "_CHECK", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    )
    assert "crashed the process (signal 11)" in str(check_embedded_store(chroma))
    rebuilt_equals_fresh(repo, minilm, tmp_path)
    assert list(chroma.parent.glob("chroma.broken-*"))


class _RacingCollection:
    """The real collection, whose first search fails the way embedded Chroma fails one that races a delete."""

    def __init__(self, col: Any, writing: Any) -> None:
        self._col, self._writing, self.calls, self.locked = col, writing, 0, [False]

    def query(self, **kw: Any) -> Any:
        self.calls += 1
        self.locked.append(self._writing.locked())
        if self.calls == 1:
            raise RuntimeError("Error executing plan: Internal error: Error finding id")
        return self._col.query(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._col, name)


def test_a_search_that_races_a_delete_is_retried_while_writes_wait(tmp_path: Path) -> None:
    import numpy as np

    from localpilot.store import ChromaStore

    store = ChromaStore(tmp_path / "chroma", "test-model")
    vecs = np.eye(3, 8, dtype=np.float32)
    store.upsert(["a", "b", "c"], vecs)
    racing = _RacingCollection(store._col, store._writing)
    store._col = racing
    hits = store.query(vecs[1], 2)
    assert hits[0][0] == "b" and len(hits) == 2
    assert racing.calls == 2 and racing.locked[1:] == [False, True]  # the retry held the write lock
