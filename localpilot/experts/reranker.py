"""Rerankers: score (query, passage) pairs. A sentence-transformers CrossEncoder, and a fake for logic tests."""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from localpilot.config import half_the_cores
from localpilot.experts._lazy import (
    LazyModel,
    limit_threads,
    pick_device,
    prepare_offline,
    query_threads_now,
    resolve_precision,
)
from localpilot.experts.cpu import ledger

log = logging.getLogger(__name__)


class Reranker(ABC):
    name: str

    @abstractmethod
    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to the query; higher is better."""


class CrossEncoderReranker(LazyModel, Reranker):
    """A local (or, when the user allows downloads, Hugging Face) cross-encoder, loaded on first use."""

    def __init__(
        self,
        model: str,
        name: str,
        device: str = "auto",
        max_length: int = 192,
        batch_size: int = 32,
        precision: str = "auto",
        query_threads: int = 0,
    ) -> None:
        self.model_ref, self.name, self.device, self.precision = model, name, device, precision
        self.max_length, self.batch_size = max_length, batch_size
        self.query_threads = query_threads or half_the_cores()  # on CPU; see torch_threads
        self.idle_cores = True  # all cores when the machine is idle (bench/latency.py compares)

    def _load(self) -> Any:
        prepare_offline()
        import torch
        from sentence_transformers import CrossEncoder

        device = pick_device(self.device)
        self.precision = resolve_precision(self.precision, device)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        log.info("loading reranker %s on %s (%s)", self.name, device, self.precision)
        return CrossEncoder(
            self.model_ref, max_length=self.max_length, device=device, model_kwargs={"dtype": dtype}
        )

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        model = self.model
        with (
            ledger.job(),
            limit_threads(model, query_threads_now(self.query_threads, self.idle_cores)),
        ):
            scores = model.predict(
                [(query, t) for t in texts],
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_tensor=True,
            )
        return [float(s) for s in scores.float().cpu()]


class OverlapReranker(Reranker):
    """Fake for logic tests: fraction of query words found in the text."""

    name = "fake-overlap"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        words = set(re.findall(r"\w+", query.lower()))
        return [len(words & set(re.findall(r"\w+", t.lower()))) / max(len(words), 1) for t in texts]
