"""Files the user names are never overwritten without --force nor written into a model
directory; `rim probe fit` says it replaces a probe and refuses labels of one class; `rim infer
--file` answers line N on line N (issue 17)."""

import io
import json
from pathlib import Path

import pytest
import torch

from rim.cli import main
from rim.common.errors import RimInputError
from rim.common.outputs import check_output_file, model_directory_above


def test_an_output_file_is_new_or_forced_and_never_in_a_model_directory(tmp_path):
    (tmp_path / "old.jsonl").write_text("keep")
    with pytest.raises(RimInputError, match="old.jsonl: exists; use --force to replace it"):
        check_output_file(tmp_path / "old.jsonl", force=False)
    assert check_output_file(tmp_path / "old.jsonl", force=True) == tmp_path / "old.jsonl"
    assert check_output_file(tmp_path / "new" / "p.jsonl", force=False)
    (tmp_path / "adir").mkdir()
    with pytest.raises(RimInputError, match="adir: is a directory"):
        check_output_file(tmp_path / "adir", force=True)
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "rim.json").write_text("{}")
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)  # a run in training: no rim.json yet
    for name in ("config.yaml", "versions.json"):
        (run / name).write_text("{}")
    for inside in (
        exported / "config.json",
        exported / "sub" / "p.jsonl",
        run / "model" / "p.jsonl",
        run / "model" / ".." / "model" / "x.json",
    ):
        with pytest.raises(RimInputError, match="inside the model directory"):
            check_output_file(inside, force=True)
    assert model_directory_above(run / "p.jsonl") is None  # beside model/ is fine
    assert model_directory_above(tmp_path / "model" / "p.jsonl") is None  # not a run's


def half_wrong(data: Path, out: Path) -> Path:
    """`data` with every other gold answer made wrong (the tiny run answers all of it right)."""
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    out.write_text(
        "".join(json.dumps({**r, "answer": "never"} if i % 2 else r) + "\n" for i, r in enumerate(rows))
    )
    return out


def test_eval_save_predictions_keeps_files_and_the_model(trained_run, tmp_path, capsys):
    run, _ = trained_run
    data = run.parent / "test.jsonl"
    preds = tmp_path / "preds.jsonl"
    preds.write_text("mine\n")
    args = ["eval", str(run), "--data", str(data), "--limit", "2", "--json", "--save-predictions", str(preds)]
    assert main(args) == 2
    assert "preds.jsonl: exists; use --force to replace it" in capsys.readouterr().err
    assert preds.read_text() == "mine\n"
    assert main([*args, "--force"]) == 0
    assert len(preds.read_text().splitlines()) == 2
    config = run / "model" / "config.json"
    before = config.read_bytes()
    capsys.readouterr()
    args[-1] = str(config)
    assert main([*args, "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "inside the model directory" in err
    assert config.read_bytes() == before


def test_export_never_writes_into_a_model_directory(trained_run, capsys):
    run, _ = trained_run
    assert main(["export", str(run), str(run / "model" / "exported")]) == 2
    assert "inside the model directory" in capsys.readouterr().err
    assert not (run / "model" / "exported").exists()


def test_probe_fit_says_it_replaces_a_probe_and_refuses_one_class(trained_run, tmp_path, capsys, monkeypatch):
    run, _ = trained_run
    data = half_wrong(run.parent / "test.jsonl", tmp_path / "mixed.jsonl")
    assert main(["probe", "fit", str(run), "--data", str(data)]) == 0
    capsys.readouterr()
    assert main(["probe", "fit", str(run), "--data", str(data)]) == 0
    assert f"replacing the probe in {run / 'model'}" in capsys.readouterr().err
    saved = (run / "model" / "probe.safetensors").read_bytes()
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(
        "".join(json.dumps({"question": f"{i} +1 ?", "answer": "never"}) + "\n" for i in range(6))
    )
    assert main(["probe", "fit", str(run), "--data", str(wrong)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{wrong}: all 6 answers the probe would fit on (3 records x 2 blocks) are wrong" in err
    monkeypatch.setattr(
        "rim.analysis.probe.correctness",
        lambda answers, records, checker: torch.ones(len(answers), len(answers[0]), dtype=torch.bool),
    )
    assert main(["probe", "fit", str(run), "--data", str(data)]) == 2
    assert "are right: it learns from right and wrong ones" in capsys.readouterr().err
    assert (run / "model" / "probe.safetensors").read_bytes() == saved  # nothing replaced


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3 +1 ?\n\n7 +2 ?\n", ":2: blank question"),
        ("3 +1 ?\n7 +2 ?\n   \n", ":3: blank question"),
        ("", ": empty: no questions"),
        ("\n\n", ": empty: no questions"),
    ],
)
@pytest.mark.parametrize("stdin", [False, True])
def test_infer_file_refuses_blank_lines_and_empty_files(
    text, expected, stdin, trained_run, tmp_path, capsys, monkeypatch
):
    run, _ = trained_run
    (tmp_path / "q.txt").write_text(text)
    if stdin:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
    source = "<stdin>" if stdin else str(tmp_path / "q.txt")
    assert main(["infer", str(run), "--file", "-" if stdin else source]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == captured.err.strip().splitlines()[0]
    assert captured.err.startswith(f"error: {source}{expected}")


def test_infer_file_answers_one_line_per_line(trained_run, tmp_path, capsys):
    run, _ = trained_run
    (tmp_path / "q.txt").write_text("3 +1 ?\n  7 +2 ?  \n0 +3 ?\n")
    assert main(["infer", str(run), "--file", str(tmp_path / "q.txt")]) == 0
    answers = capsys.readouterr().out.splitlines()
    assert len(answers) == 3
    assert main(["infer", str(run), "7 +2 ?"]) == 0
    assert capsys.readouterr().out.strip() == answers[1]
