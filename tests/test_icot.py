"""iCoT-SI (stepwise internalization): which chain tokens remain at chosen steps and smoothing
draws, remove-all beyond the threshold, what is supervised, the optimizer resets, and a tiny
`rim train` + `rim eval` + `rim infer` run; its dry run and `rim config` listing."""

import json
import math
from collections import Counter

import pytest
import yaml
from helpers import RECORDS, tiny_tokenizer, write_jsonl

from rim.cli import main
from rim.config import config_from_dict
from rim.core.encoding import Example, chain_after_steps, decode_text, encode
from rim.core.segments import IGNORE
from rim.data.generators.chain import generate_chain
from rim.data.generators.multiplication import multiplication_record
from rim.data.icot import format_icot_line
from rim.inference.infer import load_run
from rim.methods import METHOD_CONFIGS, SpecialIds, make_method
from rim.methods.icot import ICoT
from rim.models.modeling import scratch_tokenizer
from rim.training.schedule import next_reset, plan_stages

SPECIAL = SpecialIds(open=90, memory=91, close=92, eos=93, pad=94)
# a chain of 10 tokens (steps 1..4, 5..7, 8..10), then ` ####` (50) and the answer (60, 61)
EX = Example(
    question=(7, 8, 9),
    steps=((1, 2, 3, 4), (5, 6, 7), (8, 9, 10)),
    answer=(60, 61),
    cot=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 60, 61),
)
NO_SMOOTHING = {"removal_smoothing_lambda": math.inf}


def icot(**settings) -> ICoT:
    return make_method("icot", SPECIAL, **settings)


def remaining(method: ICoT, ex: Example, step: int, steps: int) -> tuple[int, ...]:
    """The readout of `ex` at optimizer step `step` of a `steps`-step stage."""
    return method.layout(ex, "icot", step / steps)[1].ids


def test_chain_tokens_leave_from_the_left_per_epoch():
    # 80 steps of 10 per epoch; 2 tokens an epoch: one every round(10 / 2) = 5 steps
    method = icot(**NO_SMOOTHING, remove_per_epoch=2).for_stage("icot", 80, 10, seed=0)
    assert remaining(method, EX, 0, 80) == EX.cot  # epoch 0 starts as CoT
    assert remaining(method, EX, 5, 80) == EX.cot[1:]  # one token every 5 steps
    assert remaining(method, EX, 10, 80) == EX.cot[2:]  # epoch 1: 2 tokens gone
    assert remaining(method, EX, 39, 80) == EX.cot[7:]
    assert remaining(method, EX, 79, 80) == (50, 60, 61)  # the chain is gone, not the answer
    started = icot(**NO_SMOOTHING, remove_start_from=3).for_stage("icot", 80, 80, seed=0)
    assert remaining(started, EX, 0, 80) == EX.cot[3:]
    fast = icot(**NO_SMOOTHING, remove_per_epoch=40).for_stage("icot", 80, 10, seed=0)
    assert [fast.removal_count(s, 10) for s in range(3)] == [1, 2, 3]  # a token every step


def test_everything_is_removed_beyond_the_threshold():
    method = icot(**NO_SMOOTHING, remove_per_epoch=1, remove_all_when_remove_beyond=3)
    bound = method.for_stage("icot", 40, 1, seed=0)  # one more token per step
    assert [bound.removal_count(s, 1) for s in range(5)] == [0, 1, 2, math.inf, math.inf]
    assert remaining(bound, EX, 2, 40) == EX.cot[2:]
    assert remaining(bound, EX, 3, 40) == (50, 60, 61)  # 3 scheduled: the whole chain goes
    long = Example(EX.question, ((*range(100, 140),),), EX.answer, (*range(100, 140), 50, 60))
    assert remaining(bound, long, 3, 40) == (50, 60)


def test_smoothing_offsets_are_seeded_and_follow_the_distribution():
    assert icot(removal_smoothing_lambda=1e6).offset_distribution()[0] == pytest.approx(1.0)
    large = icot(removal_smoothing_lambda=1e6).for_stage("icot", 100, 10, seed=3)
    assert [large.removed(EX, s / 100) for s in range(10)] == [
        large.removal_count(s, 10) for s in range(10)
    ]  # lambda large: no offset
    method = icot(removal_smoothing_lambda=1.0, max_offset=5)
    probs = method.offset_distribution()
    assert len(probs) == 6 and sum(probs) == pytest.approx(1.0)
    assert probs[1] / probs[0] == pytest.approx(math.exp(-1.0))
    # the draw is a function of (seed, epoch, example): the same twice, other epochs differ
    examples = [Example((q,), ((1, 2),), (60,), (1, 2, 50, 60)) for q in range(4000)]
    draws = [method.offset(ex, epoch=2, seed=7) for ex in examples]
    assert draws == [method.offset(ex, epoch=2, seed=7) for ex in examples]
    assert draws != [method.offset(ex, epoch=3, seed=7) for ex in examples]
    counts = Counter(draws)
    for o in range(5):  # exp(-lambda o): within 4 standard deviations of the expected count
        expected = len(examples) * probs[o]
        assert abs(counts[o] - expected) < 4 * math.sqrt(expected) + 1, (o, counts)
    assert counts[6] == 0  # never beyond max_offset
    # the offset adds to the scheduled count
    bound = method.for_stage("icot", 100, 10, seed=7)
    ex = examples[0]
    assert bound.removed(ex, 25 / 100) == bound.removal_count(25, 10) + method.offset(ex, 2, 7)


def test_labels_supervise_exactly_the_remaining_chain_and_answer():
    tok = tiny_tokenizer()
    method = make_method(
        "icot",
        SpecialIds(0, 1, 2, tok.eos_token_id, tok.pad_token_id),
        **NO_SMOOTHING,
        remove_per_epoch=1,
        remove_start_from=2,
    )
    ex = encode(RECORDS[0], tok)
    bound = method.for_stage("icot", 10, 10, seed=0)
    batch = bound.collate([ex], "icot", 0.0)
    labels = batch["labels"][0]
    scored = labels[labels != IGNORE].tolist()
    assert scored == [*ex.cot[2:], tok.eos_token_id]
    assert batch["input_ids"][0, : len(ex.question)].tolist() == list(ex.question)
    assert method.prompt(ex.question) == list(ex.question)  # inference: no-CoT's prompt
    assert method.answer_text(" #### 14") == "14"


def test_optimizer_resets_when_the_count_grows():
    cfg = config_from_dict(
        {
            "data": {"train": "x"},
            "method": {"name": "icot", **NO_SMOOTHING},
            "trainer": {"batch_size": 1, "baseline": {"epochs": 3}},
        }
    )
    method = make_method(cfg.method, SPECIAL)
    (plan,) = plan_stages(cfg, method, 16)  # 16 steps per epoch: a token every 2 steps
    bound = method.for_stage(plan.name, plan.steps, plan.steps_per_epoch, 0)
    assert [s for s in range(plan.steps) if bound.resets_optimizer("icot", s)] == list(range(2, 48, 2))
    assert next_reset(plan, bound, 0) == 2 and next_reset(plan, bound, 46) is None
    off = make_method("icot", SPECIAL, **NO_SMOOTHING, reset_optimizer=False)
    assert next_reset(plan, off.for_stage("icot", 48, 16, 0), 0) is None
    assert "8/epoch" in plan.curriculum and "at epoch starts: 0, 8, 16" in plan.curriculum
    capped = make_method("icot", SPECIAL, remove_per_epoch=16, remove_all_when_remove_beyond=3)
    capped = capped.for_stage("icot", 48, 16, 0)
    assert [s for s in range(48) if capped.resets_optimizer("icot", s)] == [1, 2, 3]


def test_registered_and_listed_by_rim_config(capsys):
    assert "icot" in METHOD_CONFIGS and isinstance(icot(), ICoT)
    assert icot().config.remove_per_epoch == 8 and icot().config.removal_smoothing_lambda == 4
    assert icot().settings("icot") == "baseline" and not icot().writes_chain
    assert main(["config"]) == 0
    listing = capsys.readouterr().out
    for key in (
        "method.remove_per_epoch",
        "method.removal_smoothing_lambda",
        "method.remove_all_when_remove_beyond",
    ):
        assert key in listing


def test_tiny_cli_train_dry_run_eval_and_infer(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", [r.to_dict() for r in generate_chain(24, 0, ops=2)])
    test = write_jsonl(tmp_path / "test.jsonl", [r.to_dict() for r in generate_chain(4, 1, ops=2)])
    config = {
        "model": {
            "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
            "vocab_size": 48,
            "max_length": 96,
        },
        "data": {"train": str(train), "eval": str(test)},
        "method": {"name": "icot", "remove_per_epoch": 4, "remove_all_when_remove_beyond": 6},
        "trainer": {
            "batch_size": 8,
            "log_every": 1,
            "threads": 1,
            "report_to": [],
            "max_new_tokens": 12,
            "eval_batch_size": 4,
            "baseline": {"epochs": 2, "lr": 1e-3, "warmup": 0.0},
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    (stage,) = plan["stages"]
    assert stage["name"] == "icot" and stage["steps"] == 6
    assert "at epoch starts: 0, 3" in stage["curriculum"]
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows if "loss" in r] == ["icot"] * 6
    capsys.readouterr()
    assert main(["eval", str(out), "--data", str(test), "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1
    question = generate_chain(1, 2, ops=2)[0].question
    assert main(["infer", str(out), question]) == 0
    run = load_run(out, device="cpu")
    assert isinstance(run.method, ICoT)
    assert capsys.readouterr().out.strip() == run.answers([question])[0].strip()
    prompt = run.method.prompt(tuple(run.tok(question).input_ids))
    assert prompt == list(run.tok(question).input_ids)  # answers directly, as no-CoT


def test_a_tiny_run_creates_a_fresh_adamw_each_time_the_count_grows(tmp_path, monkeypatch):
    import torch

    from rim.common.progress import Reporter
    from rim.training.run import run_training

    made = []
    real = torch.optim.AdamW

    def tracked(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", tracked)
    train = write_jsonl(tmp_path / "train.jsonl", [r.to_dict() for r in generate_chain(32, 0, ops=2)])
    cfg = config_from_dict(
        {
            "model": {
                "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
                "vocab_size": 48,
                "max_length": 96,
            },
            "data": {"train": str(train)},
            "method": {"name": "icot", "remove_per_epoch": 2},
            "trainer": {"batch_size": 8, "threads": 1, "report_to": [], "baseline": {"steps": 8, "lr": 1e-3}},
        }
    )
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    # 4 steps per epoch, a token every 2 steps: fresh AdamWs at steps 0, 2, 4 and 6
    assert len(made) == 4
    made.clear()
    cfg.method = cfg.method.model_copy(update={"reset_optimizer": False})
    run_training(cfg, tmp_path / "run2", Reporter(enabled=False))
    assert len(made) == 1


def test_multiplication_chains_keep_the_plus_between_partial_products():
    """The iCoT files join a multiplication's partial products with ` + `; the chain rim trains
    (CoT, iCoT-SI's removal, Coconut's and CODI's remaining steps) keeps it, as the official code does."""
    record = multiplication_record(2365, 4347)
    tok = scratch_tokenizer([record.question, *record.steps, record.answer, "+ ####"], vocab_size=80)
    ex = encode(record, tok)
    chain_text = format_icot_line(record).split("||")[1]
    assert decode_text(tok, list(ex.cot)) == chain_text  # "s1 + s2 + s3 + s4 #### answer"
    assert decode_text(tok, list(ex.joint)) == "+"
    assert decode_text(tok, list(chain_after_steps(ex, 1))) == chain_text.split(" + ", 1)[1]
    assert decode_text(tok, list(chain_after_steps(ex, len(ex.steps)))) == f"#### {record.answer}"
    method = icot(**NO_SMOOTHING)
    chain_tokens = len(ex.cot) - len(chain_after_steps(ex, len(ex.steps)))
    assert chain_tokens == sum(len(s) for s in ex.steps) + 3 * len(ex.joint)  # three joints
    assert method.target_at(ex, math.inf) == method.target_at(ex, chain_tokens)
    assert method.target_at(ex, chain_tokens - 1) == (ex.steps[-1][-1], *chain_after_steps(ex, len(ex.steps)))
