"""Code LLM experts behind one small interface: ``Generator.stream(messages) -> Iterator[Token]``.

``LlamaCppGenerator`` runs a GGUF in-process through llama-cpp-python (GPU offload when the build has
it); ``ScriptedGenerator`` is the fake for logic tests; the remote OpenAI-compatible backend lives in
``experts/remote.py``. Every backend reports per-token log-probabilities (the router's confidence signal)
and the timings of its last call.
"""

from __future__ import annotations

import codecs
import logging
import os
import shutil
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localpilot.errors import LocalpilotError, ModelNotFound
from localpilot.experts import chat_template, gguf
from localpilot.experts.cpu import ledger

log = logging.getLogger(__name__)
Messages = Sequence[dict[str, str]]


class ContextOverflow(LocalpilotError):
    """The prompt does not fit the model's context window."""

    exit_code = 7


class NoInfill(LocalpilotError):
    """The model has no fill-in-the-middle tokens."""

    exit_code = 3


@dataclass(frozen=True)
class Token:
    text: str
    logprob: float | None = None


@dataclass
class GenStats:
    """What the last ``stream`` call cost."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt prefix reused from the KV cache
    gen_tokens: int = 0
    ttft_s: float = 0.0
    gen_s: float = 0.0

    @property
    def gen_tokens_per_s(self) -> float:
        return self.gen_tokens / self.gen_s if self.gen_s > 0 else 0.0

    @property
    def prompt_tokens_per_s(self) -> float:
        evaluated = self.prompt_tokens - self.cached_tokens
        return evaluated / self.ttft_s if self.ttft_s > 0 and evaluated > 0 else 0.0


_LAST = threading.local()  # per thread: id(generator) -> GenStats of that thread's latest call


class Generator(ABC):
    """A chat model. ``stream`` yields tokens as they are generated; closing the iterator stops it."""

    name: str = "generator"
    family: str = "unknown"
    n_ctx: int = 4096

    @property
    def last(self) -> GenStats:
        """What the calling thread's latest ``stream``/``infill`` cost. Per thread, so one front-end's request
        never reads another's numbers (a stream is consumed by the thread that started it)."""
        stats: dict[int, GenStats] = _LAST.__dict__.setdefault("stats", {})
        return stats.setdefault(id(self), GenStats())

    @last.setter
    def last(self, value: GenStats) -> None:
        _LAST.__dict__.setdefault("stats", {})[id(self)] = value

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def stream(
        self, messages: Messages, max_tokens: int = 512, cancel: threading.Event | None = None
    ) -> Iterator[Token]: ...

    #: Reads other files (``extra`` of ``infill``) in a repository-level format of its own.
    repo_context: bool = False

    def infill(
        self,
        prefix: str,
        suffix: str,
        max_tokens: int = 64,
        cancel: threading.Event | None = None,
        extra: Sequence[tuple[str, str]] = (),
        path: str = "",
    ) -> Iterator[Token]:
        """Fill in the middle between ``prefix`` and ``suffix`` with the model's own FIM tokens; ``extra`` are
        (path, text) of other files to read first."""
        raise NoInfill(
            f"{self.name} cannot fill in the middle here; use an in-process code model "
            "(qwen2.5-coder or deepseek-coder presets)"
        )

    def prefill(
        self,
        prefix: str,
        suffix: str,
        extra: Sequence[tuple[str, str]] = (),
        path: str = "",
        cancel: threading.Event | None = None,
    ) -> int:
        """Evaluate an infill prompt ahead of time (prewarm); backends without a KV cache of ours do nothing."""
        return 0

    def prompt_tokens(self, messages: Messages) -> int:
        """Tokens the rendered prompt for ``messages`` takes (template included)."""
        return self.count_tokens("".join(m["content"] for m in messages)) + 8 * len(messages)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "backend": "none", "n_ctx": self.n_ctx}

    def load(self) -> None:  # noqa: B027 - optional for backends that hold nothing
        """Load the model now rather than at the first request; nothing to load by default."""

    def close(self) -> None:  # noqa: B027 - optional for backends that hold nothing
        """Free the model's memory now (it loads again if used); nothing to free by default."""


PREFILL_SLICE = (
    128  # prompt tokens evaluated between two looks at cancel and at what else runs (cpu.py)
)


class LlamaCppGenerator(Generator):
    """A GGUF model in this process. The file is first loaded once in a child process (gguf.probe)."""

    def __init__(
        self,
        path: Path,
        name: str,
        family: str = "unknown",
        *,
        n_ctx: int = 4096,
        gpu_layers: str = "auto",
        threads: int | None = None,
        cache_dir: Path | None = None,
        background: bool = False,
    ) -> None:
        self.path, self.name, self.family = Path(path), name, family
        self.background = (
            background  # inline completion: gives way to a chat answer reading its prompt
        )
        self._threads_now = 0
        self.meta = gguf.probe(self.path, cache_dir or Path.home() / ".cache" / "localpilot")
        self.n_ctx = min(n_ctx, int(self.meta.get("n_ctx_train") or n_ctx))
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self._gpu_request = gpu_layers
        self.gpu_layers = 0
        self.backend = "CPU"
        self._llm: Any = None
        self._repo_context: bool | None = None
        self._lock = threading.RLock()

    @property
    def llm(self) -> Any:
        with self._lock:
            if self._llm is None:
                self._llm = self._load()
            return self._llm

    def _load(self) -> Any:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelNotFound(
                "llama-cpp-python is not installed: run ./install.sh (it builds it)"
            ) from exc
        self.backend = _backend(llama_cpp)
        self.gpu_layers = _plan_gpu_layers(
            self._gpu_request,
            llama_cpp.llama_supports_gpu_offload(),
            self.path.stat().st_size,
            int(self.meta.get("n_layer") or 0),
        )
        started = time.perf_counter()
        try:
            llm = llama_cpp.Llama(
                str(self.path),
                n_ctx=self.n_ctx,
                n_gpu_layers=self.gpu_layers,
                n_threads=self.threads,
                n_batch=512,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelNotFound(f"llama.cpp could not load {self.path}: {exc}") from exc
        log.info(
            "loaded %s (%s, %d GPU layers) in %.1fs",
            self.name,
            self.backend,
            self.gpu_layers,
            time.perf_counter() - started,
        )
        return llm

    def load(self) -> None:
        self.llm  # noqa: B018 - loads the weights

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def render(self, messages: Messages) -> str:
        return chat_template.render(
            self.meta.get("metadata", {}).get("tokenizer.chat_template"),
            messages,
            bos_token=self.meta.get("bos_token", ""),
            eos_token=self.meta.get("eos_token", ""),
        )

    def encode(self, messages: Messages) -> list[int]:
        llm = self.llm
        tokens = llm.tokenize(
            self.render(messages).encode("utf-8", "replace"), add_bos=False, special=True
        )
        bos = llm.token_bos()
        if llm._model.add_bos_token() and bos >= 0 and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        return list(tokens)

    def prompt_tokens(self, messages: Messages) -> int:
        return len(self.encode(messages))

    def stream(
        self, messages: Messages, max_tokens: int = 512, cancel: threading.Event | None = None
    ) -> Iterator[Token]:
        with self._lock:
            tokens = self.encode(messages)
            if len(tokens) + max_tokens > self.n_ctx:
                raise ContextOverflow(
                    f"the prompt takes {len(tokens)} tokens and the answer up to {max_tokens}, "
                    f"more than {self.name}'s context of {self.n_ctx}"
                )
            yield from self._generate(tokens, max_tokens, cancel)

    @property
    def repo_context(self) -> bool:  # type: ignore[override]
        """The model reads other files in its repository-level FIM format (Qwen2.5-Coder's ``<|file_sep|>``)."""
        if self._repo_context is None:
            self._repo_context = self._special("<|file_sep|>") is not None
        return self._repo_context

    def _special(self, text: str) -> int | None:
        ids = self.llm.tokenize(text.encode(), add_bos=False, special=True)
        return ids[0] if len(ids) == 1 else None

    def infill(
        self,
        prefix: str,
        suffix: str,
        max_tokens: int = 64,
        cancel: threading.Event | None = None,
        extra: Sequence[tuple[str, str]] = (),
        path: str = "",
    ) -> Iterator[Token]:
        """FIM with the token ids the GGUF declares (Qwen2.5-Coder and DeepSeek-Coder spell them differently;
        llama.cpp knows both). ``extra`` (path, text) files come first, in the repository-level format where the
        model has one, so they stay a stable, cached prefix; the prefix is cut from the left and the suffix from
        the right only when the whole does not fit the context."""
        with self._lock:
            yield from self._generate(
                self.infill_tokens(prefix, suffix, max_tokens, extra, path), max_tokens, cancel
            )

    def prefill(
        self,
        prefix: str,
        suffix: str,
        extra: Sequence[tuple[str, str]] = (),
        path: str = "",
        cancel: threading.Event | None = None,
    ) -> int:
        """Evaluate an infill prompt into the KV cache without answering (prewarm), in slices so that ``cancel``
        (a real request arriving) stops it between two; returns the tokens it evaluated."""
        with self._lock:
            llm = self.llm
            tokens = self.infill_tokens(prefix, suffix, 1, extra, path)
            with ledger.job():
                return self._eval_slices(llm, tokens, cancel)

    def _eval_slices(self, llm: Any, tokens: list[int], cancel: threading.Event | None) -> int:
        """Evaluate what of ``tokens`` the KV cache lacks, ``PREFILL_SLICE`` at a time: between two slices a
        cancel is seen and the thread count follows what else runs. Returns the tokens evaluated."""
        done = _common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        llm.n_tokens = done  # keep the shared prefix; eval() drops the KV cache after it
        start = done
        while done < len(tokens) and not (cancel is not None and cancel.is_set()):
            self._pace(llm, cancel)
            llm.eval(tokens[done : done + PREFILL_SLICE])
            done = min(len(tokens), done + PREFILL_SLICE)
        return done - start

    def _pace(self, llm: Any, cancel: threading.Event | None) -> None:
        """Before each slice or token: wait for a chat answer's prompt if this is completion work, then use
        every core when nothing else runs, else the configured share (``threads``)."""
        if self.background:
            ledger.give_way(cancel)
        if self.gpu_layers:
            return
        import llama_cpp

        n = ledger.threads_for(self.threads)
        if n != self._threads_now:
            llama_cpp.llama_set_n_threads(llm.ctx, n, n)
            self._threads_now = n

    def infill_tokens(
        self,
        prefix: str,
        suffix: str,
        max_tokens: int,
        extra: Sequence[tuple[str, str]] = (),
        path: str = "",
    ) -> list[int]:
        llm = self.llm
        model = llm._model
        pre, suf, mid = model.token_prefix(), model.token_suffix(), model.token_middle()
        if min(pre, suf, mid) < 0:
            raise NoInfill(
                f"{self.name} has no fill-in-the-middle tokens; use a code model such as the "
                "qwen2.5-coder or deepseek-coder presets"
            )

        def tok(text: str, special: bool = False) -> list[int]:
            return list(
                llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=special)
            )

        head: list[int] = []
        if extra and self.repo_context:
            head = tok("<|repo_name|>repo\n", True)
            for other, text in extra:
                head += tok(f"<|file_sep|>{other}\n", True) + tok(text.rstrip("\n") + "\n")
            head += tok(f"<|file_sep|>{path or 'current'}\n", True)
        room = self.n_ctx - max_tokens - 4
        head = head[-room // 2 :] if len(head) > room // 2 else head
        room -= len(head)
        before, after = tok(prefix), tok(suffix)
        after = after[: max(room // 4, room - len(before))]
        before = before[-(room - len(after)) :] if room > len(after) else []
        tokens = [*head, pre, *before, suf, *after, mid]
        bos = llm.token_bos()
        if model.add_bos_token() and bos >= 0:
            tokens.insert(0, bos)
        return tokens

    def _generate(
        self, tokens: list[int], max_tokens: int, cancel: threading.Event | None
    ) -> Iterator[Token]:
        llm = self.llm
        cached = _common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        stats = self.last = GenStats(prompt_tokens=len(tokens), cached_tokens=cached)
        started = time.perf_counter()
        with ledger.job() if self.background else ledger.priority():  # the prompt, in slices
            self._eval_slices(llm, tokens[:-1], cancel)
        if cancel is not None and cancel.is_set():
            return
        with ledger.job():
            yield from self._sample(llm, tokens, max_tokens, cancel, stats, started)

    def _sample(
        self,
        llm: Any,
        tokens: list[int],
        max_tokens: int,
        cancel: threading.Event | None,
        stats: GenStats,
        started: float,
    ) -> Iterator[Token]:
        import llama_cpp
        import numpy as np

        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        vocab, n_vocab = llm._model.vocab, llm.n_vocab()
        first = 0.0
        for token in llm.generate(tokens, temp=0.0, repeat_penalty=1.1, reset=True):
            self._pace(llm, cancel)
            now = time.perf_counter()
            first = first or now
            stats.ttft_s = first - started
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
            peak = float(logits.max())
            logprob = float(logits[token]) - peak - float(np.log(np.exp(logits - peak).sum()))
            stats.gen_tokens += 1
            stats.gen_s = now - first
            yield Token(decoder.decode(llm.detokenize([token])), logprob)
            if stats.gen_tokens >= max_tokens or (cancel is not None and cancel.is_set()):
                break
        tail = decoder.decode(b"", final=True)
        if tail:
            yield Token(tail, None)

    def info(self) -> dict[str, Any]:
        self.llm  # noqa: B018 - load to know the offload plan
        return {
            "name": self.name,
            "family": self.family,
            "backend": self.backend,
            "path": str(self.path),
            "n_ctx": self.n_ctx,
            "gpu_layers": self.gpu_layers,
            "n_layer": self.meta.get("n_layer"),
            "threads": self.threads,
            "memory_bytes": self.memory_bytes(),
        }

    def memory_bytes(self) -> int:
        """Weights (the file, mapped) plus this instance's f16 KV cache for its whole context."""
        import llama_cpp

        model = self.llm._model.model
        n_embd, n_head = (
            llama_cpp.llama_model_n_embd(model),
            max(1, llama_cpp.llama_model_n_head(model)),
        )
        kv_dim = n_embd // n_head * llama_cpp.llama_model_n_head_kv(model)
        kv = 2 * llama_cpp.llama_model_n_layer(model) * self.n_ctx * kv_dim * 2
        return self.path.stat().st_size + kv


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _backend(llama_cpp: Any) -> str:
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    for name in ("CUDA", "Metal", "Vulkan", "ROCm", "SYCL"):
        if name.upper() in info.upper() and llama_cpp.llama_supports_gpu_offload():
            return name
    return "CPU"


def _plan_gpu_layers(request: str, supported: bool, file_bytes: int, n_layer: int) -> int:
    """``auto``: every layer that fits in free GPU memory (all of them → -1); a number: that many; 0: CPU."""
    if request not in {"auto", ""}:
        return int(request)
    if not supported:
        return 0
    free = _free_gpu_bytes()
    if free is None or n_layer <= 0:
        return -1
    per_layer = file_bytes / (n_layer + 1)
    fit = int((free * 0.85 - 512 * 2**20) / per_layer)
    return -1 if fit >= n_layer + 1 else max(0, fit)


def _free_gpu_bytes() -> int | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.split()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


@dataclass
class ScriptedGenerator(Generator):
    """Fake for logic tests: answers with a fixed script, one word per token, with given log-probs."""

    script: str = "It is in [a.py:1-2]."
    logprob: float = -0.1
    delay: float = 0.0  # seconds per token, to exercise cancellation
    name: str = "scripted"
    family: str = "fake"
    n_ctx: int = 4096
    calls: list[list[dict[str, str]]] = field(default_factory=list)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self, messages: Messages, max_tokens: int = 512, cancel: threading.Event | None = None
    ) -> Iterator[Token]:
        self.calls.append([dict(m) for m in messages])
        prompt = self.prompt_tokens(messages)
        if prompt + max_tokens > self.n_ctx:
            raise ContextOverflow(f"prompt {prompt} + answer {max_tokens} > context {self.n_ctx}")
        self.last = GenStats(prompt_tokens=prompt)
        for i, word in enumerate(self.script.split(" ")):
            if i >= max_tokens or (cancel is not None and cancel.is_set()):
                return
            if self.delay:
                time.sleep(self.delay)
            self.last.gen_tokens += 1
            yield Token(word if i == 0 else " " + word, self.logprob)

    def infill(
        self,
        prefix: str,
        suffix: str,
        max_tokens: int = 64,
        cancel: threading.Event | None = None,
        extra: Sequence[tuple[str, str]] = (),
        path: str = "",
    ) -> Iterator[Token]:
        """The script as the middle (the fake has no FIM of its own)."""
        yield from self.stream(
            [{"role": "user", "content": f"{prefix[-200:]}<FIM>{suffix[:200]}"}], max_tokens, cancel
        )


def llama_backend_info() -> dict[str, Any]:
    """llama-cpp-python's version, compute backend and whether it can offload to a GPU."""
    try:
        import llama_cpp
    except ImportError:
        return {"installed": False, "fix": "run ./install.sh (it builds llama-cpp-python)"}
    return {
        "installed": True,
        "version": llama_cpp.__version__,
        "backend": _backend(llama_cpp),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "free_gpu_bytes": _free_gpu_bytes(),
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
    }
