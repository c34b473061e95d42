"""The weighted loss is each readout's mean token NLL times its weight, averaged over examples;
packed rows and FlexAttention compute what the padded dense layout does."""

import os

import pytest
import torch

from rim.core.segments import IGNORE, Segment, attention_allowed, collate, pack, pack_rows, weighted_loss


def test_labels_anchor_and_weights():
    segs = [
        Segment((5, 6, 7), kind="question"),
        Segment((8, 9), sees=(0,), weight=0.5, end_id=1, kind="answer"),
    ]
    p = pack(segs)
    assert p.position_ids == [0, 1, 2, 3, 4]
    # the answer's first token is predicted at the question's last token, EOS at its last
    assert p.labels == [IGNORE, IGNORE, 8, 9, 1]
    assert p.weights == pytest.approx([0, 0, 0.5 / 3, 0.5 / 3, 0.5 / 3])


def test_weighted_loss_is_mean_token_nll_times_weight():
    segs = [Segment((5, 6), kind="question"), Segment((3,), sees=(0,), weight=2.0, end_id=1, kind="answer")]
    batch = collate([pack(segs), pack(segs)], pad_id=0)
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 10)
    nll = torch.nn.functional.cross_entropy(logits[0, 1:], torch.tensor([3, 1]))
    nll2 = torch.nn.functional.cross_entropy(logits[1, 1:], torch.tensor([3, 1]))
    expected = 2.0 * (nll + nll2) / 2
    assert weighted_loss(logits, batch["labels"], batch["weights"]) == pytest.approx(
        expected.item(), rel=1e-6
    )


def test_segments_may_only_see_earlier_segments():
    with pytest.raises(ValueError, match="earlier"):
        pack([Segment((1,), sees=(0,))])
    with pytest.raises(ValueError, match="same position"):
        pack(
            [
                Segment((1,)),
                Segment((2,), sees=(0,), weight=1, end_id=0),
                Segment((3,), sees=(0,), weight=1, end_id=0),
            ]
        )


def test_packed_rows_give_the_same_loss_and_gradients():
    import torch
    from helpers import RECORDS, tiny_model, tiny_tokenizer

    from rim.core.encoding import encode
    from rim.methods import make_method
    from rim.models.modeling import special_ids

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
            results.append(
                (
                    batch["input_ids"].shape[0],
                    loss.item(),
                    grads,
                    (method.tokens(batch), batch["input_ids"].numel()),
                )
            )
    for (rows, loss, grads, (tokens, padded)), (
        packed_rows,
        packed_loss,
        packed_grads,
        (packed_tokens, _),
    ) in zip(results[::2], results[1::2]):
        assert packed_rows < rows  # several examples share a row
        assert packed_tokens == tokens < padded  # throughput counts no padding
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


def flex_and_dense_models():
    """The same tiny Llama twice, with the dense 4D mask (SDPA) and with FlexAttention, on the
    test device (bench/gpu.sh sets RIM_TEST_DEVICE=cuda), float32; and RiM for its tokenizer."""
    from helpers import ARCHS, DEVICE, tiny_tokenizer

    from rim.methods import make_method
    from rim.models.modeling import build_model, special_ids

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    dense_model = build_model(ARCHS["llama"], tok, 256).to(DEVICE)
    flex_model = build_model(ARCHS["llama"], tok, 256, attn_implementation="flex_attention")
    flex_model.load_state_dict(dense_model.state_dict())
    method = make_method("rim", special_ids(tok), blocks=2, block_size=2)
    return tok, dense_model, flex_model.to(DEVICE), method


def flex_batches(tok, method, stage, fraction, pack_length):
    from helpers import DEVICE, RECORDS

    from rim.core.encoding import encode

    examples = [encode(r, tok) for r in RECORDS] * 2
    return [
        {
            k: v.to(DEVICE)
            for k, v in method.collate(
                examples, stage, fraction, pack_length=pack_length, sparse=sparse
            ).items()
        }
        for sparse in (False, True)
    ]


@pytest.mark.parametrize("pack_length", [None, 64])
def test_flex_attention_mask_gives_the_dense_results(pack_length):
    """FlexAttention's block mask, built from segment ids and the sees table, computes what
    the dense 4D mask does, padded and packed. On CPU, torch 2.13's flex kernel fails to
    compile when dynamo recompiles it for a second shape with dynamic sizes (`cur_kvSplitSize`
    not declared), so shapes are kept static here; GPUs compile through Triton."""
    import torch._dynamo
    from helpers import DEVICE

    from rim.core.flex import block_mask

    # torch's own patch restores the setting on exit; pytest's monkeypatch deletes torch's
    # config attributes on undo since pytest 9.2, and the next parametrisation finds none.
    with torch._dynamo.config.patch(automatic_dynamic_shapes=DEVICE.type != "cpu"):
        flex_matches_dense(pack_length, block_mask, DEVICE)


def flex_matches_dense(pack_length, block_mask, device) -> None:
    """The body of the test above, under the dynamo setting it chose."""
    tok, dense_model, flex_model, method = flex_and_dense_models()
    atol = 1e-5 if device.type == "cpu" else 1e-4
    for stage, fraction in (("stage1", 0.3), ("stage2", 0.0)):
        dense, sparse = flex_batches(tok, method, stage, fraction, pack_length)
        assert "attention_mask" not in sparse and sparse["segment_ids"].min() == -1  # padding
        with torch.no_grad():
            want = dense_model(
                input_ids=dense["input_ids"],
                attention_mask=dense["attention_mask"],
                position_ids=dense["position_ids"],
            ).logits
            got = flex_model(
                input_ids=sparse["input_ids"],
                attention_mask=block_mask(sparse),
                position_ids=sparse["position_ids"],
            ).logits
            scored = dense["labels"] != IGNORE
            torch.testing.assert_close(got[scored], want[scored], atol=atol, rtol=0)
            assert method.loss(flex_model, sparse).item() == pytest.approx(
                method.loss(dense_model, dense).item(), rel=10 * atol
            )


@pytest.mark.skipif(
    os.environ.get("RIM_TEST_DEVICE", "cpu") == "cpu",
    reason="torch has no FlexAttention backward on CPU: bench/gpu.sh runs this",
)
@pytest.mark.parametrize("pack_length", [None, 64])
def test_flex_attention_trains_as_the_dense_mask(pack_length):
    """On a GPU: the loss and every gradient of a FlexAttention step equal the dense mask's."""
    tok, dense_model, flex_model, method = flex_and_dense_models()
    for stage, fraction in (("stage1", 0.3), ("stage2", 0.0)):
        grads = []
        for model, batch in zip(
            (dense_model, flex_model), flex_batches(tok, method, stage, fraction, pack_length)
        ):
            model.zero_grad()
            loss = method.loss(model, batch)
            loss.backward()
            grads.append((loss.item(), [p.grad for p in model.parameters()]))
        (dense_loss, dense_grads), (flex_loss, flex_grads) = grads
        assert flex_loss == pytest.approx(dense_loss, rel=1e-4)
        for want, got in zip(dense_grads, flex_grads):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-3)
