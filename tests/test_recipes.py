"""Every shipped recipe validates and plans (`rim train --dry-run`) without the hub: the hub
models are replaced by local config files of the same architecture, the data by a small file."""

import json
from pathlib import Path

import pytest
from helpers import write_jsonl
from transformers import AutoConfig

from rim.cli import main
from rim.config import load_config
from rim.data.generators.chain import generate_chain
from rim.dryrun import dry_run

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "configs" / "recipes").glob("*.yaml"))
SHAPES = {  # the architectures of the hub models (config only: no weights are needed)
    "gpt2": ("gpt2", {}),
    "llama-3.2-1b": ("llama", {"num_hidden_layers": 16, "hidden_size": 2048,
                               "intermediate_size": 8192, "num_attention_heads": 32,
                               "num_key_value_heads": 8}),
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
    for stage in plan["stages"]:
        assert stage["steps"] > 0 and stage["effective_batch"] == 128 and stage["lr"] > 0
        assert stage["dropout"]
    if cfg.method.name == "rim":
        stage1, stage2 = plan["stages"]
        assert stage1["steps"] == 47 and stage2["steps"] == 16  # 6 and 2 epochs of 1000 / 128
        assert stage2["dropout"]["lora"] > stage1["dropout"]["lora"]
    if cfg.method.name == "coconut":
        assert {s["optimizer_reset"] for s in plan["stages"]} == {"epoch"}
        assert plan["stages"][-1]["name"] == "coconut-final"


def test_dry_run_prints_the_plan_as_json(local, capsys):
    models, train = local
    recipe = REPO / "configs" / "recipes" / "prosqa-gpt2-coconut.yaml"
    assert main(["train", str(recipe), "--dry-run", "--json",
                 *overrides(recipe, models, train)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in plan["stages"]] == [f"coconut{k}" for k in range(7)] + [
        "coconut-final"]
    for stage in plan["stages"]:
        assert {"name", "steps", "lr", "dropout", "effective_batch"} <= set(stage)
    assert plan["stages"][0]["steps"] == 40 and plan["stages"][-1]["steps"] == 118  # 5, 15 epochs
