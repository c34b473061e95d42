"""Batched, left-padded greedy decoding with a KV cache equals one-by-one decoding without it."""

import pytest
import torch
from helpers import ARCHS, DEVICE, RECORDS, tiny_model, tiny_tokenizer

from rim.core.encoding import encode
from rim.core.generation import greedy_generate
from rim.methods import make_method
from rim.models.modeling import special_ids


def no_cache_greedy(model, prompt, eos, n):
    ids = list(prompt)
    out = []
    with torch.no_grad():
        for _ in range(n):
            token = int(model(input_ids=torch.tensor([ids], device=DEVICE)).logits[0, -1].argmax())
            out.append(token)
            if token == eos:
                break
            ids.append(token)
    return out[:-1] if out and out[-1] == eos else out


@pytest.mark.parametrize("arch", list(ARCHS))
def test_batched_cached_decoding_equals_unbatched_uncached(arch):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok, seed=3)
    special = special_ids(tok)
    method = make_method("rim", special, blocks=3, block_size=2)
    prompts = [method.prompt(encode(r, tok).question) for r in RECORDS]
    assert len({len(p) for p in prompts}) > 1, "prompts of different lengths need padding"
    gen = greedy_generate(model, prompts, special.pad, special.eos, max_new_tokens=6)
    expected = [no_cache_greedy(model, p, special.eos, 6) for p in prompts]
    assert gen.ids == expected
    assert gen.forward_passes <= 6 and gen.ttft_s > 0


def test_prompt_text_tokenises_to_the_same_ids():
    tok = tiny_tokenizer()
    method = make_method("rim", special_ids(tok), blocks=3, block_size=2)
    for r in RECORDS:
        ids = method.prompt(encode(r, tok).question)
        assert tok(r.question + "<b><m><m></b>" * 3).input_ids == ids


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_block_from_one_prefill_equals_one_run_per_block(arch):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok, seed=5)
    method = make_method("rim", special_ids(tok), blocks=3, block_size=2)
    questions = [encode(r, tok).question for r in RECORDS]  # of different lengths: padded
    every = method.generate_every_block(model, questions, max_new_tokens=5)
    assert len(every) == 3
    for k, gen in enumerate(every, start=1):
        alone = method.generate(model, questions, 5, blocks=k)
        assert gen.ids == alone.ids
        unbatched = [no_cache_greedy(model, method.prompt(q, k), method.special.eos, 5) for q in questions]
        assert gen.ids == unbatched
