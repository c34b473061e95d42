"""Every bad input of the command line: exit code 2, one line on stderr naming the file, line or
field, and nothing written (no run directory, no changed file)."""

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import write_jsonl

from rim.cli import main

GOOD = {"question": "1 + 1 ?", "steps": ["1 + 1 = 2"], "answer": "2"}
CONFIG = {
    "model": {
        "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2},
        "vocab_size": 64,
        "max_length": 64,
    },
    "data": {"train": "train.jsonl"},
    "method": {"name": "rim", "blocks": 2},
    "trainer": {"stage1": {"steps": 1}, "stage2": {"steps": 1}},
}


def setup(
    tmp: Path,
    rows=(GOOD,),
    *,
    runs: dict[str, Path] | None = None,
    files: dict[str, bytes | int | None] | None = None,
    **sections,
) -> None:
    """A run config `run.yaml` over `train.jsonl` (rows), sections replaced by `sections`;
    `runs` copies run directories into `tmp` (name: source), then `files` (path: content)
    writes bytes, truncates a file to an int of bytes, or (None) replaces a file by a
    directory."""
    (tmp / "train.jsonl").write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    )
    (tmp / "run.yaml").write_text(json.dumps({**CONFIG, **sections}))
    (tmp / "inc.yaml").write_text("trainer:\n  stage1: {steps: 1}\n  lrr: 3\n")
    (tmp / "top.yaml").write_text(
        "include: inc.yaml\n"
        + "".join(f"{key}: {json.dumps(CONFIG[key])}\n" for key in ("model", "data", "method"))
    )
    (tmp / "data.jsonl").write_text("".join(json.dumps(GOOD) + "\n" for _ in range(3)))
    (tmp / "not-a-dir").write_text("a file")
    (tmp / "used").mkdir()
    (tmp / "used" / "keep.txt").write_text("x")
    (tmp / "empty-dir").mkdir()
    (tmp / "empty-dir" / "notes.txt").write_text("nothing")
    (tmp / "done" / "model").mkdir(parents=True)  # a model directory rim must never write into
    (tmp / "done" / "model" / "rim.json").write_text("{}")
    (tmp / "blank.txt").write_text("3 +1 ?\n\n7 +2 ?\n")
    (tmp / "empty.txt").write_text("")
    (tmp / "long.jsonl").write_text(json.dumps({**GOOD, "question": "1 + " * 60 + "1 ?"}) + "\n")
    (tmp / "long.txt").write_text("1 + " * 60 + "1 ?\n")
    (tmp / "sweep.yaml").write_text(
        json.dumps({"config": CONFIG, "methods": ["nope"], "task": {"name": "chain"}})
    )
    (tmp / "include-number.yaml").write_text("include: [inc.yaml, 5]\n")
    (tmp / "include-missing.yaml").write_text("include: [missing.yaml]\n")
    (tmp / "include-dir.yaml").write_text("include: [empty-dir]\n")
    for name, source in (runs or {}).items():
        shutil.copytree(source, tmp / name, ignore=shutil.ignore_patterns("tb", ".rim.lock"))
    for name, content in (files or {}).items():
        if isinstance(content, bytes):
            (tmp / name).write_bytes(content)
        elif isinstance(content, int):
            os.truncate(tmp / name, content)
        else:
            (tmp / name).unlink()
            (tmp / name).mkdir()


TRAIN = ["train", "run.yaml", "--out", "out"]
RESUME = ["train", "part/config.yaml", "--out", "part", "--resume"]
PART = {"part": "unfinished_run"}  # a copy of the fixture's run, resumable
CHECKPOINT = "part/checkpoints/step-00000002"  # its newest checkpoint
BROKEN_WEIGHTS = {"runs": {"brun": "RUN"}, "files": {"brun/model/model.safetensors": 100}}
GOOD_LINE = (json.dumps(GOOD) + "\n").encode()
LATIN1 = b'{"question": "caf\xe9 ?", "steps": [], "answer": "2"}\n'  # not UTF-8
# name: (argv, setup keywords, what the one line must say)
CASES = {
    "malformed_json": (TRAIN, {"rows": [GOOD, "{not json"]}, "train.jsonl:2: malformed JSON"),
    "no_answer": (TRAIN, {"rows": [{"question": "q"}]}, "train.jsonl:1: record has no 'answer'"),
    "steps_not_strings": (TRAIN, {"rows": [{**GOOD, "steps": [1]}]}, "train.jsonl:1: field 'steps'"),
    "steps_not_list": (TRAIN, {"rows": [{**GOOD, "steps": "a"}]}, "train.jsonl:1: field 'steps'"),
    "empty_question": (TRAIN, {"rows": [{**GOOD, "question": " "}]}, "field 'question' is empty"),
    "too_long_for_context": (
        TRAIN,
        {"rows": [{**GOOD, "question": "1 + " * 60 + "1 ?"}]},
        "train.jsonl:1: stage1 layout needs",
    ),
    "missing_model": (
        TRAIN,
        {"model": {"name_or_path": "/nonexistent/model"}},
        "/nonexistent/model: model directory not found",
    ),
    "unknown_override": ([*TRAIN, "trainer.lrr=1"], {}, "command line: trainer.lrr=1: unknown"),
    "unknown_included": (["train", "top.yaml", "--out", "out"], {}, "inc.yaml:3 (included from"),
    "wrong_type": ([*TRAIN, "method.blocks=many"], {}, "field 'method.blocks' must be int"),
    "empty_blocks": ([*TRAIN, "method.block_size=0"], {}, "'method.block_size' must be at least 1"),
    "no_blocks": ([*TRAIN, "method.blocks=0"], {}, "'method.blocks' must be at least 1"),
    "unknown_method": ([*TRAIN, "method.name=magic"], {}, "'method.name' must be one of"),
    "unknown_checker": ([*TRAIN, "data.checker=fuzzy"], {}, "'data.checker' must be one of"),
    "warmup_out_of_range": ([*TRAIN, "trainer.stage2.warmup=2"], {}, "trainer.stage2.warmup"),
    "fractional_batch": ([*TRAIN, "trainer.batch_size=1.5"], {}, "'trainer.batch_size' must be int"),
    "override_not_key_value": ([*TRAIN, "trainer"], {}, "is not key=value"),
    "setting_of_another_method": (
        [*TRAIN, "method={name: nocot, blocks: 4}"],
        {},
        "unknown config key 'method.blocks'",
    ),
    "best_without_eval": ([*TRAIN, "trainer.select=best"], {}, "needs trainer.eval_every"),
    "keep_best_is_select": ([*TRAIN, "trainer.keep_best=true"], {}, "set trainer.select to best"),
    "valid_is_eval": ([*TRAIN, "data.valid=x.jsonl"], {}, "data.eval is the validation split"),
    "init_from_and_name": ([*TRAIN, "model.init_from=x", "model.name_or_path=y"], {}, "exclude each other"),
    "bad_mixed_precision": ([*TRAIN, "trainer.mixed_precision=fp8"], {}, "mixed_precision"),
    "tracker_not_installed": (
        [*TRAIN, "trainer.report_to=[dvclive]"],
        {},
        "trainer.report_to: dvclive is not installed",
    ),
    "packing_coconut": ([*TRAIN, "trainer.packing=true", "method={name: coconut}"], {}, "cannot pack"),
    "flex_attention_on_cpu": (
        [*TRAIN, "model.attn_implementation=flex_attention"],
        {},
        "FlexAttention trains on a GPU only",
    ),
    "out_is_a_file": (["train", "run.yaml", "--out", "not-a-dir"], {}, "not-a-dir: is a file"),
    "out_is_used": (["train", "run.yaml", "--out", "used"], {}, "used: run directory exists"),
    "config_missing": (["train", "nope.yaml", "--out", "out"], {}, "config file not found"),
    "data_missing": ([*TRAIN, "data.train=missing.jsonl"], {}, "missing.jsonl: data file not found"),
    "data_dir_without_dataset": ([*TRAIN, "data.train=empty-dir"], {}, "holds no dataset"),
    "train_without_out": (["train", "run.yaml"], {}, "--out is required"),
    "eval_limit_zero": (
        ["eval", "RUN", "--data", "data.jsonl", "--limit", "0"],
        {},
        "--limit: must be at least 1",
    ),
    "eval_limit_negative": (
        ["eval", "RUN", "--data", "data.jsonl", "--limit", "-1"],
        {},
        "--limit: must be at least 1",
    ),
    "eval_batch_zero": (
        ["eval", "RUN", "--data", "data.jsonl", "--batch-size", "0"],
        {},
        "--batch-size: must be at least 1",
    ),
    "eval_not_a_run": (["eval", "used", "--data", "data.jsonl"], {}, "not a rim run"),
    "eval_question_too_long": (
        ["eval", "RUN", "--data", "long.jsonl"],
        {},
        "long.jsonl:1: prompt plus answer budget",
    ),
    "infer_question_too_long": (
        ["infer", "RUN", "--file", "long.txt"],
        {},
        "long.txt:1: prompt plus answer budget",
    ),
    "infer_nothing_to_answer": (["infer", "RUN"], {}, "give a question or --file"),
    "infer_file_missing": (["infer", "RUN", "--file", "none.txt"], {}, "none.txt: file not found"),
    "generate_zero": (
        ["data", "generate", "chain", "--n", "0", "--out", "g.jsonl"],
        {},
        "--n: must be at least 1",
    ),
    "generate_negative": (
        ["data", "generate", "chain", "--n", "-3", "--out", "g.jsonl"],
        {},
        "--n: must be at least 1",
    ),
    "generate_over_a_file": (
        ["data", "generate", "chain", "--n", "5", "--out", "data.jsonl"],
        {},
        "data.jsonl: exists; use --force",
    ),
    "generate_unknown_task": (
        ["data", "generate", "sudoku", "--n", "5", "--out", "g.jsonl"],
        {},
        "unknown task 'sudoku'",
    ),
    "generate_unknown_option": (
        ["data", "generate", "chain", "--n", "5", "--out", "g.jsonl", "--option", "colour=red"],
        {},
        "takes no option colour",
    ),
    "latency_bad_batch": (
        ["bench", "latency", "--batches", "0", "--out", "lat"],
        {},
        "field 'batches' must all be at least 1",
    ),
    "latency_bad_device": (
        ["bench", "latency", "--device", "tpu", "--out", "lat"],
        {},
        "field 'device' must be cpu, cuda or cuda:N",
    ),
    "sweep_unknown_method": (["bench", "accuracy", "sweep.yaml", "--out", "sw"], {}, "unknown method 'nope'"),
    "predictions_over_a_file": (
        ["eval", "RUN", "--data", "data.jsonl", "--save-predictions", "data.jsonl"],
        {},
        "data.jsonl: exists; use --force",
    ),
    "predictions_into_model": (
        ["eval", "RUN", "--data", "data.jsonl", "--save-predictions", "done/model/config.json", "--force"],
        {},
        "inside the model directory",
    ),
    "generate_into_model": (
        ["data", "generate", "chain", "--n", "5", "--out", "done/model/g.jsonl", "--force"],
        {},
        "inside the model directory",
    ),
    "export_into_model": (["export", "RUN", "done/model/exported"], {}, "inside the model directory"),
    "probe_one_class": (
        ["probe", "fit", "RUN", "--data", "train.jsonl"],
        {"rows": [{"question": "3 +1 ?", "answer": "never"}] * 4},
        "train.jsonl: all 4 answers the probe would fit on",
    ),
    "infer_blank_line": (["infer", "RUN", "--file", "blank.txt"], {}, "blank.txt:2: blank question"),
    "infer_empty_file": (["infer", "RUN", "--file", "empty.txt"], {}, "empty.txt: empty"),
    # damaged model files: one line naming the file
    "infer_truncated_weights": (
        ["infer", "brun", "3 +1 ?"],
        BROKEN_WEIGHTS,
        "brun/model/model.safetensors: truncated or corrupt weights",
    ),
    "eval_corrupt_weights": (
        ["eval", "brun", "--data", "data.jsonl"],
        {"runs": {"brun": "RUN"}, "files": {"brun/model/model.safetensors": b"garbage"}},
        "brun/model/model.safetensors: truncated or corrupt weights",
    ),
    "explain_truncated_weights": (
        ["explain", "brun", "3 +1 ?"],
        BROKEN_WEIGHTS,
        "brun/model/model.safetensors: truncated or corrupt weights",
    ),
    "explain_truncated_stage1": (
        ["explain", "brun", "3 +1 ?"],
        {"runs": {"brun": "RUN"}, "files": {"brun/checkpoints/stage1/model.safetensors": 5000}},
        "stage1/model.safetensors: truncated or corrupt weights",
    ),
    "export_truncated_weights": (
        ["export", "brun", "exported"],
        BROKEN_WEIGHTS,
        "brun/model/model.safetensors: truncated or corrupt weights",
    ),
    "probe_truncated_weights": (
        ["probe", "fit", "brun", "--data", "data.jsonl"],
        BROKEN_WEIGHTS,
        "brun/model/model.safetensors: truncated or corrupt weights",
    ),
    "infer_corrupt_model_config": (
        ["infer", "brun", "3 +1 ?"],
        {"runs": {"brun": "RUN"}, "files": {"brun/model/config.json": b"{x"}},
        "brun/model/config.json:1: malformed JSON",
    ),
    "resume_corrupt_progress": (
        RESUME,
        {"runs": PART, "files": {f"{CHECKPOINT}/progress.json": b"{x"}},
        "progress.json:1: malformed JSON",
    ),
    "resume_wrong_progress": (
        RESUME,
        {"runs": PART, "files": {f"{CHECKPOINT}/progress.json": b'{"step": "x"}'}},
        "not a checkpoint position (step:",
    ),
    "resume_truncated_weights": (
        RESUME,
        {"runs": PART, "files": {f"{CHECKPOINT}/model.safetensors": 100}},
        "model.safetensors: truncated or corrupt",
    ),
    "resume_truncated_optimizer": (
        RESUME,
        {"runs": PART, "files": {f"{CHECKPOINT}/optimizer.bin": 100}},
        "optimizer.bin: truncated or corrupt",
    ),
    "resume_metrics_unwritable": (
        RESUME,
        {"runs": PART, "files": {"part/metrics.jsonl": None}},
        "part/metrics.jsonl: cannot be written",
    ),
    # bytes that are not UTF-8, named by line
    "train_not_utf8": (
        TRAIN,
        {"files": {"train.jsonl": GOOD_LINE + LATIN1}},
        "train.jsonl:2: byte 0xe9 at column 18 is not UTF-8",
    ),
    "eval_not_utf8": (
        ["eval", "RUN", "--data", "latin.jsonl"],
        {"files": {"latin.jsonl": LATIN1}},
        "latin.jsonl:1: byte 0xe9",
    ),
    "stats_not_utf8": (
        ["data", "stats", "latin.jsonl"],
        {"files": {"latin.jsonl": LATIN1}},
        "latin.jsonl:1: byte 0xe9",
    ),
    "infer_file_not_utf8": (
        ["infer", "RUN", "--file", "latin.txt"],
        {"files": {"latin.txt": b"3 +1 ?\n7 \xff ?\n"}},
        "latin.txt:2: byte 0xff at column 3",
    ),
    "infer_stdin_not_utf8": (
        ["infer", "RUN", "--file", "-"],
        {"stdin": b"3 +1 ?\n7 \xff ?\n"},
        "<stdin>:2: byte 0xff",
    ),
    "config_not_utf8": (
        ["train", "latin.yaml", "--out", "out"],
        {"files": {"latin.yaml": b"trainer: {seed: 1}  # caf\xe9\n"}},
        "latin.yaml:1: byte 0xe9",
    ),
    # an output that cannot be created, refused before any work
    "latency_out_through_a_file": (
        ["bench", "latency", "--out", "not-a-dir/x"],
        {},
        "not-a-dir/x: cannot be created: not-a-dir is a file",
    ),
    "train_out_in_proc": (
        ["train", "run.yaml", "--out", "/proc/rim-run"],
        {},
        "/proc/rim-run: cannot be created: nothing can be created in /proc",
    ),
    "export_out_through_a_file": (
        ["export", "RUN", "not-a-dir/x"],
        {},
        "not-a-dir is a file, not a directory; choose another OUT",
    ),
    "generate_out_in_proc": (
        ["data", "generate", "chain", "--n", "5", "--out", "/proc/g.jsonl"],
        {},
        "/proc/g.jsonl: cannot be created",
    ),
    "quickstart_out_through_a_file": (
        ["quickstart", "--out", "not-a-dir/q"],
        {},
        "not-a-dir/q: cannot be created",
    ),
    "accuracy_out_through_a_file": (
        ["bench", "accuracy", "sweep.yaml", "--out", "not-a-dir/s"],
        {},
        "not-a-dir/s: cannot be created",
    ),
    "step_out_in_proc": (
        ["bench", "step", "--out", "/proc/rim-step"],
        {},
        "/proc/rim-step: cannot be created",
    ),
    "memory_out_through_a_file": (
        ["bench", "memory", "--out", "not-a-dir/m"],
        {},
        "not-a-dir/m: cannot be created",
    ),
    "runs_out_in_proc": (
        ["bench", "runs", "RUN", "--out", "/proc/rim-runs"],
        {},
        "/proc/rim-runs: cannot be created",
    ),
    "predictions_through_a_file": (
        ["eval", "RUN", "--data", "data.jsonl", "--save-predictions", "not-a-dir/p.jsonl"],
        {},
        "choose another --save-predictions",
    ),
    # option values of the wrong type, includes that are not files
    "generate_option_wrong_type": (
        ["data", "generate", "chain", "--n", "5", "--out", "g.jsonl", "--option", "ops=abc"],
        {},
        "task 'chain': option ops='abc' is not a valid value",
    ),
    "gen_source_option_wrong_type": (
        [*TRAIN, "data.train=gen:chain?n=3&ops=2.5"],
        {},
        "gen:chain?n=3&ops=2.5: task 'chain': option ops=2.5",
    ),
    "include_a_number": (
        ["train", "include-number.yaml", "--out", "out"],
        {},
        "include-number.yaml: field 'include' must be a file name",
    ),
    "include_missing": (
        ["train", "include-missing.yaml", "--out", "out"],
        {},
        "missing.yaml: config file not found (included from include-missing.yaml)",
    ),
    "include_a_directory": (
        ["train", "include-dir.yaml", "--out", "out"],
        {},
        "empty-dir: is a directory, not a config file (included from",
    ),
    "probe_layer_out_of_range": (
        ["probe", "fit", "RUN", "--data", "data.jsonl", "--layer", "99"],
        {},
        "--layer 99: the model has 2 layers",
    ),
    "unknown_command": (["bogus"], {}, "invalid choice: 'bogus'"),
}


def snapshot(root: Path) -> dict[str, tuple[int, int] | str]:
    """Every path under `root`, a file with its size and time (a directory's own time changes
    when a lock file comes and goes, which writes nothing)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else "directory"
        for p in root.rglob("*")
    }


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory) -> Path:
    """A tiny run stopped before its model was written: checkpoints to resume from."""
    from rim.common.progress import Reporter
    from rim.config import config_from_dict
    from rim.training.run import run_training

    root = tmp_path_factory.mktemp("unfinished")
    write_jsonl(root / "train.jsonl", [GOOD])
    cfg = config_from_dict(
        {
            **CONFIG,
            "data": {"train": str(root / "train.jsonl")},
            "trainer": {**CONFIG["trainer"], "save_every": 1},
        }
    )
    run_training(cfg, root / "run", Reporter(enabled=False))
    shutil.rmtree(root / "run" / "model")
    return root / "run"


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch, trained_run, request):
    argv, keywords, expected = CASES[case]
    keywords = dict(keywords)
    if "stdin" in keywords:  # bytes on standard input
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(keywords.pop("stdin"))))
    keywords["runs"] = {
        name: trained_run[0] if source == "RUN" else request.getfixturevalue(source)
        for name, source in keywords.get("runs", {}).items()
    }
    setup(tmp_path, **keywords)
    capsys.readouterr()  # what building a fixture printed
    monkeypatch.chdir(tmp_path)
    argv = [str(trained_run[0]) if a == "RUN" else a for a in argv]
    before = snapshot(tmp_path)
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert expected in err, err
    assert snapshot(tmp_path) == before  # nothing written, nothing changed


def test_at_least_sixty_five_cases():
    assert len(CASES) >= 65


def test_progress_lines_when_stdout_is_a_file(tmp_path):
    import subprocess
    import sys

    rows = [{"question": f"{i} + 1 ?", "steps": [], "answer": str(i + 1)} for i in range(40)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    config = {
        **CONFIG,
        "data": {"train": str(tmp_path / "train.jsonl")},
        "trainer": {"batch_size": 8, "log_every": 2, "stage1": {"steps": 4}, "stage2": {"steps": 4}},
    }
    (tmp_path / "run.yaml").write_text(json.dumps(config))
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "rim.cli",
                "train",
                str(tmp_path / "run.yaml"),
                "--out",
                str(tmp_path / "run"),
            ],
            stdout=log,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert lines[0].startswith("rim train: rim on 40 examples;") and "effective batch 8" in lines[0]
    progress = [line for line in lines if " step " in line]
    assert [line.split()[:3] for line in progress] == [
        ["stage1", "step", "2/4"],
        ["stage1", "step", "4/4"],
        ["stage2", "step", "2/4"],
        ["stage2", "step", "4/4"],
    ]
    assert all("loss" in line and "tok/s" in line and "ETA" in line for line in progress)
    assert "\x1b[" not in "".join(lines)  # no terminal control codes in a file


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("rim ")


def test_eval_defaults_to_the_runs_data_and_saves_predictions(trained_run, tmp_path, capsys):
    run, _ = trained_run
    preds = tmp_path / "preds.jsonl"
    assert main(["eval", str(run), "--limit", "5", "--save-predictions", str(preds), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 5
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 5
    assert set(rows[0]) == {"question", "gold", "prediction", "correct", "per_block"}
    assert len(rows[0]["per_block"]) == 2 and rows[0]["per_block"][-1] == rows[0]["prediction"]


def test_infer_answers_a_file_and_standard_input(trained_run, tmp_path, capsys, monkeypatch):
    import io

    run, _ = trained_run
    questions = ["3 +1 ?", "7 +2 ?", "0 +3 ?"]
    (tmp_path / "q.txt").write_text("\n".join(questions) + "\n")
    assert main(["infer", str(run), "--file", str(tmp_path / "q.txt")]) == 0
    from_file = capsys.readouterr().out.splitlines()
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(questions)))
    assert main(["infer", str(run), "--file", "-"]) == 0
    assert capsys.readouterr().out.splitlines() == from_file and len(from_file) == 3
    assert main(["infer", str(run), questions[1]]) == 0
    assert capsys.readouterr().out.strip() == from_file[1]
