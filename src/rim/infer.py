"""Inference: one left-padded prefill over the prompt, then greedy decoding with a KV cache.

The trained model is an ordinary causal LM. A RiM prompt is the question followed by K memory
blocks (`<b><m><m></b>` ...); only the answer is decoded.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rim.encode import cot_answer, decode_answer, encode
from rim.errors import RimInputError
from rim.methods import Method, make_method
from rim.modeling import special_ids

RUN_INFO = "rim.json"


@dataclass
class Generation:
    """Generated answer ids per prompt, and how long the batch took."""

    ids: list[list[int]]
    ttft_s: float
    total_s: float
    forward_passes: int


@torch.inference_mode()
def greedy_generate(model: PreTrainedModel, prompts: list[list[int]], pad_id: int, eos_id: int,
                    max_new_tokens: int) -> Generation:
    """Greedy decoding of a batch of prompts (left-padded) with a KV cache, until EOS.

    Position ids count only real tokens, so a left-padded row gets the same positions as the
    prompt alone.
    """
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


@dataclass
class LoadedRun:
    """A trained model with its tokenizer and the method that builds its prompts."""

    model: PreTrainedModel
    tok: PreTrainedTokenizerBase
    method: Method
    info: dict

    @property
    def blocks(self) -> int:
        """K, the number of memory blocks of the prompt (0 for methods without blocks)."""
        return int(self.info.get("blocks", 0)) if self.info["method"] in ("rim", "pause") else 0

    def prompt(self, question: str, blocks: int | None = None) -> list[int]:
        """Prompt ids for a question, with `blocks` memory blocks (default: K)."""
        from rim.data.records import Record

        ex = encode(Record(question, (), "?"), self.tok)
        return self.method.prompt(ex.question, blocks)

    def answers(self, questions: list[str], blocks: int | None = None,
                batch_size: int = 64) -> list[str]:
        """Greedy answers to `questions` (CoT chains are cut to their answer)."""
        texts: list[str] = []
        for i in range(0, len(questions), batch_size):
            prompts = [self.prompt(q, blocks) for q in questions[i:i + batch_size]]
            gen = greedy_generate(self.model, prompts, self.tok.pad_token_id,
                                  self.tok.eos_token_id, self.info.get("max_new_tokens", 32))
            texts.extend(self.answer_text(g) for g in gen.ids)
        return texts

    def answer_text(self, ids: list[int]) -> str:
        """Decode generated ids into the answer text."""
        text = decode_answer(self.tok, ids)
        return cot_answer(text) if self.info["method"] == "cot" else text


def load_run(path: str | Path, device: str | None = None) -> LoadedRun:
    """Load a run directory (its `model/`) or a model directory written by `rim train`."""
    path = Path(path)
    model_dir = path / "model" if (path / "model" / RUN_INFO).is_file() else path
    info_file = model_dir / RUN_INFO
    if not info_file.is_file():
        raise RimInputError(f"not a rim run or model directory (no {RUN_INFO})", source=str(path))
    info = json.loads(info_file.read_text())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
    method = make_method(info["method"], special_ids(tok), info.get("blocks", 1),
                         info.get("block_size", 2))
    return LoadedRun(model, tok, method, info)
