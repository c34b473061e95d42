"""Mixed precision: full fine-tuning keeps fp32 weights and AdamW state and computes in bf16
under autocast, so that small updates are not rounded away; low-precision weights are for the
frozen base under LoRA; a config that would fully fine-tune them is refused; the dry run shows
the dtypes per stage."""

import io
import json

import pytest
import torch
from helpers import write_jsonl
from rich.console import Console
from safetensors.torch import load_file

from rim.cli import main
from rim.cli.dryrun import dry_run, plan_table
from rim.common.errors import RimInputError
from rim.common.progress import Reporter
from rim.config import config_from_dict, load_config
from rim.data.generators.chain import generate_chain
from rim.methods.base import SegmentMethod
from rim.training.precision import precision_plan
from rim.training.run import run_training

LLAMA = {
    "scratch": {
        "model_type": "llama",
        "num_hidden_layers": 1,
        "hidden_size": 32,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 64,
    },
    "vocab_size": 48,
    "max_length": 64,
}


@pytest.fixture
def train_file(tmp_path):
    return str(write_jsonl(tmp_path / "train.jsonl", [r.to_dict() for r in generate_chain(32, 0, ops=2)]))


def one_step(train_file, model=None, **trainer):
    """One optimizer step of no-CoT at lr 1e-4 (no warm-up, no clipping, no weight decay)."""
    return config_from_dict(
        {
            "model": {**LLAMA, **(model or {})},
            "data": {"train": train_file},
            "method": {"name": "nocot"},
            "trainer": {
                "batch_size": 16,
                "report_to": [],
                "grad_clip": 0.0,
                "baseline": {"steps": 1, "lr": 1e-4, "warmup": 0.0},
                **trainer,
            },
        }
    )


@pytest.fixture
def seen(monkeypatch):
    """The dtypes training used: `compute` (outputs of the linear layers in the loss's forward
    pass), `trained` (the parameters AdamW updates) and `state` (its moments)."""
    found = {"compute": set(), "trained": set(), "state": set()}
    real_loss, real_step = SegmentMethod.loss, torch.optim.AdamW.step

    def loss(self, model, batch):
        hooks = [
            m.register_forward_hook(lambda mod, args, out: found["compute"].add(out.dtype))
            for m in model.modules()
            if isinstance(m, torch.nn.Linear)
        ]
        try:
            return real_loss(self, model, batch)
        finally:
            for hook in hooks:
                hook.remove()

    def step(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        found["trained"] |= {p.dtype for g in self.param_groups for p in g["params"]}
        found["state"] |= {s["exp_avg"].dtype for s in self.state.values()}
        found["state"] |= {s["exp_avg_sq"].dtype for s in self.state.values()}
        return out

    monkeypatch.setattr(SegmentMethod, "loss", loss)
    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    return found


def norm_weights(run_dir):
    weights = load_file(str(run_dir / "model" / "model.safetensors"))
    return torch.cat([w.float().flatten() for k, w in weights.items() if "norm" in k])


def as_names(dtypes):
    return {str(d).removeprefix("torch.") for d in dtypes}


def test_one_step_at_lr_1e4_moves_every_norm_weight_in_fp32_weights_and_bf16_compute(
    train_file, tmp_path, seen
):
    cfg = one_step(train_file, mixed_precision="bf16")
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    norms = norm_weights(tmp_path / "run")
    assert norms.numel() >= 3 * 32  # two layer norms and the final one, all 1.0 at the start
    assert (norms != 1.0).float().mean() > 0.95  # AdamW's first step: about lr x sign(grad)
    assert (norms - 1.0).abs().max() < 3e-4
    plan = precision_plan(cfg)
    assert plan == {
        "weights_dtype": "float32",
        "frozen_dtype": None,
        "compute_dtype": "bfloat16",
        "optimizer_state_dtype": "float32",
    }
    assert as_names(seen["compute"]) == {plan["compute_dtype"]}
    assert as_names(seen["trained"]) == {plan["weights_dtype"]}
    assert as_names(seen["state"]) == {plan["optimizer_state_dtype"]}


def test_bf16_weights_lose_the_same_update_when_explicitly_allowed(train_file, tmp_path):
    cfg = one_step(train_file, {"dtype": "bfloat16"}, allow_low_precision_weights=True)
    assert precision_plan(cfg)["optimizer_state_dtype"] == "bfloat16"
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    assert bool((norm_weights(tmp_path / "run") == 1.0).all())  # why the rule exists


def test_full_fine_tuning_of_low_precision_weights_is_refused_in_one_line(train_file, tmp_path, capsys):
    for dtype in ("bfloat16", "float16"):
        with pytest.raises(RimInputError, match=rf"'model.dtype' is {dtype} under full fine"):
            load_config(None, [f"model.dtype={dtype}", "method.name=cot"])
    config = tmp_path / "bf16.yaml"
    config.write_text(f"model: {{dtype: bfloat16}}\ndata: {{train: {train_file}}}\n")
    assert main(["train", str(config), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.dtype" in err
    assert not (tmp_path / "runs").exists()


def test_lora_over_a_bf16_base_trains_its_adapters_in_fp32(train_file, tmp_path, seen):
    cfg = config_from_dict(
        {
            "model": {**LLAMA, "dtype": "bfloat16", "lora": {"r": 4}},
            "data": {"train": train_file},
            "method": {"name": "rim", "blocks": 2},
            "trainer": {
                "batch_size": 16,
                "report_to": [],
                "mixed_precision": "bf16",
                "stage1": {"steps": 1, "lr": 1e-4},
                "stage2": {"steps": 1, "lr": 1e-4},
            },
        }
    )
    plan = precision_plan(cfg)
    assert plan == {
        "weights_dtype": "float32",
        "frozen_dtype": "bfloat16",
        "compute_dtype": "bfloat16",
        "optimizer_state_dtype": "float32",
    }
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    assert as_names(seen["trained"]) == as_names(seen["state"]) == {"float32"}
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_dry_run_shows_the_dtypes_of_every_stage(train_file, tmp_path, capsys):
    config = tmp_path / "lora.yaml"
    config.write_text(
        f"model: {{dtype: bfloat16, lora: {{r: 4}}}}\ndata: {{train: {train_file}}}\n"
        "trainer: {mixed_precision: bf16}\n"
    )
    assert main(["train", str(config), "--dry-run", "--json"]) == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert [s["name"] for s in stages] == ["stage1", "stage2"]
    for stage in stages:
        assert (
            stage["weights_dtype"],
            stage["frozen_dtype"],
            stage["compute_dtype"],
            stage["optimizer_state_dtype"],
        ) == ("float32", "bfloat16", "bfloat16", "float32")
    out = Console(file=io.StringIO(), width=200)
    out.print(plan_table(dry_run(load_config(config))))
    assert "weights / compute / AdamW" in out.file.getvalue()
    assert "fp32 / bf16 / fp32 (frozen base bf16)" in out.file.getvalue()
