"""Experts built from settings: the one place each model is constructed from the user's configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from localpilot.errors import LocalpilotError, ModelNotFound
from localpilot.experts.registry import is_off

if TYPE_CHECKING:
    from localpilot.config import Settings
    from localpilot.experts.embedder import Embedder
    from localpilot.experts.llm import Generator
    from localpilot.experts.reranker import Reranker

FIM_CTX = (
    4096  # the completion instance's context: the whole window, 3 context chunks and the answer fit
)


def embedder(settings: Settings) -> Embedder:
    from localpilot.experts.embedder import SentenceTransformerEmbedder
    from localpilot.experts.registry import resolve_embedder

    spec = resolve_embedder(settings.embedder)
    return SentenceTransformerEmbedder(
        str(spec.path), spec.name, settings.device, settings.batch_size, settings.precision
    )


def reranker(settings: Settings) -> Reranker | None:
    from localpilot.experts.registry import load_reranker

    return load_reranker(settings.reranker, settings.device, settings.precision)


def model_name(settings: Settings, which: str) -> str:
    """The configured model of ``small``, ``big`` or ``fim`` (inline completion)."""
    if which == "fim":
        return fim_model(settings)
    return settings.big_llm if which == "big" else settings.llm


def fim_model(settings: Settings) -> str:
    """``fim_llm``; "auto" is the big model when one is installed in-process (it completes far better), else
    the small one (also with ``llm_url``: the server decides what it serves)."""
    if settings.fim_llm != "auto":
        return settings.fim_llm
    if not settings.llm_url and big_installed(settings):
        return settings.big_llm
    return settings.llm


def generator(settings: Settings, which: str = "small") -> Generator:
    """``small``/``big`` answer chat; ``fim`` is the completion model (``fim_model``) loaded once more for
    inline completion, with its own (smaller) KV cache, so a chat answer never evicts the completion state.
    In-process GGUF, or the configured OpenAI-compatible server."""
    name = model_name(settings, which)
    n_ctx = min(settings.llm_ctx, FIM_CTX) if which == "fim" else settings.llm_ctx
    if settings.llm_url:
        from localpilot.experts.remote import OpenAIGenerator

        return OpenAIGenerator(settings.llm_url, name, n_ctx=n_ctx)
    from localpilot.experts.llm import LlamaCppGenerator
    from localpilot.experts.registry import resolve_llm

    if is_off(name):
        raise ModelNotFound(f"no {which} model is configured")
    spec = resolve_llm(name, settings.models_dir)
    return LlamaCppGenerator(
        spec.path,
        spec.name,
        spec.family,
        n_ctx=n_ctx,
        gpu_layers=settings.gpu_layers,
        threads=settings.threads,
        cache_dir=settings.cache_dir,
        background=which == "fim",
    )


def big_installed(settings: Settings) -> bool:
    """A bigger model is configured, installed (or served) and different from the small one."""
    name = settings.big_llm
    if is_off(name) or name == settings.llm:
        return False
    if settings.llm_url:
        return True
    from localpilot.experts.registry import resolve_llm

    try:
        return resolve_llm(name, settings.models_dir).installed
    except LocalpilotError:
        return False
