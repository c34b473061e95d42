"""The training losses, with the LM head run only where something is learnt.

Only the positions with a label (`labels != IGNORE`: the readouts, a chain, an answer) carry a
loss, so the model's body runs over every position and the LM head only over those: the forward
gets `logits_to_keep` as the boolean [batch, seq] mask of the labelled positions (transformers
5.x: the model gathers the final hidden states there and returns logits [N, vocab], with its own
output head and whatever the family applies after it: Gemma 2's soft-capping, Cohere's and
Granite's logit scales). The loss is computed from those logits in float32. Loss and gradients
are those of the full logits (the positions without a label contribute zero to both); only the
order of a few sums differs.

The call goes through the model as the trainer holds it (DDP, PEFT/LoRA with a wrapped or
trainable-rows head, tied embeddings), so nothing of the wrapper is bypassed. A family whose
forward does not take a mask for `logits_to_keep` gets the full logits (`full_head`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from rim.core.segments import IGNORE, weighted_loss

_reference = {"on": False}


@contextmanager
def full_logits() -> Iterator[None]:
    """Within the block, every loss computes the logits of every position and the loss as it
    did before the head was restricted: the reference the equality tests compare against."""
    before = _reference["on"]
    _reference["on"] = True
    try:
        yield
    finally:
        _reference["on"] = before


def full_head(model: torch.nn.Module) -> bool:
    """True if the loss must compute the logits of every position: the reference path is on, or
    the model's forward does not take a boolean mask for `logits_to_keep`."""
    if _reference["on"]:
        return True
    cls: type = type(inner_model(model))  # as `type`: mypy takes no `type[Module]` for a hashable key
    return not _keeps_masked(cls)


def inner_model(model: torch.nn.Module) -> torch.nn.Module:
    """The causal LM inside any DDP and PEFT wrapper (where a method's own modules live)."""
    inner: Any = getattr(model, "module", model)
    if hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    return inner


@functools.cache
def _keeps_masked(cls: type[torch.nn.Module]) -> bool:
    """Whether the forward of `cls` slices its hidden states with transformers'
    `slice_logits_to_keep` (which takes a boolean [batch, seq] mask)."""
    try:
        source = inspect.getsource(cls.forward)
    except (OSError, TypeError):
        return False
    return "logits_to_keep" in inspect.signature(cls.forward).parameters and "slice_logits_to_keep" in source


def supervised_forward(model: torch.nn.Module, keep: torch.Tensor, **inputs) -> tuple[Any, torch.Tensor]:
    """The model's output on `inputs` and the logits [N, vocab] of the N positions where `keep`
    ([batch, seq] bool) is True, in row-major order: the body over every position, the head only
    at those (the output's own `logits` are those N rows, or every position's on the full path)."""
    if full_head(model):
        out = model(**inputs)
        return out, out.logits[keep]
    out = model(**inputs, logits_to_keep=keep)
    if out.logits.shape[:-1] != (int(keep.sum()),):
        raise RuntimeError(
            f"{type(inner_model(model)).__name__} returned logits of shape "
            f"{tuple(out.logits.shape)} for {int(keep.sum())} kept positions"
        )
    return out, out.logits


def supervised_logits(model: torch.nn.Module, keep: torch.Tensor, **inputs) -> torch.Tensor:
    """Logits [N, vocab] of the N positions where `keep` ([batch, seq] bool) is True
    (`supervised_forward`)."""
    return supervised_forward(model, keep, **inputs)[1]


def weighted_readout_loss(
    model: torch.nn.Module,
    inputs: dict[str, torch.Tensor],
    labels: torch.Tensor,
    weights: torch.Tensor,
    examples: int | None = None,
) -> torch.Tensor:
    """`segments.weighted_loss` (sum of per-token weighted NLL over the examples of the batch)
    of the model's forward on `inputs`, with the head only at the labelled positions."""
    if _reference["on"]:
        return weighted_loss(model(**inputs).logits, labels, weights, examples)
    keep = labels != IGNORE
    logits = supervised_logits(model, keep, **inputs)
    nll = torch.nn.functional.cross_entropy(logits.float(), labels[keep], reduction="none")
    return (nll * weights[keep]).sum() / (examples or labels.shape[0])


def mean_readout_loss(model: torch.nn.Module, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
    """Mean token NLL over the labelled positions of the model's forward on `inputs` (Coconut's
    loss), with the head only at those positions."""
    if _reference["on"]:
        logits = model(**inputs).logits
        return torch.nn.functional.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE
        )
    keep = labels != IGNORE
    logits = supervised_logits(model, keep, **inputs)
    return torch.nn.functional.cross_entropy(logits.float(), labels[keep])
