"""Embedders: one small interface, a real sentence-transformers backend and a fake for logic tests."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors."""

    #: Stable identity of the vector space; part of the index's identity.
    name: str
    dim: int
    #: Longest input (in tokens, special tokens included) the model reads; the rest is cut off.
    max_tokens: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), rows L2-normalised."""

    @abstractmethod
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model counts them, without special tokens."""

    def embed_query(self, text: str) -> np.ndarray:
        """One search query's vector (interactive: may use fewer threads than indexing)."""
        return self.embed([text])[0]

    def ready(self) -> bool:
        """The model is in memory: a query now costs no load (an inline completion never waits for one)."""
        return True


class SentenceTransformerEmbedder(LazyModel, Embedder):
    """A local sentence-transformers model directory, loaded on first use."""

    def __init__(
        self,
        model_dir: str,
        name: str,
        device: str = "auto",
        batch_size: int = 32,
        precision: str = "auto",
        query_threads: int = 0,
    ) -> None:
        self.model_dir = model_dir
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.precision = precision  # auto | fp32 | bf16 (resolved at load)
        self.query_threads = query_threads or half_the_cores()
        self.idle_cores = True  # a query on every core when nothing else runs (see the reranker)
        self._light: Any = None  # tokenizer.json alone, for counting before the model is loaded
        self._config_limit: int | None = None  # max_seq_length from the directory's config

    def _light_tokenizer(self) -> Any | None:
        """The fast tokenizer from ``tokenizer.json``, untruncated and unpadded; None where there is none."""
        with self._lock:
            if self._light is None:
                self._light = False
                path = Path(self.model_dir) / "tokenizer.json"
                if path.is_file():
                    from tokenizers import Tokenizer

                    tok = Tokenizer.from_file(str(path))
                    tok.no_truncation()
                    tok.no_padding()
                    self._light = tok
        return self._light or None

    def _load(self) -> Any:
        prepare_offline()
        import torch
        from sentence_transformers import SentenceTransformer

        device = pick_device(self.device)
        self.precision = resolve_precision(self.precision, device)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        log.info(
            "loading embedder %s from %s on %s (%s)",
            self.name,
            self.model_dir,
            device,
            self.precision,
        )
        return SentenceTransformer(
            self.model_dir, device=device, local_files_only=True, model_kwargs={"dtype": dtype}
        )

    @property
    def dim(self) -> int:  # type: ignore[override]
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:  # type: ignore[override]
        if self._model is None:  # chunking needs the limit, not the network: search comes sooner
            if self._config_limit is None:
                self._config_limit = _config_max_length(self.model_dir)  # read once
            if self._config_limit:
                return self._config_limit
        return int(self.model.max_seq_length)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with ledger.job():  # a short inline completion waits for its share of the cores meanwhile
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        vectors = vectors.float().cpu().numpy()  # normalise in fp32 whatever the compute precision
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)

    def ready(self) -> bool:
        return self._model is not None

    def embed_query(self, text: str) -> np.ndarray:
        model = self.model
        with ledger.job():
            n = query_threads_now(self.query_threads, self.idle_cores)
        with limit_threads(model, n):
            return self.embed([text])[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Counted by the model directory's own ``tokenizer.json`` while the network is not loaded (the same
        tokenizer without torch: chunking a big repository needs no model, so search starts seconds sooner)."""
        if not texts:
            return []
        if self._model is None and (light := self._light_tokenizer()) is not None:
            return [len(e.ids) for e in light.encode_batch(list(texts), add_special_tokens=False)]
        encoded = self.model.tokenizer(
            list(texts),
            add_special_tokens=False,
            truncation=False,
            verbose=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]


def _config_max_length(model_dir: str) -> int:
    """``max_seq_length`` from a sentence-transformers directory's config (0 when not a local directory)."""
    config = Path(model_dir) / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length") or 0)
    except (OSError, ValueError):
        return 0


_WORD = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


class HashEmbedder(Embedder):
    """Fake for logic tests: bag of hashed word pieces. Deterministic, instant, no model files."""

    def __init__(self, dim: int = 64, max_tokens: int = 256, name: str = "fake-hash") -> None:
        self.dim = dim
        self.max_tokens = max_tokens
        self.name = name
        self.calls: list[int] = []  # batch sizes seen, for tests counting re-embeds

    def _pieces(self, text: str) -> list[str]:
        return [w.lower() for w in _WORD.findall(text)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for piece in self._pieces(text)[: self.max_tokens]:
                digest = hashlib.blake2b(piece.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self._pieces(t)) for t in texts]
