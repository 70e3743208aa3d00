"""Rerankers: score (query, passage) pairs. A sentence-transformers CrossEncoder, and a fake for logic tests."""

from __future__ import annotations

import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


class Reranker(ABC):
    name: str

    @abstractmethod
    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to the query; higher is better."""


class CrossEncoderReranker(Reranker):
    """A local (or, when the user allows downloads, Hugging Face) cross-encoder, loaded on first use."""

    def __init__(self, model: str, name: str, device: str = "auto", max_length: int = 256,
                 batch_size: int = 32) -> None:
        self.model_ref, self.name, self.device = model, name, device
        self.max_length, self.batch_size = max_length, batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import torch
                import transformers
                from sentence_transformers import CrossEncoder

                transformers.utils.logging.disable_progress_bar()
                device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
                log.info("loading reranker %s on %s", self.name, device)
                self._model = CrossEncoder(self.model_ref, max_length=self.max_length, device=device)
        return self._model

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        scores = self.model.predict([(query, t) for t in texts], batch_size=self.batch_size,
                                    show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in scores]


class OverlapReranker(Reranker):
    """Fake for logic tests: fraction of query words found in the text."""

    name = "fake-overlap"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        words = set(re.findall(r"\w+", query.lower()))
        return [len(words & set(re.findall(r"\w+", t.lower()))) / max(len(words), 1) for t in texts]
