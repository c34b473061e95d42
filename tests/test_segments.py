"""The weighted loss is each readout's mean token NLL times its weight, averaged over examples."""

import pytest
import torch

from rim.segments import IGNORE, Segment, collate, pack, weighted_loss


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
