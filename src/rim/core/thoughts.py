"""Continuous thoughts (Coconut, Hao et al. 2024; CODI, Shen et al. 2025): the model's last hidden
state at one position, fed back (through a projection, for CODI) as the input embedding of the
next, pass after pass on one KV cache. A thought is not a token: it only exists inside a forward
pass. Gradients flow through the whole chain.

Training batch (`collate_thoughts`). Columns are aligned so that thought i is the same column in
every row:

    [ pad.. question <b> | n thought columns | </b> text .. pad ]
      left-padded prefix   n thoughts          right-padded suffix

The attention mask is 2D (0 on padding) and position ids count only real tokens, so a row gets
the positions it would have alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from transformers import PreTrainedModel

from rim.core.generation import Generation, cache_keyword, continue_greedy, left_pad, returned_cache, sync
from rim.core.losses import inner_model
from rim.core.segments import IGNORE, SpecialIds


@dataclass(frozen=True)
class ThoughtSequence:
    """One training sequence: `prefix` (question + `<b>`), `thoughts` continuous thoughts, then
    `</b>` and the scored `text` (EOS is predicted after it)."""

    prefix: tuple[int, ...]
    thoughts: int
    text: tuple[int, ...]


@dataclass
class Thinking:
    """The result of the prefix and thought passes: the last model output (its cache holds every
    column before the last thought), the hidden states fed back as thoughts ([batch, hidden]
    each; the last one not fed yet: `then` feeds it together with what follows) and the number
    of forward passes so far."""

    out: object
    thoughts: list[torch.Tensor]
    passes: int

    @property
    def pending(self) -> int:
        """Columns the `then` pass feeds before its tokens: 1 (the last thought) or 0."""
        return 1 if self.thoughts else 0

    def then(
        self, model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor
    ) -> dict:
        """The model inputs of the pass that feeds the last thought and then the tokens `ids`
        [B, T] (`</b>` and the text): one pass instead of two. Its outputs cover `pending` + T
        columns; `mask` and `positions` cover every column up to the last of `ids`."""
        end = mask.shape[1]
        inner = cast(PreTrainedModel, inner_model(model))  # inside a DDP or PEFT wrapper too
        embeds = inner.get_input_embeddings()(ids)
        if self.thoughts:
            embeds = torch.cat([self.thoughts[-1][:, None].to(embeds.dtype), embeds], dim=1)
        return {
            "inputs_embeds": embeds,
            "attention_mask": mask,
            "position_ids": positions[:, end - embeds.shape[1] : end],
            "use_cache": True,
            cache_keyword(model): returned_cache(self.out),
        }


def think(
    model: PreTrainedModel,
    prefix_ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    n: int,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Thinking:
    """Prefill the left-padded `prefix_ids` [B, P], then compute `n` thoughts on the KV cache.

    Thought i sits at column P+i: its input embedding is the last hidden state of column P+i-1
    (through `project` where given: CODI's projection). The first n-1 thoughts get a pass each;
    the last is fed by `Thinking.then`, in the pass of the tokens that follow it. These passes
    run the output head on no position (`logits_to_keep` an empty index): only their hidden
    states and cache are used.
    `mask` and `positions` cover at least the P+n columns (later columns are ignored)."""
    width = prefix_ids.shape[1]
    cache_arg = cache_keyword(model)
    no_logits = torch.empty(0, dtype=torch.long, device=prefix_ids.device)  # these passes' are never read
    out = model(
        input_ids=prefix_ids,
        attention_mask=mask[:, :width],
        position_ids=positions[:, :width],
        use_cache=True,
        output_hidden_states=n > 0,
        logits_to_keep=no_logits,
    )
    thoughts = []
    for col in range(width, width + n):
        state = out.hidden_states[-1][:, -1]
        thoughts.append(project(state) if project is not None else state)
        if col + 1 == width + n:
            break
        out = model(
            inputs_embeds=thoughts[-1][:, None],
            attention_mask=mask[:, : col + 1],
            position_ids=positions[:, col : col + 1],
            use_cache=True,
            output_hidden_states=True,
            logits_to_keep=no_logits,
            **{cache_arg: returned_cache(out)},
        )
    return Thinking(out, thoughts, max(1, n))


def generate_after_thoughts(
    model: PreTrainedModel,
    prompts: list[list[int]],
    n: int,
    special: SpecialIds,
    max_new_tokens: int,
    ignore_eos: bool = False,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Generation:
    """Greedy decoding after `n` thoughts: prefill the left-padded `prompts` (`question <b>`),
    run the thought passes (the last with `</b>`), then decode. `forward_passes` counts every
    pass (the prefill, n - 1 thoughts, last thought + `</b>`, each decoding step); `ttft_s` is
    the time to the first text token."""
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, special.pad)
    ids, mask = ids.to(device), mask.to(device)
    mask = torch.cat([mask, torch.ones_like(mask[:, :1]).expand(-1, n + 1)], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    start = time.perf_counter()
    thinking = think(model, ids, mask, positions, n, project)
    close = torch.full_like(ids[:, :1], special.close)
    out = model(**thinking.then(model, close, mask, positions), logits_to_keep=1)
    token = out.logits[:, -1].argmax(-1)
    sync(device)
    ttft = time.perf_counter() - start
    eos = -1 if ignore_eos else special.eos
    rows, steps = continue_greedy(model, out, token, mask, positions[:, -1:] + 1, eos, max_new_tokens)
    sync(device)
    return Generation(rows, ttft, time.perf_counter() - start, thinking.passes + 1 + steps)


def collate_thoughts(seqs: list[ThoughtSequence], special: SpecialIds) -> dict[str, torch.Tensor]:
    """Lay out sequences with the same number of thoughts as aligned columns (left-padded
    prefixes, thought columns, right-padded `</b>` + text); see the module docstring."""
    n = seqs[0].thoughts
    if any(s.thoughts != n for s in seqs):
        raise ValueError("every sequence of a batch needs the same number of thoughts")
    width = max(len(s.prefix) for s in seqs)
    length = width + n + 1 + max(len(s.text) for s in seqs)
    ids = torch.full((len(seqs), length), special.pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    labels = torch.full((len(seqs), length), IGNORE, dtype=torch.long)
    for b, s in enumerate(seqs):
        suffix = (special.close, *s.text)
        end = width + n + len(suffix)
        ids[b, width - len(s.prefix) : width] = torch.tensor(s.prefix)
        ids[b, width : width + n] = special.memory
        ids[b, width + n : end] = torch.tensor(suffix)
        mask[b, width - len(s.prefix) : end] = 1
        labels[b, width + n : end] = torch.tensor((*s.text, special.eos))
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
        "labels": labels,
        "prefix_len": torch.tensor(width),
        "thoughts": torch.tensor(n),
    }
