"""Each method trains on its own recipe: stage settings, schedule, optimizer lifetime, dropout,
curriculum timing, generation budget, validation-based selection, initialisation from a run."""

import gc
import json
import math
import weakref

import pytest
import torch
from helpers import write_jsonl

from rim.common.progress import Reporter
from rim.config import StageConfig, config_from_dict
from rim.data.generators.chain import generate_chain
from rim.training.run import run_training
from rim.training.schedule import lr_at, plan_stages

TINY = {
    "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
    "vocab_size": 48,
    "max_length": 64,
}


@pytest.fixture
def data(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [r.to_dict() for r in generate_chain(64, 0, ops=2)])
    test = write_jsonl(tmp_path / "test.jsonl", [r.to_dict() for r in generate_chain(8, 1, ops=2)])
    return {"train": str(train), "eval": str(test)}


def config(data, method, **trainer):
    return config_from_dict(
        {
            "model": TINY,
            "data": data,
            "method": method,
            "trainer": {"batch_size": 16, "log_every": 1, **trainer},
        }
    )


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_each_method_trains_on_its_own_stage_settings(data, tmp_path):
    cfg = config(
        data,
        {"name": "nocot"},
        stage2={"steps": 9, "lr": 9e-9},
        baseline={"steps": 3, "lr": 2e-3, "warmup": 0.0},
    )
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    rows = metrics(tmp_path / "run")
    (stage,) = [r for r in rows if r.get("event") == "stage"]
    assert stage["stage"] == "baseline" and stage["plan"]["settings"] == "baseline"
    assert stage["settings"]["lr"] == 2e-3 and stage["plan"]["steps"] == 3
    steps = [r for r in rows if "loss" in r]
    assert len(steps) == 3 and {r["lr"] for r in steps} == {2e-3}


def test_default_budgets_are_equal_in_epochs():
    cfg = config_from_dict({})
    from rim.methods import SpecialIds, make_method

    special = SpecialIds(0, 1, 2, 3, 4)
    epochs = {}
    for name in ("rim", "nocot", "cot", "pause", "coconut"):
        method = make_method(name, special)
        epochs[name] = sum(
            getattr(cfg.trainer, key).epochs for s in method.stages for key in method.budget(s)
        )
    assert set(epochs.values()) == {8.0}


def test_warmup_is_counted_in_optimizer_steps_whatever_the_processes(data):
    stage = StageConfig(steps=100, lr=1e-3, warmup=0.1)
    assert [lr_at(s, 100, stage) for s in (0, 4, 9, 10, 99)] == pytest.approx([1e-4, 5e-4, 1e-3, 1e-3, 1e-3])
    cosine = StageConfig(steps=110, lr=1e-3, warmup=10 / 110, schedule="cosine")  # 10 warm-up steps
    assert [lr_at(s, 110, cosine) for s in (0, 9, 10, 60, 109)] == pytest.approx(
        [1e-4, 1e-3, 1e-3, 0.5e-3, 0.5e-3 * (1 + math.cos(math.pi * 0.99))]
    )
    cfg = config(data, {"name": "nocot"}, batch_size=8, baseline={"epochs": 2, "warmup": 0.25})
    from rim.methods import SpecialIds, make_method

    method = make_method("nocot", SpecialIds(0, 1, 2, 3, 4))
    one, two = (plan_stages(cfg, method, 64, processes=n)[0] for n in (1, 2))
    assert (one.steps, one.warmup_steps, one.effective_batch) == (16, 4, 8)
    assert (two.steps, two.warmup_steps, two.effective_batch) == (8, 2, 16)  # same share of the stage


def test_each_batch_is_laid_out_at_the_step_that_trains_on_it(data, tmp_path, monkeypatch):
    from rim.methods.rim import RiM

    seen = []
    real = RiM.collate

    def recording(self, batch, stage, fraction):
        seen.append((stage, fraction))
        return real(self, batch, stage, fraction)

    monkeypatch.setattr(RiM, "collate", recording)
    cfg = config(data, {"name": "rim", "blocks": 2}, stage1={"steps": 5}, stage2={"steps": 2})
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    assert seen == [("stage1", i / 5) for i in range(5)] + [("stage2", i / 2) for i in range(2)]


def test_the_previous_optimizer_is_released(data, tmp_path, monkeypatch):
    made, alive_at_creation = [], []
    real = torch.optim.AdamW

    def tracked(*args, **kwargs):
        gc.collect()
        alive_at_creation.append(sum(ref() is not None for ref in made))
        optimizer = real(*args, **kwargs)
        made.append(weakref.ref(optimizer))
        return optimizer

    monkeypatch.setattr(torch.optim, "AdamW", tracked)
    cfg = config(
        data, {"name": "coconut", "latent_stages": 1}, coconut={"steps": 8, "optimizer_reset": "epoch"}
    )
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    # 64 examples / batch 16: a fresh optimizer every 4 steps, 2 per stage, 2 stages
    assert len(made) == 4
    assert alive_at_creation == [0, 0, 0, 0]


def test_stage_dropout_reaches_every_module_lora_included(data, tmp_path, monkeypatch, caplog):
    from rim.methods.rim import RiM

    seen = []  # per training step: the dropout probabilities, the number of LoRA dropouts
    real = RiM.loss

    def recording(self, model, batch):
        probs = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
        lora = [m for name, m in model.named_modules() if name.endswith("lora_dropout")]
        seen.append((probs, len(lora)))
        return real(self, model, batch)

    monkeypatch.setattr(RiM, "loss", recording)
    cfg = config(
        data,
        {"name": "rim", "blocks": 2},
        stage1={"steps": 1, "dropout": 0.0},
        stage2={"steps": 1, "dropout": 0.3},
    )
    cfg.model.lora = {"r": 4, "dropout": 0.0, "target_modules": ["c_attn"]}
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    stage1, stage2 = seen
    assert stage1[0] == {0.0} and stage2[0] == {0.3} and stage2[1] > 0
    plans = [r["plan"] for r in metrics(tmp_path / "run") if r.get("event") == "stage"]
    assert plans[1]["dropout"] == {"attention": 0.3, "embedding": 0.3, "hidden": 0.3, "lora": 0.3}

    from rim.common.progress import log

    monkeypatch.setattr(log, "propagate", True)  # `rim` commands send it to the console only
    caplog.clear()
    unset = config(
        data, {"name": "rim", "blocks": 2}, stage1={"steps": 1, "dropout": 0.1}, stage2={"steps": 1}
    )
    run_training(unset, tmp_path / "unset", Reporter(enabled=False))
    assert "stage2 dropout" in caplog.text and "not above" in caplog.text  # the recipe asks for more
    caplog.clear()
    same = config(
        data,
        {"name": "rim", "blocks": 2},
        stage1={"steps": 1, "dropout": 0.1},
        stage2={"steps": 1, "dropout": 0.1},
    )
    run_training(same, tmp_path / "same", Reporter(enabled=False))
    assert "not above" not in caplog.text  # set on purpose: no warning


def test_generation_budget_follows_the_data_and_cut_answers_are_counted(data, tmp_path):
    cfg = config(data, {"name": "cot"}, baseline={"steps": 2})
    result = run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    info = json.loads((tmp_path / "run" / "model" / "rim.json").read_text())
    chain = " 5 3 #### 3"  # two moves: two steps, the separator, the answer, as single digits
    assert info["max_new_tokens"] >= len(chain.split()) + 1
    assert 0 <= result["cut_by_limit"] <= 1
    short = config(data, {"name": "cot"}, baseline={"steps": 2}, max_new_tokens=1)
    result = run_training(short, tmp_path / "short", Reporter(enabled=False))
    assert result["cut_by_limit"] == 1.0 and result["accuracy"] == 0.0
    assert result["unparsable"] == 1.0  # one token of a chain: no `####`, no answer


def test_validation_during_training_keeps_the_best(data, tmp_path):
    cfg = config(data, {"name": "nocot"}, baseline={"steps": 6, "lr": 3e-3}, eval_every=2, select="best")
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    evals = [r for r in metrics(tmp_path / "run") if r.get("event") == "eval"]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert evals[-1]["best_accuracy"] == max(r["accuracy"] for r in evals)
    assert (tmp_path / "run" / "checkpoints" / "best" / "model.safetensors").is_file()


def test_coconut_starts_from_a_cot_run(data, tmp_path):
    cot = config(data, {"name": "cot"}, baseline={"steps": 2})
    run_training(cot, tmp_path / "cot", Reporter(enabled=False))
    coconut = config_from_dict(
        {
            "model": {"init_from": str(tmp_path / "cot"), "new_token_init": "mean"},
            "data": data,
            "method": {"name": "coconut", "latent_stages": 2, "first_stage": 1},
            "trainer": {"batch_size": 16, "coconut": {"steps": 1}},
        }
    )
    run_training(coconut, tmp_path / "coconut", Reporter(enabled=False))
    stages = [r["stage"] for r in metrics(tmp_path / "coconut") if r.get("event") == "stage"]
    assert stages == ["coconut1", "coconut2"]  # stage 0 is the CoT run


def test_gradient_checkpointing_gives_the_same_losses(data, tmp_path):
    losses = {}
    for flag in (False, True):
        cfg = config(
            data,
            {"name": "rim", "blocks": 2},
            gradient_checkpointing=flag,
            stage1={"steps": 3, "dropout": 0.0},
            stage2={"steps": 2, "dropout": 0.0},
        )
        run_training(cfg, tmp_path / str(flag), Reporter(enabled=False))
        losses[flag] = [r["loss"] for r in metrics(tmp_path / str(flag)) if "loss" in r]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
