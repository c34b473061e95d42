"""Which transformers model families rim's block-causal layout works with, and why not others.

rim trains with a custom additive 4D mask and explicit `position_ids` (`rim.core.segments`): a family
works if its attention takes that mask as given and its positions come from `position_ids`.
`tests/test_architectures.py` checks the tested families (`TESTED`) one by one; the families in
`REFUSED` cannot work and are refused in one line when the model is loaded or built.
"""

from __future__ import annotations

from typing import Any

from rim.common.errors import RimInputError

TESTED = (
    "gpt2",
    "llama",
    "qwen2",
    "qwen3",
    "mistral",
    "gemma2",
    "gemma3_text",
    "phi3",
    "olmo2",
    "gpt_neox",
    "falcon",
)
"""Model types whose training layout equals inference (tests/test_architectures.py)."""

_NO_MASK = "a recurrent (state-space) model has no attention mask to express the block layout"
_ALIBI = (
    "ALiBi biases attention by token order, not position_ids, so a readout cannot sit "
    "where it sits at inference"
)
REFUSED: dict[str, str] = {
    "bloom": _ALIBI,
    "mpt": _ALIBI,
    "mamba": _NO_MASK,
    "mamba2": _NO_MASK,
    "falcon_mamba": _NO_MASK,
    "rwkv": _NO_MASK,
    "xlstm": _NO_MASK,
    "recurrent_gemma": _NO_MASK,
}
"""Model types that cannot work, with the reason (bloom, mpt, falcon-with-alibi and mamba were
seen to fail the equality test or the forward pass with transformers 5.24)."""


def family(config: Any) -> str:
    """The model family (transformers `model_type`) of a model or config."""
    config = getattr(config, "config", config)
    return str(getattr(config, "model_type", None) or type(config).__name__)


def check_family(config: Any) -> None:
    """Raise `RimInputError` (one line naming the family and why) for a family that cannot
    train with rim's block-causal mask and position ids."""
    config = getattr(config, "config", config)
    name = family(config)
    reason = REFUSED.get(name)
    if reason is None and getattr(config, "alibi", False):
        reason, name = _ALIBI, f"{name} with alibi"
    if reason is not None:
        raise RimInputError(f"model family {name} is not supported: {reason}", source="model")


def attention_window(config: Any) -> int | None:
    """The sliding-window length of the model's windowed layers (None without any). rim's 4D mask
    replaces the model's own, window included, so training layouts must fit in the window."""
    config = getattr(config, "config", config)
    window = getattr(config, "sliding_window", None)
    if not isinstance(window, int) or getattr(config, "use_sliding_window", None) is False:
        return None
    types = getattr(config, "layer_types", None)
    if types is not None and "sliding_attention" not in types:
        return None
    return window


def check_window(config: Any, needed: int, origin: str | None = None) -> None:
    """Refuse a training layout of `needed` positions that a sliding window would cut: rim's mask
    does not apply the window, inference would (query i sees keys j with i - j < window)."""
    window = attention_window(config)
    if window is not None and needed > window:
        raise RimInputError(
            f"model family {family(config)} attends within a sliding window of {window} "
            f"positions, and this training layout needs {needed}: rim's block-causal mask "
            f"cannot apply the window (shorten the examples or method.blocks)",
            source=origin or "model",
        )
