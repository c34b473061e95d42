"""The central test: a packed training sequence computes exactly what inference computes.

For every readout of a packed (padded, batched) training sequence, the logits equal those of
the plain causal sequence `question + blocks 1..t + readout`; the memory blocks' hidden
states equal those of the inference prompt `question + blocks`.
"""

import pytest
import torch
from helpers import ARCHS, DEVICE, DTYPE, RECORDS, TOL, on_device, tiny_model, tiny_tokenizer

from rim.core.encoding import encode
from rim.core.segments import collate, pack
from rim.methods import METHODS, make_method
from rim.models.modeling import special_ids


def forward(model, batch):
    batch = on_device(batch)
    with torch.no_grad():
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
            output_hidden_states=True,
        )


def plain(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids], device=DEVICE), output_hidden_states=True)


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize(
    "method_name,stage,progress",
    [
        ("rim", "stage1", 0.0),
        ("rim", "stage1", 0.5),
        ("rim", "stage2", 0.0),
        ("pause", "stage2", 0.0),
        ("nocot", "stage2", 0.0),
        ("cot", "stage2", 0.0),
    ],
)
def test_readout_logits_equal_plain_causal_sequence(arch, method_name, stage, progress):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok)
    special = special_ids(tok)
    blocks = {
        k: v
        for k, v in {"blocks": 3, "block_size": 2}.items()
        if k in METHODS[method_name].Config.model_fields
    }
    method = make_method(method_name, special, **blocks)
    examples = [encode(r, tok) for r in RECORDS]
    layouts = [method.layout(ex, stage, progress) for ex in examples]
    packed = [pack(segs) for segs in layouts]
    batch = collate(packed, special.pad, DTYPE)
    assert len({len(p.input_ids) for p in packed}) > 1, "the batch must contain padding"
    out = forward(model, batch)

    checked = 0
    for b, (ex, segs, p) in enumerate(zip(examples, layouts, packed)):
        for s, anchor, n_blocks in p.readouts:
            seg = segs[s]
            context = method.prompt(ex.question, n_blocks) if n_blocks else list(ex.question)
            ref = plain(model, context + list(seg.ids)).logits[0]
            start = sum(len(x.ids) for x in segs[:s])
            packed_rows = [anchor, *range(start, start + len(seg.ids))]
            plain_rows = list(range(len(context) - 1, len(context) + len(seg.ids)))
            torch.testing.assert_close(out.logits[b, packed_rows], ref[plain_rows], atol=TOL, rtol=0)
            # the labels at those rows are the readout tokens then the end token
            assert batch["labels"][b, packed_rows].tolist() == [*seg.ids, special.eos]
            checked += 1
    assert checked >= len(RECORDS)


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_block_hidden_states_equal_inference_prompt(arch, stage):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok, seed=1)
    special = special_ids(tok)
    method = make_method("rim", special, blocks=3, block_size=2)
    examples = [encode(r, tok) for r in RECORDS]
    layouts = [method.layout(ex, stage, 0.0) for ex in examples]
    batch = collate([pack(s) for s in layouts], special.pad, DTYPE)
    out = forward(model, batch)
    for b, (ex, segs) in enumerate(zip(examples, layouts)):
        n_blocks = sum(seg.kind == "block" for seg in segs)
        prompt = method.prompt(ex.question, n_blocks)
        ref = plain(model, prompt)
        n = len(prompt)  # question + blocks come first in the packed layout
        for layer, (got, want) in enumerate(zip(out.hidden_states, ref.hidden_states)):
            torch.testing.assert_close(got[b, :n], want[0], atol=TOL, rtol=0, msg=f"layer {layer}")


def test_positions_and_mask_follow_the_rules():
    tok = tiny_tokenizer()
    special = special_ids(tok)
    method = make_method("rim", special, blocks=2, block_size=2)
    ex = encode(RECORDS[0], tok)
    segs = method.layout(ex, "stage2", 0.0)
    p = pack(segs)
    q = len(ex.question)
    block = 4
    # question 0..q-1, blocks contiguous after it
    assert p.position_ids[: q + 2 * block] == list(range(q + 2 * block))
    # answer after block 1 continues after block 1; answer after block 2 after block 2
    a = len(ex.answer)
    first = q + 2 * block
    assert p.position_ids[first : first + a] == list(range(q + block, q + block + a))
    assert p.position_ids[first + a : first + 2 * a] == list(range(q + 2 * block, q + 2 * block + a))
    mask = collate([p], special.pad)["attention_mask"][0, 0]
    blocked = torch.finfo(mask.dtype).min
    # the answer after block 1 sees the question and block 1, not block 2 or the other answer
    row = first
    assert (mask[row, : q + block] == 0).all()
    assert (mask[row, q + block : q + 2 * block] == blocked).all()
    assert (mask[row, first + a :] == blocked).all()
    # blocks never see readouts
    assert (mask[q : q + 2 * block, first:] == blocked).all()


def test_padding_rows_are_never_fully_blocked():
    tok = tiny_tokenizer()
    special = special_ids(tok)
    method = make_method("rim", special, blocks=2, block_size=2)
    batch = collate([pack(method.layout(encode(r, tok), "stage2", 0.0)) for r in RECORDS], special.pad)
    mask = batch["attention_mask"][:, 0]
    assert (mask == 0).any(dim=-1).all()
    assert batch["attention_mask"].dtype == torch.float32
