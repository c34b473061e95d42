"""The weighted loss is each readout's mean token NLL times its weight, averaged over examples."""

import pytest
import torch

from rim.segments import IGNORE, Segment, attention_allowed, collate, pack, pack_rows, weighted_loss


def test_labels_anchor_and_weights():
    segs = [Segment((5, 6, 7), kind="question"),
            Segment((8, 9), sees=(0,), weight=0.5, end_id=1, kind="answer")]
    p = pack(segs)
    assert p.position_ids == [0, 1, 2, 3, 4]
    # the answer's first token is predicted at the question's last token, EOS at its last
    assert p.labels == [IGNORE, IGNORE, 8, 9, 1]
    assert p.weights == pytest.approx([0, 0, 0.5 / 3, 0.5 / 3, 0.5 / 3])


def test_weighted_loss_is_mean_token_nll_times_weight():
    segs = [Segment((5, 6), kind="question"),
            Segment((3,), sees=(0,), weight=2.0, end_id=1, kind="answer")]
    batch = collate([pack(segs), pack(segs)], pad_id=0)
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 10)
    nll = torch.nn.functional.cross_entropy(logits[0, 1:], torch.tensor([3, 1]))
    nll2 = torch.nn.functional.cross_entropy(logits[1, 1:], torch.tensor([3, 1]))
    expected = 2.0 * (nll + nll2) / 2
    assert weighted_loss(logits, batch["labels"], batch["weights"]) == pytest.approx(
        expected.item(), rel=1e-6)


def test_segments_may_only_see_earlier_segments():
    with pytest.raises(ValueError, match="earlier"):
        pack([Segment((1,), sees=(0,))])
    with pytest.raises(ValueError, match="same position"):
        pack([Segment((1,)), Segment((2,), sees=(0,), weight=1, end_id=0),
              Segment((3,), sees=(0,), weight=1, end_id=0)])


def test_packed_rows_give_the_same_loss_and_gradients():
    import torch
    from helpers import RECORDS, tiny_model, tiny_tokenizer

    from rim.encoding import encode
    from rim.methods import make_method
    from rim.modeling import special_ids

    tok = tiny_tokenizer()
    model = tiny_model("gpt2", tok)
    method = make_method("rim", special_ids(tok), blocks=2, block_size=2)
    examples = [encode(r, tok) for r in RECORDS] * 2
    results = []
    for stage, fraction in (("stage1", 0.3), ("stage2", 0.0)):
        for pack_length in (None, 120):
            batch = method.collate(examples, stage, fraction, pack_length=pack_length)
            model.zero_grad()
            loss = method.loss(model, batch)
            loss.backward()
            grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
            results.append((stage, batch["input_ids"].shape[0], loss.item(), grads))
    for (_, rows, loss, grads), (_, packed_rows, packed_loss, packed_grads) in zip(
            results[::2], results[1::2]):
        assert packed_rows < rows  # several examples share a row
        assert packed_loss == pytest.approx(loss, rel=1e-5)
        assert torch.allclose(packed_grads, grads, atol=1e-6, rtol=1e-4)


def test_packed_examples_never_see_each_other():
    a = pack([Segment((1, 2)), Segment((3,), sees=(0,), weight=1.0, end_id=9)])
    b = pack([Segment((4,)), Segment((5, 6), sees=(0,), weight=1.0, end_id=9)])
    (row,) = pack_rows([a, b], budget=10)
    allowed = attention_allowed(row)
    first = len(a.input_ids)
    assert not allowed[first:, :first].any() and not allowed[:first, first:].any()
    assert row.position_ids == a.position_ids + b.position_ids  # positions restart
