"""A short real training run: the loss falls, accuracy beats chance, the run directory is complete."""

import json

import yaml


def test_training_lowers_the_loss_and_beats_chance(trained_run):
    run, result = trained_run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]  # the step rows
    stage1 = [r["loss"] for r in rows if r["stage"] == "stage1"]
    assert stage1[-1] < 0.5 * stage1[0]
    assert {r["stage"] for r in rows} == {"stage1", "stage2"}
    # one operation mod 10 has 10 equally likely answers: chance is 10%
    assert result["accuracy"] > 0.3
    assert len(result["per_block"]) == 2
    assert result["any_block_accuracy"] >= result["accuracy"]


def test_run_directory_is_self_contained(trained_run):
    run, _ = trained_run
    for name in (
        "config.yaml",
        "versions.json",
        "metrics.jsonl",
        "eval.json",
        "model/model.safetensors",
        "model/tokenizer.json",
        "model/rim.json",
        "checkpoints/stage1/model.safetensors",
        "checkpoints/stage2/model.safetensors",
    ):
        assert (run / name).is_file(), name
    assert any((run / "tb").rglob("events.out.tfevents*"))
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["method"]["blocks"] == 2
    assert "torch" in json.loads((run / "versions.json").read_text())
    assert json.loads((run / "eval.json").read_text())["accuracy"] >= 0
