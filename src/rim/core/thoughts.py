"""Continuous thoughts (Coconut, Hao et al. 2024): the model's last hidden state at one position,
fed back as the input embedding of the next, pass after pass on one KV cache. A thought is not a
token: it only exists inside a forward pass. Gradients flow through the whole chain."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from rim.core.generation import cache_keyword, returned_cache


@dataclass
class Thinking:
    """The result of the prefix and thought passes: the last model output (its cache holds every
    position so far), the hidden states fed back as thoughts ([batch, hidden] each) and the
    number of forward passes."""

    out: object
    thoughts: list[torch.Tensor]
    passes: int


def think(
    model: PreTrainedModel, prefix_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, n: int
) -> Thinking:
    """Prefill the left-padded `prefix_ids` [B, P], then run `n` thought passes on the KV cache.

    Thought i sits at column P+i: its input embedding is the last hidden state of column P+i-1.
    `mask` and `positions` cover at least the P+n columns (later columns are ignored)."""
    width = prefix_ids.shape[1]
    cache_arg = cache_keyword(model)
    out = model(
        input_ids=prefix_ids,
        attention_mask=mask[:, :width],
        position_ids=positions[:, :width],
        use_cache=True,
        output_hidden_states=n > 0,
        logits_to_keep=1,
    )
    thoughts = []
    for col in range(width, width + n):
        thoughts.append(out.hidden_states[-1][:, -1])
        out = model(
            inputs_embeds=thoughts[-1][:, None],
            attention_mask=mask[:, : col + 1],
            position_ids=positions[:, col : col + 1],
            use_cache=True,
            output_hidden_states=col + 1 < width + n,
            logits_to_keep=1,
            **{cache_arg: returned_cache(out)},
        )
    return Thinking(out, thoughts, 1 + n)
