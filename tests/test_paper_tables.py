"""The paper-table sweeps (configs/bench/paper-*.yaml) run end to end on their CPU stand-ins:
every recipe of the table trains (tiny scratch models of the hub models' families, a few
generated examples, one step per stage), is scored, and the table puts the published number
beside ours with the difference."""

import json
from pathlib import Path

import pytest
import yaml

from rim.bench.accuracy import load_sweep
from rim.cli import main

REPO = Path(__file__).resolve().parents[1]
TABLES = {
    "paper-gsm8k-aug-gpt2": "gpt2",
    "paper-gsm8k-aug-llama-3.2-1b": "llama",
    "paper-prosqa-gpt2": "gpt2",
    "paper-prontoqa-gpt2": "gpt2",
}
BASE = ["nocot", "cot", "pause", "coconut", "rim"]
METHODS = {
    "paper-gsm8k-aug-gpt2": [*BASE, "icot", "codi"],
    "paper-gsm8k-aug-llama-3.2-1b": [*BASE, "codi"],
    "paper-prosqa-gpt2": BASE,
    "paper-prontoqa-gpt2": BASE,
}


def sweep_file(name: str) -> Path:
    return REPO / "configs" / "bench" / f"{name}.yaml"


@pytest.mark.parametrize("name", list(TABLES))
def test_paper_table_sweep_names_every_recipe_and_a_published_number(name):
    sweep = load_sweep(sweep_file(name))  # validates every run's config, trains nothing
    assert list(sweep.methods) == METHODS[name] and sweep.stand_in is None
    raw = yaml.safe_load(sweep_file(name).read_text())
    for method in METHODS[name]:
        recipe = (sweep_file(name).parent / raw["recipes"][method]).resolve()
        assert recipe.is_file() and recipe.stem.endswith(f"-{method}")
        assert name.removeprefix("paper-") in recipe.stem
        cfg = sweep.run_config(method, 0, {}, runs="/sweep/runs")
        assert cfg.method.name == method and cfg.model.name_or_path != "<stand-in>"
        assert method in raw["published"] and raw["published"][method]["source"]
    # the published GSM8k numbers of the RiM paper (docs/recipes.md)
    if name == "paper-gsm8k-aug-gpt2":
        assert {m: p.accuracy for m, p in sweep.published.items() if m != "pause"} == {
            "nocot": 15.4,
            "cot": 39.8,
            "coconut": 31.1,
            "rim": 33.6,
            "icot": 30.0,
            "codi": 43.7,
        }
    coconut = sweep.run_config("coconut", 3, {}, runs="/sweep/runs")
    if "gsm8k" in name:  # Coconut's stage 0 is this sweep's CoT run of the same seed
        assert coconut.model.init_from == "/sweep/runs/cot/seed3"


@pytest.mark.parametrize("name", list(TABLES))
def test_paper_table_runs_end_to_end_on_its_stand_in(name, tmp_path):
    out = tmp_path / "out"
    assert main(["bench", "accuracy", str(sweep_file(name)), "--out", str(out), "--stand-in"]) == 0
    summary = json.loads((out / "accuracy.json").read_text())
    assert summary["stand_in"] and summary["finished_runs"] == len(METHODS[name]) and summary["failed"] == []
    rows = {r["method"]: r for r in summary["rows"]}
    assert list(rows) == METHODS[name]
    for method, row in rows.items():
        run = out / "runs" / method / "seed0"
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved["model"].get("name_or_path") is None  # no hub model was asked for
        if "scratch" in saved["model"] and saved["model"].get("init_from") is None:
            assert saved["model"]["scratch"]["model_type"] == TABLES[name]
        assert 0.0 <= row["accuracy"] <= 1.0
        published = row["published"]
        if published is None:
            assert row["difference"] is None
        else:
            assert row["difference"] == pytest.approx(row["accuracy"] - published)
        assert row["published_source"]
    stages = [
        json.loads(line)
        for line in (out / "runs" / "rim" / "seed0" / "metrics.jsonl").read_text().splitlines()
        if '"event": "stage"' in line
    ]
    assert [s["stage"] for s in stages] == ["stage1", "stage2"]
    assert sum(s["plan"]["steps"] for s in stages) >= 1  # the baselines' one step, split
    table = (out / "accuracy.md").read_text()
    assert "published (%)" in table and "ours - published" in table and "stand-in" in table
    # resumable: a second call trains nothing
    assert (
        main(["bench", "accuracy", str(sweep_file(name)), "--out", str(out), "--stand-in", "--report-only"])
        == 0
    )


def test_stand_in_needs_a_stand_in_section(capsys):
    assert (
        main(
            [
                "bench",
                "accuracy",
                str(REPO / "configs" / "bench" / "accuracy-chain-cpu.yaml"),
                "--out",
                "/nonexistent/out",
                "--stand-in",
            ]
        )
        == 2
    )
    assert "--stand-in needs a 'stand_in' section" in capsys.readouterr().err
