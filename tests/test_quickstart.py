"""The quickstart's plumbing on a few steps: both runs train side by side and are compared."""

import json

from rich.console import Console

from rim.cli.quickstart import quickstart


def test_quickstart_writes_results_for_both_methods(tmp_path):
    out = tmp_path / "qs"
    results = quickstart(
        out,
        Console(file=open(tmp_path / "console.txt", "w")),
        train_size=200,
        test_size=20,
        nocot_steps=4,
        overrides=("trainer.stage1.steps=3", "trainer.stage2.steps=2"),
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved == results
    assert set(saved) == {"task", "test_seen_in_train", "wall_seconds", "methods"}
    assert saved["test_seen_in_train"] == 0  # test questions are held out of training
    assert set(saved["methods"]) == {"rim", "nocot"}
    for row in saved["methods"].values():
        assert 0 <= row["accuracy"] <= 1 and row["ttft_ms"] > 0
    assert len(saved["methods"]["rim"]["per_block"]) == 4
    assert (out / "rim" / "model" / "model.safetensors").is_file()
    console = (tmp_path / "console.txt").read_text()
    assert "rim" in console and "held out of training" in console
