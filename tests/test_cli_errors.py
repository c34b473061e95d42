"""Bad input: a one-line error naming the file and line or field, exit code 2, no run directory."""

import json
import subprocess
import sys

import pytest
from helpers import write_jsonl

from rim.cli import main

GOOD = {"question": "1 + 1 ?", "steps": ["1 + 1 = 2"], "answer": "2"}


def config(tmp_path, train, **extra):
    cfg = {
        "model": {
            "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2},
            "vocab_size": 64,
            "max_length": 64,
        },
        "data": {"train": str(train)},
        "method": {"name": "rim", "blocks": 2},
        "trainer": {"stage1": {"steps": 1}, "stage2": {"steps": 1}},
    }
    for key, value in extra.items():
        section, field = key.split("__")
        cfg[section][field] = value
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def run_main(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


CASES = {
    "malformed_json": ([GOOD, "{not json"], {}, "train.jsonl:2: malformed JSON"),
    "no_answer": ([GOOD, {"question": "q", "steps": []}], {}, "train.jsonl:2: record has no 'answer'"),
    "steps_not_strings": ([{**GOOD, "steps": [1, 2]}], {}, "train.jsonl:1: field 'steps'"),
    "steps_not_list": ([{**GOOD, "steps": "a b"}], {}, "train.jsonl:1: field 'steps'"),
    "empty_question": ([{**GOOD, "question": "  "}], {}, "train.jsonl:1: field 'question' is empty"),
    "too_long": (
        [GOOD, {**GOOD, "question": "1 + " * 40 + "1 ?"}],
        {"model__max_length": 32},
        "train.jsonl:2: stage1 layout needs",
    ),
    "missing_model": (
        [GOOD],
        {"model__name_or_path": "/nonexistent/model"},
        "/nonexistent/model: model directory not found",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_and_no_run_dir(tmp_path, capsys, case):
    rows, extra, expected = CASES[case]
    train = tmp_path / "train.jsonl"
    train.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    out = tmp_path / "run"
    code, err = run_main(["train", str(config(tmp_path, train, **extra)), "--out", str(out)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert expected in err
    assert not out.exists()


def test_unknown_config_key_names_the_field(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", [GOOD])
    out = tmp_path / "run"
    code, err = run_main(
        ["train", str(config(tmp_path, train)), "--out", str(out), "trainer.stage1.stepz=3"], capsys
    )
    assert code == 2 and len(err.splitlines()) == 1
    assert "unknown config key 'trainer.stage1.stepz'" in err
    assert not out.exists()


def test_wrong_type_names_the_field_and_file(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", [GOOD])
    path = config(tmp_path, train, method__blocks="many")
    code, err = run_main(["train", str(path), "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert f"{path}:1: field 'method.blocks' must be int" in err  # the file and its line


def test_json_list_record_errors_name_the_record(tmp_path, capsys):
    train = tmp_path / "train.json"
    train.write_text(json.dumps([GOOD, {"steps": [], "answer": "3"}]))
    code, err = run_main(["train", str(config(tmp_path, train)), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "train.json" in err and "record 1" in err and "'question'" in err


def test_real_process_exit_code_is_2(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("{broken\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rim.cli",
            "train",
            str(config(tmp_path, train)),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {train}:1: malformed JSON (Expecting property name enclosed in double quotes)"
    ]
    assert not (tmp_path / "run").exists()
