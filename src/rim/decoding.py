"""Greedy decoding: one left-padded prefill over the prompts, then one token at a time with a KV cache."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel


@dataclass
class Generation:
    """Generated answer ids per prompt, and how long the batch took."""

    ids: list[list[int]]
    ttft_s: float
    total_s: float
    forward_passes: int


@torch.inference_mode()
def greedy_generate(model: PreTrainedModel, prompts: list[list[int]], pad_id: int, eos_id: int,
                    max_new_tokens: int, ignore_eos: bool = False) -> Generation:
    """Greedy decoding of a batch of prompts (left-padded) with a KV cache, until EOS.

    Position ids count only real tokens, so a left-padded row gets the same positions as the
    prompt alone. With `ignore_eos`, exactly `max_new_tokens` are generated (for benchmarks
    on untrained models).
    """
    if ignore_eos:
        eos_id = -1
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, width - len(p):] = torch.tensor(p)
        mask[b, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    cache_arg = cache_keyword(model)
    start = time.perf_counter()
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                logits_to_keep=1)
    token = out.logits[:, -1].argmax(-1)
    _sync(device)
    ttft = time.perf_counter() - start
    passes = 1
    generated = [token]
    done = token == eos_id
    next_pos = positions[:, -1:] + 1
    while len(generated) < max_new_tokens and not bool(done.all()):
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=next_pos,
                    use_cache=True, **{cache_arg: returned_cache(out)})
        passes += 1
        token = out.logits[:, -1].argmax(-1).masked_fill(done, eos_id)
        generated.append(token)
        done = done | (token == eos_id)
        next_pos = next_pos + 1
    _sync(device)
    total = time.perf_counter() - start
    rows = torch.stack(generated, dim=1).tolist()
    return Generation([_until(r, eos_id) for r in rows], ttft, total, passes)


def cache_keyword(model: PreTrainedModel) -> str:
    """Name of the KV-cache argument: `cache` (transformers >= 5.2x) or `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def returned_cache(out):
    """The KV cache a forward pass returned, under either name."""
    cache = out.get("cache")
    return out.get("past_key_values") if cache is None else cache


def _until(row: list[int], eos_id: int) -> list[int]:
    return row[: row.index(eos_id)] if eos_id in row else row


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
