"""The correctness probe: AUROC, selection among the blocks, adaptive compute."""

import json

import pytest
import torch

from rim.analysis.probe import adaptive_table, auroc
from rim.cli import main


def test_auroc_counts_ranked_pairs_and_ties():
    labels = torch.tensor([1, 1, 0, 0])
    assert auroc(torch.tensor([0.9, 0.8, 0.2, 0.1]), labels) == 1.0
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), labels) == 0.0
    assert auroc(torch.tensor([0.5, 0.5, 0.5, 0.5]), labels) == 0.5
    assert auroc(torch.tensor([0.9, 0.1]), torch.tensor([1, 1])) is None


def test_adaptive_answers_after_the_first_trusted_block():
    confidence = torch.tensor([[0.9, 0.1, 0.1], [0.2, 0.95, 0.3], [0.1, 0.2, 0.3]])
    right = torch.tensor([[True, False, False], [False, True, True], [False, False, True]])
    low, high = adaptive_table(confidence, right, [0.5, 0.99])
    assert low == {"threshold": 0.5, "mean_blocks": pytest.approx(2.0), "accuracy": 1.0}
    assert high["mean_blocks"] == 3.0 and high["accuracy"] == pytest.approx(2 / 3)  # last block


def test_probe_fit_then_select_and_adaptive(trained_run, capsys, tmp_path):
    run, _ = trained_run
    # the run answers every test question right: make every other gold answer wrong, so that
    # the probe has right and wrong answers to learn from (one class alone is refused)
    rows = [json.loads(line) for line in (run.parent / "test.jsonl").read_text().splitlines()]
    data = tmp_path / "mixed.jsonl"
    data.write_text(
        "".join(json.dumps({**r, "answer": "never"} if i % 2 else r) + "\n" for i, r in enumerate(rows))
    )
    assert main(["probe", "fit", str(run), "--data", str(data)]) == 0
    saved = json.loads((run / "model" / "probe.json").read_text())
    assert saved["n_fit"] == 100 and saved["n_test"] == 100 and saved["layer"] == -1
    assert len(saved["auroc_per_block"]) == 2
    assert all(a is None or 0 <= a <= 1 for a in saved["auroc_per_block"])
    assert saved["selected_accuracy"] <= saved["any_block_accuracy"]
    assert "AUROC after block 1" in capsys.readouterr().out
    assert main(["eval", str(run), "--data", str(data), "--select", "probe", "--adaptive", "--json"]) == 0
    assert "probe_selected_accuracy" in capsys.readouterr().out
    adaptive = json.loads((run / "adaptive" / "adaptive.json").read_text())
    assert [r["threshold"] for r in adaptive["adaptive"]][0] == 0.3
    assert all(1 <= r["mean_blocks"] <= 2 for r in adaptive["adaptive"])
    assert 0 <= adaptive["probe_selected_accuracy"] <= 1
