import pytest
from helpers import RECORDS, tiny_tokenizer

from rim.core.curriculum import answer_weights, fading_progress, fading_weight
from rim.core.encoding import encode
from rim.methods import make_method
from rim.models.modeling import special_ids


def test_fading_is_relative_to_the_example_and_earliest_first():
    # T = 4: at progress 0.5 the first two steps are gone, the last two still full
    assert [fading_weight(t, 4, 0.5) for t in range(4)] == [0.0, 0.0, 1.0, 1.0]
    # T = 2 at the same progress: the first step gone, the second full
    assert [fading_weight(t, 2, 0.5) for t in range(2)] == [0.0, 1.0]
    # partial weights in between: T = 4, p = 0.3 -> 1 - 1.2 < 0, 2 - 1.2 = 0.8
    assert [fading_weight(t, 4, 0.3) for t in range(4)] == pytest.approx([0.0, 0.8, 1.0, 1.0])
    assert [fading_weight(t, 3, 0.0) for t in range(3)] == [1.0, 1.0, 1.0]
    assert [fading_weight(t, 3, 1.0) for t in range(3)] == [0.0, 0.0, 0.0]


def test_answer_weights_increase_linearly_and_sum_to_one():
    assert answer_weights(4) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert answer_weights(1) == [1.0]
    assert sum(answer_weights(8)) == pytest.approx(1.0)


def test_fading_progress_window():
    assert fading_progress(0.0) == 0.0
    assert fading_progress(0.5) == 0.5
    assert fading_progress(0.5, start=0.5, end=1.0) == 0.0
    assert fading_progress(0.75, start=0.5, end=1.0) == 0.5
    assert fading_progress(1.0, start=0.0, end=0.5) == 1.0


def test_stage1_layout_drops_faded_steps_and_keeps_the_answer():
    tok = tiny_tokenizer()
    method = make_method("rim", special_ids(tok), blocks=3, block_size=2)
    ex = encode(RECORDS[2], tok)  # three steps
    readouts = [s for s in method.layout(ex, "stage1", 0.5) if s.weight > 0]
    # p = 0.5, T = 3: weights clip(1-1.5)=0, clip(2-1.5)=0.5, clip(3-1.5)=1, answer 1
    assert [(s.kind, s.block, s.weight) for s in readouts] == [
        ("step", 1, 0.5),
        ("step", 2, 1.0),
        ("answer", 3, 1.0),
    ]
    assert readouts[-1].ids == ex.answer


def test_stage2_layout_reads_the_answer_after_every_block():
    tok = tiny_tokenizer()
    method = make_method("rim", special_ids(tok), blocks=4, block_size=2)
    ex = encode(RECORDS[0], tok)
    readouts = [s for s in method.layout(ex, "stage2", 0.0) if s.weight > 0]
    assert [s.block for s in readouts] == [1, 2, 3, 4]
    assert [s.weight for s in readouts] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert all(s.ids == ex.answer for s in readouts)
