"""Render a model's own chat template (from its GGUF) in a Jinja sandbox.

GGUF files carry their chat template as Jinja source; a hostile file can carry a hostile template
(llama-cpp-python's CVE-2024-34359 was exactly this). Templates are therefore rendered only in
``ImmutableSandboxedEnvironment``: no attribute access to internals, no mutation of passed objects.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from localpilot.errors import ModelCorrupt

#: Used when a GGUF has no template: ChatML, which Qwen and SmolLM2 speak.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _raise(message: str) -> None:
    raise TemplateError(message)


@lru_cache(maxsize=8)
def _compile(source: str) -> Any:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env.from_string(source)


def render(
    template: str | None,
    messages: Sequence[dict[str, str]],
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """The prompt text for ``messages`` exactly as the model was trained to see it."""
    try:
        return str(
            _compile(template or CHATML).render(
                messages=list(messages),
                bos_token=bos_token,
                eos_token=eos_token,
                add_generation_prompt=add_generation_prompt,
            )
        )
    except TemplateError as exc:
        raise ModelCorrupt(f"the model's chat template cannot be rendered safely: {exc}") from exc
