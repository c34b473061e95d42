"""Every shipped recipe validates and plans (`rim train --dry-run`) without the hub: the hub
models are replaced by local config files of the same architecture, the data by a small file."""

import json
from pathlib import Path

import pytest
from helpers import write_jsonl
from transformers import AutoConfig

from rim.cli import main
from rim.cli.dryrun import dry_run
from rim.config import load_config
from rim.data.generators.chain import generate_chain

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "configs" / "recipes").glob("*.yaml"))
SHAPES = {  # the architectures of the hub models (config only: no weights are needed)
    "gpt2": ("gpt2", {}),
    "llama-3.2-1b": (
        "llama",
        {
            "num_hidden_layers": 16,
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
        },
    ),
}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    models = {}
    for name, (model_type, fields) in SHAPES.items():
        AutoConfig.for_model(model_type, **fields).save_pretrained(root / name)
        (root / name / "rim.json").write_text(json.dumps({"method": {"name": "cot"}}))
        models[name] = root / name
    train = write_jsonl(root / "train.jsonl", [r.to_dict() for r in generate_chain(1000, 0)])
    return models, train


def overrides(recipe: Path, models: dict, train: Path) -> list[str]:
    model = next(m for m in SHAPES if f"-{m}-" in recipe.name)
    key = "model.init_from" if "init_from:" in recipe.read_text() else "model.name_or_path"
    return [f"data.train={train}", f"{key}={models[model]}"]


def test_there_is_a_recipe_per_dataset_model_and_method():
    names = {p.stem for p in RECIPES}
    for stem in ("gsm8k-aug-gpt2", "gsm8k-aug-llama-3.2-1b", "prosqa-gpt2", "prontoqa-gpt2"):
        for method in ("rim", "nocot", "cot", "pause", "coconut"):
            assert f"{stem}-{method}" in names


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_plans_without_training(recipe, local):
    models, train = local
    cfg = load_config(recipe, overrides(recipe, models, train))
    assert cfg.method.name == recipe.stem.rsplit("-", 1)[1]
    plan = dry_run(cfg)
    assert plan["examples"] == 1000 and plan["stages"]
    # a test split apart from the validation split, and each source's selection rule: the
    # baselines' and Coconut's best on validation, RiM's (and pause's) last model [ours];
    # iCoT-SI's last [ours] (its code keeps the best among models trained with no CoT left)
    assert plan["data"]["test"] and plan["data"]["test"] != plan["data"]["eval"]
    assert plan["select"] == ("last" if cfg.method.name in ("rim", "pause", "icot", "codi") else "best")
    if plan["data"]["test"].startswith("../shared/"):  # the published test files are there
        assert (REPO / plan["data"]["test"]).is_file()
    for stage in plan["stages"]:
        batch = 32 if cfg.method.name == "icot" else 128  # iCoT-SI's code: 32, no accumulation
        assert stage["steps"] > 0 and stage["effective_batch"] == batch and stage["lr"] > 0
        assert stage["dropout"]
        # what trains, and AdamW's state, is fp32; Llama computes in bf16, its base frozen in
        # bf16 under LoRA (RiM's, pause's and CODI's recipes)
        assert stage["weights_dtype"] == stage["optimizer_state_dtype"] == "float32"
        llama = "llama" in recipe.name
        lora = cfg.method.name in ("rim", "pause", "codi")  # the recipes that freeze the base
        assert stage["frozen_dtype"] == ("bfloat16" if llama and lora else "float32" if lora else None)
        assert stage["compute_dtype"] == ("bfloat16" if llama or lora else "float32")
    if cfg.method.name == "rim" and "gsm8k" in recipe.name:  # elsewhere the baselines' budget
        stage1, stage2 = plan["stages"]
        # 6 and 2 epochs of ceil(1000 / 128) = 8 steps (the last, incomplete batch counts)
        assert stage1["steps"] == 48 and stage2["steps"] == 16
        assert stage2["dropout"]["lora"] > stage1["dropout"]["lora"]
    if cfg.method.name == "coconut":
        assert {s["optimizer_reset"] for s in plan["stages"]} == {"epoch"}
        assert plan["stages"][-1]["name"] == "coconut-final"
    if cfg.method.name == "icot":  # 8 CoT tokens an epoch, a fresh AdamW as the count grows
        (stage,) = plan["stages"]
        assert "0 + 8/epoch" in stage["curriculum"]
        assert "when the count grows" in stage["curriculum"]


def test_dry_run_prints_the_plan_as_json(local, capsys):
    models, train = local
    recipe = REPO / "configs" / "recipes" / "prosqa-gpt2-coconut.yaml"
    assert main(["train", str(recipe), "--dry-run", "--json", *overrides(recipe, models, train)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in plan["stages"]] == [f"coconut{k}" for k in range(7)] + ["coconut-final"]
    for stage in plan["stages"]:
        assert {
            "name",
            "steps",
            "lr",
            "dropout",
            "effective_batch",
            "weights_dtype",
            "compute_dtype",
            "optimizer_state_dtype",
        } <= set(stage)
    # 5 and 15 epochs of ceil(1000 / 128) = 8 steps (the last, incomplete batch counts)
    assert plan["stages"][0]["steps"] == 40 and plan["stages"][-1]["steps"] == 120
    assert plan["data"]["test"] == "../shared/data/prosqa/test.json" and plan["select"] == "best"


@pytest.mark.parametrize("stem", ["gsm8k-aug-gpt2", "gsm8k-aug-llama-3.2-1b", "prosqa-gpt2", "prontoqa-gpt2"])
def test_pause_and_rim_train_the_same_steps_and_the_baselines_on_the_coconut_sets(stem, local):
    """Pause is RiM's stage 2 for RiM's whole budget; where the paper gives RiM no budget
    (ProsQA, ProntoQA), RiM trains the baselines' optimizer steps, split 6 : 2 [ours]."""
    models, train = local
    steps, plans = {}, {}
    for method in ("rim", "pause", "nocot", "cot"):
        recipe = REPO / "configs" / "recipes" / f"{stem}-{method}.yaml"
        plans[method] = dry_run(load_config(recipe, overrides(recipe, models, train)))["stages"]
        steps[method] = sum(s["steps"] for s in plans[method])
    (pause,) = plans["pause"]
    stage1, stage2 = plans["rim"]
    assert steps["pause"] == steps["rim"]
    assert {k: pause[k] for k in ("settings", "lr", "warmup_steps", "dropout")} == {
        "settings": "stage2",
        "lr": stage2["lr"],
        "dropout": stage2["dropout"],
        "warmup_steps": int(0.04 * pause["steps"]),
    }
    if stem.startswith(("prosqa", "prontoqa")):
        assert steps["rim"] == steps["nocot"] == steps["cot"]
    else:  # the paper's 6 + 2 epochs
        assert steps["rim"] < steps["nocot"]
    assert stage1["steps"] == pytest.approx(3 * stage2["steps"], rel=0.02)  # 6 : 2
