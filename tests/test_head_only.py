"""The LM head runs only at the labelled positions (`rim.core.losses`): loss and every gradient equal
those of the full logits (`losses.full_logits`, the path every loss took before), for every
method and stage, GPT-2 (tied head) and Llama (untied), padded and packed, with LoRA."""

from __future__ import annotations

import pytest
import torch
from helpers import FAMILIES, RECORDS, tiny_model, tiny_tokenizer

from rim.core import losses
from rim.core.encoding import encode
from rim.core.segments import IGNORE
from rim.methods import make_method
from rim.models.modeling import add_lora, build_model, special_ids

# (method, its settings, stage, fraction of the stage)
CASES = [
    ("rim", {"blocks": 2, "block_size": 2}, "stage1", 0.3),
    ("rim", {"blocks": 2, "block_size": 2}, "stage2", 0.0),
    ("nocot", {}, "baseline", 0.0),
    ("cot", {}, "baseline", 0.0),
    ("pause", {"blocks": 3, "block_size": 1}, "stage2", 0.0),
    ("coconut", {"thoughts_per_step": 2, "latent_stages": 2}, "coconut0", 0.0),
    ("coconut", {"thoughts_per_step": 2, "latent_stages": 2}, "coconut1", 0.0),
    ("coconut", {"thoughts_per_step": 2, "latent_stages": 2}, "coconut2", 0.0),
]


def _head_rows(model) -> list[int]:
    """Records the rows (positions) every call of the output head computes."""
    rows: list[int] = []
    model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: rows.append(out.shape[:-1].numel())
    )
    return rows


def _loss_and_grads(model, method, batch, reference: bool):
    model.zero_grad(set_to_none=True)
    if reference:
        with losses.full_logits():
            loss = method.loss(model, batch)
    else:
        loss = method.loss(model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _assert_equal(old, new, rel=1e-6):
    (old_loss, old_grads), (new_loss, new_grads) = old, new
    assert torch.isfinite(old_loss) and old_loss > 0
    assert new_loss.item() == pytest.approx(old_loss.item(), rel=rel)
    assert old_grads.keys() == new_grads.keys() and old_grads
    for name, g in old_grads.items():
        diff = (new_grads[name] - g).norm().item()
        assert diff <= rel * g.norm().item() + 1e-12, (name, diff, g.norm().item())


def _compare(model, method, batch) -> tuple[list[int], list[int]]:
    """Both paths' loss and gradients agree; returns the head rows of each (old, new)."""
    rows = _head_rows(model)
    old = _loss_and_grads(model, method, batch, reference=True)
    old_rows = list(rows)
    rows.clear()
    new = _loss_and_grads(model, method, batch, reference=False)
    _assert_equal(old, new)
    return old_rows, list(rows)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("name,settings,stage,fraction", CASES)
def test_head_only_equals_full_logits(arch, packed, name, settings, stage, fraction):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok).double().float()  # fp32 whatever the test dtype
    method = make_method(name, special_ids(tok), **settings)
    if packed and not method.supports_packing:
        pytest.skip(f"{name} does not pack")
    examples = [encode(r, tok) for r in RECORDS] * 2
    options = {"pack_length": 60} if packed else {}
    batch = method.collate(examples, stage, fraction, **options)
    if packed:
        assert batch["input_ids"].shape[0] < len(examples)  # rows hold several examples
    old_rows, new_rows = _compare(model, method, batch)
    labelled = int((batch["labels"] != IGNORE).sum())
    # the last head call is the scored one (Coconut's thought passes keep one position each)
    assert new_rows[-1] == labelled < old_rows[-1]
    if name != "coconut":
        assert old_rows == [batch["input_ids"].numel()]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_tested_family_takes_the_mask_and_computes_the_same(family):
    tok = tiny_tokenizer()
    model = tiny_model(family, tok).float()
    assert not losses.full_head(model)  # the family takes the boolean mask
    examples = [encode(r, tok) for r in RECORDS] * 2
    for name, settings, stage, options in [
        ("rim", {"blocks": 2, "block_size": 2}, "stage2", {"pack_length": 60}),
        ("coconut", {"thoughts_per_step": 1, "latent_stages": 2}, "coconut1", {}),
    ]:
        method = make_method(name, special_ids(tok), **settings)
        batch = method.collate(examples, stage, 0.0, **options)
        old_rows, new_rows = _compare(model, method, batch)
        assert new_rows[-1] == int((batch["labels"] != IGNORE).sum()) < old_rows[-1]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize(
    "name,settings,stage",
    [
        ("rim", {"blocks": 2, "block_size": 2}, "stage2"),
        ("coconut", {"thoughts_per_step": 1, "latent_stages": 2}, "coconut1"),
    ],
)
def test_head_only_with_lora_and_trainable_token_rows(arch, name, settings, stage):
    tok = tiny_tokenizer()
    model = add_lora(tiny_model(arch, tok).float(), tok, {"r": 4})
    method = make_method(name, special_ids(tok), **settings)
    batch = method.collate([encode(r, tok) for r in RECORDS], stage, 0.0)
    old = _loss_and_grads(model, method, batch, reference=True)
    new = _loss_and_grads(model, method, batch, reference=False)
    _assert_equal(old, new)
    assert any("lora" in n for n in new[1]) and any("token" in n for n in new[1])


def test_family_post_processing_is_kept():
    """Gemma 2 soft-caps its logits after the head; the head-only path keeps it."""
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = build_model(
        {
            "model_type": "gemma2",
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "intermediate_size": 64,
            "final_logit_softcapping": 0.5,
        },
        tok,
        max_length=256,
        attn_implementation="eager",
    )
    method = make_method("rim", special_ids(tok), blocks=2, block_size=2)
    batch = method.collate([encode(r, tok) for r in RECORDS], "stage2", 0.0)
    keep = batch["labels"] != IGNORE
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
    logits = losses.supervised_logits(model, keep, **inputs)
    assert logits.shape == (int(keep.sum()), len(tok))
    assert logits.abs().max() <= 0.5  # soft-capped
    _compare(model, method, batch)


class _NoMask(torch.nn.Module):
    """A causal LM whose forward takes no `logits_to_keep`."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def forward(self, input_ids, attention_mask, position_ids):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)


def test_a_family_without_masked_logits_to_keep_gets_the_full_logits():
    tok = tiny_tokenizer()
    inner = tiny_model("gpt2", tok).float()
    model = _NoMask(inner)
    assert losses.full_head(model) and not losses.full_head(inner)
    method = make_method("nocot", special_ids(tok))
    batch = method.collate([encode(r, tok) for r in RECORDS], "baseline", 0.0)
    old_rows, new_rows = _compare(model, method, batch)
    assert old_rows == new_rows == [batch["input_ids"].numel()]
    assert method.loss(model, batch).item() == pytest.approx(method.loss(inner, batch).item(), rel=1e-6)
