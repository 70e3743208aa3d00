"""Export code-minilm's transformer to ONNX (torch.onnx, no optimum) and quantize it to int8 (dynamic,
per-channel), next to the model: ``model.onnx`` (fp32) and ``model-int8.onnx``. Then check both against the
torch fp32 model on real code chunks (cosine of the pooled, normalised vectors) and time them.

Run once when the model changes (needs the ``onnx`` package, a build-time tool only):
    .venv/bin/pip install onnx && .venv/bin/python models/embedder/export_onnx.py

Measured 2026-12-02 on the 2-core dev machine (AVX-512 with AMX), 400 chunks of this repository, quiet:
torch fp32 30.6 chunks/s; ONNX fp32 21.1/s (cosine 1.000), ONNX int8 31.6/s (cosine mean 0.994, min 0.978;
the 0.99 gate fails on the minimum). ONNX Runtime's BERT fusion (onnxruntime.transformers.optimizer) gave
20.4/s. int8 only ties torch fp32 here; ONNX Runtime's int8 kernels may use AMX on this CPU, torch fp32 does
not, so a CPU without AMX is unlikely to see int8 ahead. No ONNX backend ships; the files are not kept in
``models/``. Next lever: a smaller encoder (fewer layers, distilled from code-minilm), not a runtime.

Measured again 2026-12-03 on a 2-core AMD EPYC with AVX512-BF16 and no AMX (the path of the issue), same 400
chunks, quiet: torch fp32 17.5/s; torch bf16 39.9/s (cosine min 0.9999; what ``precision = auto`` picks here);
ONNX fp32 19.6/s; ONNX int8 28.8-32.7/s (cosine mean 0.994, min 0.978), int8 of the MatMuls only 27.4-28.2/s
(min 0.981). The reranker (20 pairs of 24-line chunks, 2 threads): torch fp32 865 ms, torch bf16 394 ms, ONNX
fp32 697 ms, ONNX int8 402 ms with its top-1 differing from fp32 on 1 query in 10. So on AVX512-BF16 too,
torch bf16 is the fastest backend; ONNX int8 would lead only on a CPU with neither AMX nor AVX512-BF16
(~1.7x fp32 here), at the quality cost above.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def export(model_dir: Path) -> tuple[Path, Path]:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    class Encoder(torch.nn.Module):
        """The transformer with positional inputs in a fixed order (its forward takes keywords)."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir)).eval()

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = Encoder().eval()
    fp32, int8 = model_dir / "model.onnx", model_dir / "model-int8.onnx"
    ids = torch.ones((2, 16), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                n: {0: "batch", 1: "seq"}
                for n in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
            },
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
    return fp32, int8


def check(model_dir: Path, texts: list[str]) -> dict[str, object]:
    from sentence_transformers import SentenceTransformer

    ref_model = SentenceTransformer(str(model_dir), device="cpu")
    t = time.perf_counter()
    ref = ref_model.encode(texts, batch_size=32, normalize_embeddings=True)
    out: dict[str, object] = {
        "texts": len(texts),
        "torch_fp32_per_s": len(texts) / (time.perf_counter() - t),
    }
    for name in ("model.onnx", "model-int8.onnx"):
        enc = OnnxEncoder(model_dir / name, model_dir, ref_model.max_seq_length)
        enc.encode(texts[:8])
        t = time.perf_counter()
        got = enc.encode(texts)
        rate = len(texts) / (time.perf_counter() - t)
        cos = np.sum(got * ref, axis=1)
        out[name] = {"per_s": rate, "cos_min": float(cos.min()), "cos_mean": float(cos.mean())}
    return out


class OnnxEncoder:
    """``encode(texts)`` -> normalised vectors, shape (len(texts), dim). Thread-safe (ONNX Runtime sessions
    are); ``threads`` 0 lets ONNX Runtime use every core."""

    def __init__(
        self, graph: Path, model_dir: Path, max_tokens: int, batch_size: int = 32, threads: int = 0
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        self.batch_size, self.graph = batch_size, Path(graph)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(
            range(len(texts)), key=lambda i: len(encodings[i].ids)
        )  # little padding per batch
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(order), self.batch_size):
            part = order[start : start + self.batch_size]
            for i, vec in zip(part, self._run([encodings[i] for i in part]), strict=True):
                out[i] = vec
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)

    def _run(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def sample_texts(n: int) -> list[str]:
    """Function-sized pieces of this repository's own code (not a benchmark package)."""
    pieces: list[str] = []
    for path in sorted((HERE.parent.parent / "localpilot").rglob("*.py")):
        lines = path.read_text().splitlines()
        pieces += ["\n".join(lines[i : i + 24]) for i in range(0, len(lines), 24)]
    return pieces[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=HERE / "code-minilm")
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args()
    if not args.check_only:
        export(args.model_dir)
    print(json.dumps(check(args.model_dir, sample_texts(400)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
