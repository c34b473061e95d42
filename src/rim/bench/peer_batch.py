"""The same model and the same batch on both sides of `rim bench peers`: the GPT-2 config the
peer rebuilds, rim's special ids under the peer's names, random examples shaped like GSM8k-Aug,
and those examples in the peer's data format."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import chain
from typing import Any

from transformers import PreTrainedModel

from rim.bench.common import build_method
from rim.bench.settings import PeersSettings
from rim.core.encoding import Example, chain_after_steps
from rim.core.segments import SpecialIds
from rim.methods import Method

GPT2_KEYS = (
    "vocab_size",
    "n_positions",
    "n_embd",
    "n_layer",
    "n_head",
    "n_inner",
    "activation_function",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "layer_norm_epsilon",
    "initializer_range",
    "scale_attn_weights",
    "scale_attn_by_inverse_layer_idx",
    "reorder_and_upcast_attn",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
)
"""The GPT-2 config fields the peer's model is built from (known to transformers 4.x and 5.x)."""


def gpt2_config(model: PreTrainedModel) -> dict[str, Any]:
    """GPT2Config keyword arguments rebuilding `model`'s architecture on the peer's side."""
    config = model.config.to_dict()
    kwargs = {k: config[k] for k in GPT2_KEYS if k in config}
    kwargs.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)  # as `set_dropout(model, 0.0)`
    kwargs["attn_implementation"] = getattr(model.config, "_attn_implementation", None) or "eager"
    return kwargs


def peer_special(special: SpecialIds) -> dict[str, int]:
    """rim's special ids under Coconut's names: `<b>` is its start, `<m>` its latent, `</b>` its end."""
    return {
        "start": special.open,
        "latent": special.memory,
        "end": special.close,
        "eos": special.eos,
        "pad": special.pad,
    }


def random_examples(n: int, s: PeersSettings, plain: tuple[int, int], rng: random.Random) -> list[Example]:
    """`n` examples of random plain tokens: questions of up to `question_tokens`, 1 to
    latent_stages + 1 steps (so some are shorter than a stage, some longer than the last), then
    a separator and a 1-3 token answer. The first plain id is the separator (` ####`)."""
    lo, hi = plain[0] + 1, plain[1]

    def ids(k: int) -> tuple[int, ...]:
        return tuple(rng.randrange(lo, hi) for _ in range(k))

    examples = []
    for _ in range(n):
        question = ids(rng.randint(max(2, s.question_tokens // 2), s.question_tokens))
        steps = tuple(
            ids(rng.randint(max(1, s.step_tokens // 2), s.step_tokens))
            for _ in range(rng.randint(1, s.latent_stages + 1))
        )
        answer = ids(rng.randint(1, 3))
        examples.append(Example(question, steps, answer, (*chain.from_iterable(steps), plain[0], *answer)))
    return examples


def peer_rows(examples: Sequence[Example], special: SpecialIds) -> list[dict[str, Any]]:
    """The examples as Coconut's `get_dataset` tokenises them: question, steps, and the rest of
    the chain (` #### answer`) with EOS as its answer."""
    rows = []
    for ex in examples:
        steps = [list(s) for s in ex.steps]
        rest = list(chain_after_steps(ex, len(ex.steps)))
        rows.append({"question": list(ex.question), "steps": steps, "answer": [*rest, special.eos]})
    return rows


def rim_coconut(special: SpecialIds, s: PeersSettings, c: int) -> Method:
    """rim's Coconut with the peer's curriculum: `latent_stages`, c, and the final stage."""
    return build_method(
        "coconut", special, latent_stages=s.latent_stages, thoughts_per_step=c, final_stage=True
    )


def stages(s: PeersSettings) -> list[tuple[str, int]]:
    """(rim's stage, the peer's scheduled stage): 0 .. latent_stages, then the final stage (the
    peer's `scheduled_stage > max_latent_stage`)."""
    return [*((f"coconut{k}", k) for k in range(s.latent_stages + 1)), ("coconut-final", s.latent_stages + 1)]
