"""Pause tokens are RiM's stage 2 without stage 1 (issue 18, point 5): the same layout, RiM's
stage-2 settings, RiM's whole budget; the single-readout variant is `method.readout: last`."""

import pytest
import torch
from helpers import RECORDS, tiny_tokenizer

from rim.config import config_from_dict
from rim.core.encoding import encode
from rim.methods import make_method
from rim.models.modeling import special_ids
from rim.training.schedule import counted_steps, plan_stages

BLOCKS = {"blocks": 3, "block_size": 2}


def batches(readout: str) -> tuple[dict, dict, dict]:
    tok = tiny_tokenizer()
    special = special_ids(tok)
    rim = make_method("rim", special, **BLOCKS)
    pause = make_method("pause", special, readout=readout, **BLOCKS)
    examples = [encode(r, tok) for r in RECORDS]
    return (
        rim.collate(examples, "stage2", 1.0),
        pause.collate(examples, "stage2", 0.0),
        rim.collate(examples, "stage1", 0.0),
    )


def test_pause_lays_out_a_batch_exactly_as_rims_stage_two():
    rim, pause, grounding = batches("every_block")
    assert set(pause) == set(rim)
    for key in ("input_ids", "labels", "weights", "attention_mask", "position_ids"):
        assert torch.equal(pause[key], rim[key]), key
    assert pause["input_ids"].shape != grounding["input_ids"].shape  # not stage 1's layout


def test_single_readout_variant_reads_the_answer_once_after_the_last_block():
    rim, last, _ = batches("last")
    every = batches("every_block")[1]
    # the same question and blocks, one answer readout instead of K (3)
    per_row = (last["weights"] > 0).sum(1)
    assert torch.all(per_row * 3 == (every["weights"] > 0).sum(1))
    assert torch.allclose(last["weights"].sum(1), torch.ones(len(RECORDS)))  # weight 1
    assert last["input_ids"].shape[1] < rim["input_ids"].shape[1]


@pytest.mark.parametrize("readout", ["every_block", "last"])
def test_pause_plan_is_rims_total_budget_with_stage_two_settings(readout):
    trainer = {
        "batch_size": 8,
        "stage1": {"epochs": 6, "lr": 1e-4, "dropout": 0.1},
        "stage2": {"epochs": 2, "lr": 5e-5, "warmup": 0.04, "dropout": 0.2},
        "baseline": {"epochs": 25, "lr": 3e-3},
    }
    rim_cfg = config_from_dict({"method": {"name": "rim", **BLOCKS}, "trainer": trainer})
    pause_cfg = config_from_dict(
        {"method": {"name": "pause", "readout": readout, **BLOCKS}, "trainer": trainer}
    )
    rim_plan = plan_stages(rim_cfg, make_method(rim_cfg.method, special_ids(tiny_tokenizer())), 100)
    (pause_plan,) = plan_stages(pause_cfg, make_method(pause_cfg.method, special_ids(tiny_tokenizer())), 100)
    assert rim_plan[0].steps == 3 * rim_plan[1].steps  # 6 : 2 epochs
    assert pause_plan.steps == sum(p.steps for p in rim_plan)
    assert pause_plan.settings == "stage2" and pause_plan.name == "stage2"
    assert (pause_plan.lr, pause_plan.dropout) == (5e-5, {"all": 0.2})
    assert pause_plan.warmup_steps == int(0.04 * pause_plan.steps)


def test_pause_counts_rims_steps_when_given_in_steps():
    cfg = config_from_dict(
        {
            "method": {"name": "pause"},
            "trainer": {"stage1": {"steps": 30}, "stage2": {"steps": 12}, "baseline": {"steps": 999}},
        }
    )
    assert counted_steps(cfg, make_method(cfg.method, special_ids(tiny_tokenizer()))) == 42


def test_a_baseline_budget_is_split_between_rims_stages_and_adds_up():
    trainer = {
        "batch_size": 7,
        "budget": "baseline",
        "stage1": {"epochs": 6},
        "stage2": {"epochs": 2},
        "baseline": {"epochs": 50},
    }
    special = special_ids(tiny_tokenizer())
    for n in (1000, 17886, 9000, 33):
        plans = {}
        for name in ("rim", "pause", "nocot", "cot"):
            cfg = config_from_dict({"method": {"name": name}, "trainer": trainer})
            plans[name] = [p.steps for p in plan_stages(cfg, make_method(cfg.method, special), n)]
        total = plans["nocot"][0]
        assert sum(plans["rim"]) == sum(plans["pause"]) == plans["cot"][0] == total
        assert plans["rim"][0] == pytest.approx(0.75 * total, rel=1e-3, abs=1)  # 6 : 2
