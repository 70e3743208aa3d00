#!/usr/bin/env python
"""Shrink a BERT-style model (cross-encoder or sentence-transformers directory) by pruning its WordPiece vocabulary
to the tokens that Python source actually uses.

The 30,522 x 384 word-embedding matrix is half of a MiniLM-L6 model. Most rows are never used on code: tokens for
other scripts, rare words, `[unused]` slots. This script tokenizes the same source the models were trained on
(the standard library and site-packages, never the evaluation packages; see ``train.py: iter_sources``), keeps

- every special token and every id below the first real token (so [CLS]/[SEP]/... keep their ids),
- every single-character token and its ``##`` form (so no word that the full vocabulary could spell becomes
  [UNK]: WordPiece can always fall back to characters),
- every token that the corpus produces at least ``--min-count`` times,

and writes a new model directory whose embedding matrix, ``vocab.txt``, ``tokenizer.json`` and ``config.json``
hold only those rows, in their original order. For any word made only of kept tokens, which by construction is
every word of the corpus seen with the old vocabulary's split, tokenization and therefore the model's output
are unchanged; the script checks that on a sample and reports it.

Usage: .venv/bin/python models/reranker/prune_vocab.py SRC DST [--min-count 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("prune_vocab")
HERE = Path(__file__).resolve().parent
MAX_FILE_BYTES = 400_000  # as in train.py: skip generated tables


def corpus_files() -> list[Path]:
    spec = importlib.util.spec_from_file_location("reranker_train", HERE / "train.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [
        path for _, _, _, path in module.iter_sources() if path.stat().st_size <= MAX_FILE_BYTES
    ]


def read_texts(files: list[Path]) -> list[str]:
    texts = []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    return texts


def count_tokens(tok, texts: list[str], vocab_size: int, batch: int = 256) -> np.ndarray:
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(texts), batch):
        for ids in tok(texts[start : start + batch], add_special_tokens=False)["input_ids"]:
            counts += np.bincount(np.asarray(ids, dtype=np.int64), minlength=vocab_size)
    return counts


def kept_ids(
    vocab: list[str], counts: np.ndarray, min_count: int, special_ids: set[int]
) -> list[int]:
    first_real = min(
        i for i, t in enumerate(vocab) if i not in special_ids and not t.startswith("[unused")
    )
    keep = set(range(first_real)) | special_ids
    keep |= {i for i, t in enumerate(vocab) if len(t.removeprefix("##")) == 1}
    keep |= {int(i) for i in np.nonzero(counts >= min_count)[0]}
    return sorted(keep)


def write_model(src: Path, dst: Path, keep: list[int], vocab: list[str]) -> dict[str, int]:
    from safetensors.numpy import load_file, save_file

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    weights = load_file(str(src / "model.safetensors"))
    (key,) = [k for k in weights if k.endswith("word_embeddings.weight")]
    weights[key] = np.ascontiguousarray(weights[key][keep])
    save_file(weights, str(dst / "model.safetensors"), metadata={"format": "pt"})
    new_vocab = [vocab[i] for i in keep]
    config = json.loads((src / "config.json").read_text())
    config["vocab_size"] = len(keep)
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tokenizer = json.loads((src / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"] = {t: i for i, t in enumerate(new_vocab)}
    (dst / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False, indent=2) + "\n")
    if (src / "vocab.txt").exists():
        (dst / "vocab.txt").write_text("".join(t + "\n" for t in new_vocab), encoding="utf-8")
    return {"vocab_before": len(vocab), "vocab_after": len(keep)}


def check(src: Path, dst: Path, texts: list[str]) -> dict[str, float]:
    """Share of sample texts whose token strings are identical under both vocabularies."""
    from transformers import AutoTokenizer

    old, new = AutoTokenizer.from_pretrained(src), AutoTokenizer.from_pretrained(dst)
    same = sum(old.tokenize(t) == new.tokenize(t) for t in texts)
    return {
        "sample_texts": len(texts),
        "identically_tokenized": round(same / max(1, len(texts)), 4),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument(
        "--min-count", type=int, default=1, help="keep tokens the corpus produces this often"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "sequence longer than 512": we count tokens, nothing runs the model
    tok = AutoTokenizer.from_pretrained(args.src)
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    started = time.time()
    texts = read_texts(corpus_files())
    counts = count_tokens(tok, texts, len(vocab))
    log.info(
        "tokenized %d files (%.0f MB) in %.0f s; %d distinct tokens",
        len(texts),
        sum(map(len, texts)) / 1e6,
        time.time() - started,
        int((counts > 0).sum()),
    )
    keep = kept_ids(vocab, counts, args.min_count, set(tok.all_special_ids))
    stats = write_model(args.src, args.dst, keep, vocab)
    sample = [line for t in texts[::40] for line in t.splitlines()[:200] if line.strip()]
    stats.update(
        check(args.src, args.dst, sample),
        min_count=args.min_count,
        corpus_files=len(texts),
        size_mb=round((args.dst / "model.safetensors").stat().st_size / 1e6, 1),
    )
    meta_path = args.dst / "training_meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta["vocab_pruning"] = stats
        meta_path.write_text(json.dumps(meta, indent=2))
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
