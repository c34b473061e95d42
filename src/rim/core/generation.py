"""Greedy decoding: one left-padded prefill over the prompts, then one token at a time with a KV cache."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from rim.core.losses import inner_model


@dataclass
class Generation:
    """Generated answer ids per prompt, and how long the batch took."""

    ids: list[list[int]]
    ttft_s: float
    total_s: float
    forward_passes: int


@torch.inference_mode()
def greedy_generate(
    model: PreTrainedModel,
    prompts: list[list[int]],
    pad_id: int,
    eos_id: int,
    max_new_tokens: int,
    ignore_eos: bool = False,
) -> Generation:
    """Greedy decoding of a batch of prompts (left-padded) with a KV cache, until EOS.

    Position ids count only real tokens, so a left-padded row gets the same positions as the
    prompt alone. With `ignore_eos`, exactly `max_new_tokens` are generated (for benchmarks
    on untrained models).
    """
    if ignore_eos:
        eos_id = -1
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    start = time.perf_counter()
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    token = out.logits[:, -1].argmax(-1)
    sync(device)
    ttft = time.perf_counter() - start
    rows, passes = continue_greedy(model, out, token, mask, positions[:, -1:] + 1, eos_id, max_new_tokens)
    sync(device)
    return Generation(rows, ttft, time.perf_counter() - start, 1 + passes)


@torch.inference_mode()
def greedy_after_prefixes(
    model: PreTrainedModel,
    prompts: list[list[int]],
    cuts: list[int],
    pad_id: int,
    eos_id: int,
    max_new_tokens: int,
) -> list[Generation]:
    """Greedy answers after several prefixes of the same prompts, from one prefill.

    `cuts[i]` tokens are dropped from the end of every prompt for the i-th answer (0: the whole
    prompt), e.g. the last K-k memory blocks to read the answer after block k. The prompts are
    prefilled once; each answer decodes on the KV cache cropped to its prefix, longest prefix
    first, so no position of the prompt is computed twice. `ttft_s` of the first answer is the
    prefill; every `total_s` counts from the start.
    """
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    width = ids.shape[1]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ends = [width - cut for cut in cuts]
    start = time.perf_counter()
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=torch.tensor([end - 1 for end in ends], device=device),
    )
    cache = returned_cache(out)
    sync(device)
    ttft = time.perf_counter() - start
    results: dict[int, Generation] = {}
    for i in sorted(range(len(cuts)), key=lambda i: -ends[i]):  # crop the cache ever shorter
        extra = cache.get_seq_length() - ends[i]
        if extra > 0:
            cache.crop(-extra)  # a negative length drops that many positions (all versions)
        token = out.logits[:, i].argmax(-1)
        rows, passes = continue_greedy(
            model,
            {"past_key_values": cache},
            token,
            mask[:, : ends[i]],
            positions[:, ends[i] - 1 : ends[i]] + 1,
            eos_id,
            max_new_tokens,
        )
        sync(device)
        results[i] = Generation(rows, ttft, time.perf_counter() - start, passes + 1)
    return [results[i] for i in range(len(cuts))]


def continue_greedy(
    model: PreTrainedModel,
    out,
    token: torch.Tensor,
    mask: torch.Tensor,
    next_pos: torch.Tensor,
    eos_id: int,
    max_new_tokens: int,
) -> tuple[list[list[int]], int]:
    """Greedy decoding on the KV cache of `out`, from the already chosen first `token` [B].

    `mask` covers the cached columns, `next_pos` [B, 1] is the position of `token`. Returns the
    generated rows cut before EOS, and the number of forward passes run.
    """
    cache_arg = cache_keyword(model)
    generated, done, passes = [token], token == eos_id, 0
    while len(generated) < max_new_tokens and not bool(done.all()):
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = model(
            input_ids=token[:, None],
            attention_mask=mask,
            position_ids=next_pos,
            use_cache=True,
            **{cache_arg: returned_cache(out)},
        )
        passes += 1
        token = out.logits[:, -1].argmax(-1).masked_fill(done, eos_id)
        generated.append(token)
        done = done | (token == eos_id)
        next_pos = next_pos + 1
    rows = torch.stack(generated, dim=1).tolist()
    return [r[: r.index(eos_id)] if eos_id in r else r for r in rows], passes


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids [B, width] and their 0/1 attention mask."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, width - len(p) :] = torch.tensor(p)
        mask[b, width - len(p) :] = 1
    return ids, mask


def cache_keyword(model: PreTrainedModel) -> str:
    """Name of the KV-cache argument of the model inside any DDP or PEFT wrapper: `cache`
    (transformers >= 5.2x) or `past_key_values`."""
    parameters = inspect.signature(inner_model(model).forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def returned_cache(out):
    """The KV cache a forward pass returned, under either name."""
    cache = out.get("cache")
    return out.get("past_key_values") if cache is None else cache


def sync(device: torch.device) -> None:
    """Wait for the device, so that wall-clock timings are right on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
