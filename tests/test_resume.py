"""A run killed at any step and resumed ends exactly as the run that was never stopped: the same
losses in metrics.jsonl and bit-identical weights (CPU, one thread, fixed seed), whether it was
killed inside stage 1 while the fading is in progress or in stage 2; SIGTERM saves and says how
to resume; a non-finite loss stops with the stage and step."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import write_jsonl
from safetensors.torch import load_file

from rim.cli import main
from rim.data.generators.chain import generate_chain

STAGE1, STAGE2 = 24, 8
# a training step slowed to ~40 ms so that a signal lands inside the run, not after it
SLOW = (
    "import sys, time; import rim.methods.rim as r; real = r.RiM.loss; "
    "r.RiM.loss = lambda *a: (time.sleep(0.04), real(*a))[1]; from rim.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The config and the run that was never stopped."""
    root = tmp_path_factory.mktemp("resume")
    write_jsonl(root / "train.jsonl", [r.to_dict() for r in generate_chain(64, 0, ops=3)])
    config = {
        "model": {
            "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
            "vocab_size": 48,
            "max_length": 64,
        },
        "data": {"train": str(root / "train.jsonl")},
        "method": {"name": "rim", "blocks": 2, "fade_start": 0.2},
        "trainer": {
            "batch_size": 8,
            "log_every": 1,
            "threads": 1,
            "save_every": 1,
            "keep_last": 2,
            "report_to": [],
            "stage1": {"steps": STAGE1, "lr": 3e-3, "dropout": 0.1},
            "stage2": {"steps": STAGE2, "lr": 1e-3, "dropout": 0.2},
        },
    }
    (root / "run.yaml").write_text(json.dumps(config))
    assert main(["train", str(root / "run.yaml"), "--out", str(root / "whole")]) == 0
    return root


def step_losses(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["stage"], r["step"], r["loss"]) for r in rows if "loss" in r]


def weights(run):
    return load_file(str(run / "model" / "model.safetensors"))


def interrupt(root, name, sig, after_step):
    """Start the run, and send `sig` once a checkpoint of `after_step` or later exists."""
    out = root / name
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW, "train", str(root / "run.yaml"), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = (
            [
                int(p.name.split("-")[1])
                for p in (out / "checkpoints").glob("step-*")
                if (p / "progress.json").is_file()
            ]
            if (out / "checkpoints").is_dir()
            else []
        )
        if done and max(done) >= after_step:
            proc.send_signal(sig)
            break
        time.sleep(0.01)
    _, err = proc.communicate(timeout=120)
    assert not (out / "model").exists(), "the run ended before the signal"
    return out, proc.returncode, err


@pytest.mark.parametrize("after_step", [5, STAGE1 + 3], ids=["in-stage1", "in-stage2"])
def test_killed_and_resumed_equals_uninterrupted(reference, after_step):
    out, code, _ = interrupt(reference, f"killed{after_step}", signal.SIGKILL, after_step)
    assert code == -signal.SIGKILL
    assert main(["train", str(reference / "run.yaml"), "--out", str(out), "--resume"]) == 0
    assert step_losses(out) == step_losses(reference / "whole")
    whole, resumed = weights(reference / "whole"), weights(out)
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert len(list((out / "checkpoints").glob("step-*"))) == 2  # keep_last


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(reference):
    out, code, err = interrupt(reference, "terminated", signal.SIGTERM, 3)
    assert code == 128 + signal.SIGTERM
    (line,) = err.strip().splitlines()
    assert line.startswith("stopped: SIGTERM: stopped after stage1 step") and "--resume" in line
    assert main(["train", str(reference / "run.yaml"), "--out", str(out), "--resume"]) == 0
    assert step_losses(out) == step_losses(reference / "whole")


def test_resume_refuses_another_config_and_a_finished_run(reference, capsys):
    code = main(["train", str(reference / "run.yaml"), "--out", str(reference / "whole"), "--resume"])
    assert code == 2 and "has finished" in capsys.readouterr().err
    code = main(["train", str(reference / "run.yaml"), "--out", str(reference / "whole")])
    assert code == 2 and "--resume" in capsys.readouterr().err


def test_a_loss_that_is_not_finite_stops_the_run(reference, tmp_path, capsys):
    code = main(
        [
            "train",
            str(reference / "run.yaml"),
            "--out",
            str(tmp_path / "run"),
            "trainer.stage1.lr=1e9",
            "trainer.save_every=null",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "loss is not finite at stage1 step" in err
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        json.loads(line)  # still valid JSON: no NaN was written
    assert not (tmp_path / "run" / "model").exists()


def test_tiny_config_is_a_complete_run(tmp_path):
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"
    out = tmp_path / "tiny"
    assert (
        main(
            [
                "train",
                str(config),
                "--out",
                str(out),
                "trainer.stage1.steps=20",
                "trainer.stage2.steps=10",
                "trainer.save_every=10",
            ]
        )
        == 0
    )
    for name in (
        "model/model.safetensors",
        "model/rim.json",
        "eval.json",
        "checkpoints/stage1/model.safetensors",
        "checkpoints/stage2/model.safetensors",
    ):
        assert (out / name).is_file(), name
    assert [p.name for p in sorted((out / "checkpoints").glob("step-*"))] == [
        "step-00000020",
        "step-00000030",
    ]
