"""What every local model backend shares: offline loading on first use, once, and device choice."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from localpilot.errors import ConfigError, ModelNotFound


class LazyModel:
    """Mixin: ``self.model`` calls ``self._load()`` on first use (thread-safe) and keeps the result."""

    _model: Any = None
    _lock = threading.RLock()  # shared by all models; re-entrant so one load may load another

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    self._model = self._load()
                except (
                    OSError,
                    RuntimeError,
                    ValueError,
                ) as exc:  # missing files, offline hub, bad device
                    raise ModelNotFound(
                        f"could not load model {getattr(self, 'name', '?')!r}: {exc}. Hugging Face ids need a "
                        "cached copy or downloads allowed (HF_HUB_OFFLINE=0); check `device` too"
                    ) from exc
        return self._model

    def _load(self) -> Any:
        raise NotImplementedError


def prepare_offline() -> None:
    """No hub access unless the user opted in (HF_HUB_OFFLINE=0); quiet tokenizers and progress bars."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.disable_progress_bar()


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` picks bf16 where the hardware runs it natively (CUDA, or a CPU with AMX / AVX512-BF16:
    about 2x the fp32 throughput at cosine >= 0.996 to fp32, see bench/indexing.py and bench/latency.py), else fp32."""
    if precision in {"fp32", "bf16"}:
        return precision
    if precision != "auto":
        raise ConfigError(f"unknown precision {precision!r}: use auto, fp32 or bf16")
    import torch

    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    cpu = torch.cpu
    fast = (
        getattr(cpu, "_is_amx_tile_supported", lambda: False)()
        or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
    )
    return "bf16" if fast else "fp32"


class _ThreadBudget:
    """torch's intra-op thread count is one process-wide setting: the first query-time block sets it, the last
    one to leave restores it, so concurrent searches never restore each other's value halfway through."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.before = 0

    @contextmanager
    def use(self, n: int) -> Iterator[None]:
        import torch

        if n <= 0:
            yield
            return
        with self.lock:
            if self.users == 0:
                self.before = torch.get_num_threads()
                if self.before != n:
                    torch.set_num_threads(n)
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0 and torch.get_num_threads() != self.before:
                    torch.set_num_threads(self.before)


_BUDGET = _ThreadBudget()


def torch_threads(n: int) -> AbstractContextManager[None]:
    """Run the block's torch ops on ``n`` intra-op threads, then restore.

    Query-time work (one query embedding, 20 rerank pairs) uses half the cores: OpenMP threads wait at barriers
    for each other, so a 2-thread search next to another busy localpilot process (an indexer, a second front-end)
    went from 130 to 716 ms p50 on 2 cores, against 205 → 243 ms with 1 thread (bench/README.md, live index).
    """
    return _BUDGET.use(n)


def query_threads_now(base: int, idle_cores: bool) -> int:
    """Threads for one query's encoder work: every core while the CPU ledger sees nothing else running
    (20 rerank pairs: 701 -> 394 ms on 2 cores, AVX512-BF16), else ``base``: spinning OpenMP threads beside
    another busy job are slower than one. Call it inside the caller's ``ledger.job()``."""
    from localpilot.experts.cpu import ledger

    return ledger.threads_for(base) if idle_cores else base


def limit_threads(model: Any, n: int) -> Any:
    """``torch_threads(n)`` for a model on the CPU; a no-op on a GPU."""
    return torch_threads(n if model.device.type == "cpu" else 0)
