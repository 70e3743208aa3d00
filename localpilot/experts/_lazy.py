"""What every local model backend shares: offline loading on first use, once, and device choice."""

from __future__ import annotations

import os
import threading
from typing import Any


class LazyModel:
    """Mixin: ``self.model`` calls ``self._load()`` on first use (thread-safe) and keeps the result."""

    _model: Any = None
    _lock = threading.RLock()  # shared by all models; re-entrant so one load may load another

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
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
