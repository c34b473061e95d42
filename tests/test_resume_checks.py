"""`--resume` refuses a run with no checkpoint in one line and writes nothing (no process is
killed to show it); it says from which stage and step it continues; settings that do not change
the arithmetic (log_every, save_every, keep_last, report_to, eval batch size) may change, others
(a learning rate) may not."""

import json
import shutil

import pytest
from helpers import write_jsonl

from rim.cli import main
from rim.data.generators.chain import generate_chain
from rim.training.run import MAY_CHANGE_ON_RESUME


@pytest.fixture
def finished(tmp_path):
    """A tiny run trained to the end: 24 + 16 steps, checkpoints at steps 30 and 40."""
    write_jsonl(tmp_path / "train.jsonl", [r.to_dict() for r in generate_chain(64, 0, ops=2)])
    config = {
        "model": {
            "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
            "vocab_size": 48,
            "max_length": 64,
        },
        "data": {"train": str(tmp_path / "train.jsonl")},
        "method": {"name": "rim", "blocks": 2},
        "trainer": {
            "batch_size": 8,
            "log_every": 2,
            "threads": 1,
            "save_every": 10,
            "keep_last": 2,
            "report_to": [],
            "stage1": {"steps": 24, "lr": 3e-3},
            "stage2": {"steps": 16, "lr": 1e-3},
        },
    }
    (tmp_path / "run.yaml").write_text(json.dumps(config))
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(out), "--no-progress"]) == 0
    return tmp_path / "run.yaml", out


def snapshot(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_resume_without_checkpoints_refuses_and_writes_nothing(finished, capsys):
    config, out = finished
    shutil.rmtree(out / "checkpoints")
    shutil.rmtree(out / "model")
    before = snapshot(out)
    capsys.readouterr()
    assert main(["train", str(config), "--out", str(out), "--resume"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {out}: no checkpoint to resume from")
    assert "without --resume" in line
    assert snapshot(out) == before


def test_resume_accepts_a_new_log_every_and_says_where_it_continues(finished, capsys):
    config, out = finished
    shutil.rmtree(out / "model")
    shutil.rmtree(out / "checkpoints" / "step-00000040")  # the newest: resume from step 30
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                str(config),
                "--out",
                str(out),
                "--resume",
                "--no-progress",
                "trainer.log_every=3",
                "trainer.keep_last=3",
                "trainer.eval_batch_size=7",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "from checkpoint step-00000030: stage2 step 6 of 16 (global step 30)" in err
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [(r["step"], r["stage_step"]) for r in rows if "loss" in r]
    steps = [step for step, _ in logged]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    after = [stage_step for step, stage_step in logged if step > 30]
    assert after == [9, 12, 15, 16]  # every 3 stage steps now, and the stage's last
    assert (out / "model" / "model.safetensors").is_file()


def test_resume_still_refuses_a_new_learning_rate(finished, capsys):
    config, out = finished
    shutil.rmtree(out / "model")
    capsys.readouterr()
    assert main(["train", str(config), "--out", str(out), "--resume", "trainer.stage2.lr=5e-4"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "another config (trainer.stage2.lr)" in line
    assert all(key in line for key in MAY_CHANGE_ON_RESUME)
