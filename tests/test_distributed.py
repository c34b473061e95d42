"""Two CPU processes (torchrun, gloo) train as one process with twice the accumulation: the same
losses and learning rates at every step, through RiM's curriculum and its stage switch, and only
the main process writes. Their checkpoints hold every process's part, and a two-process run
resumed from one ends exactly as the run that was never stopped."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import write_jsonl
from safetensors.torch import load_file

from rim.common.progress import Reporter
from rim.config import config_from_dict
from rim.data.generators.chain import generate_chain
from rim.training.run import run_training


def step_rows(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


# rim's CLI with the second process slow to save its part of a checkpoint: the checkpoint must
# not be renamed into place (or pruned) before every process has written
LATE_WRITER = (
    "import sys, time; from accelerate import Accelerator; real = Accelerator.save_state"
    "\ndef late(self, *a, **k):\n    time.sleep(0.2 * self.process_index)\n"
    "    return real(self, *a, **k)\nAccelerator.save_state = late\n"
    "from rim.cli import main; sys.exit(main(sys.argv[1:]))\n"
)


def torchrun(config, out, *extra):
    """`rim train` in two CPU processes."""
    script = out.parent / "late_writer.py"
    script.write_text(LATE_WRITER)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            "train",
            str(config),
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_two_processes_equal_one_process_with_accumulation(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [r.to_dict() for r in generate_chain(64, 0, ops=2)])
    raw = {
        "model": {
            "scratch": {
                "model_type": "gpt2",
                "n_layer": 1,
                "n_embd": 32,
                "n_head": 2,
                "resid_pdrop": 0.0,
                "embd_pdrop": 0.0,
                "attn_pdrop": 0.0,
            },
            "vocab_size": 48,
            "max_length": 64,
        },
        "data": {"train": str(train)},
        "method": {"name": "rim", "blocks": 2},
        "trainer": {
            "batch_size": 8,
            "log_every": 1,
            "threads": 1,
            "stage1": {"steps": 4, "lr": 1e-3, "warmup": 0.5},
            "stage2": {"steps": 2, "lr": 5e-4},
        },
    }
    config = tmp_path / "two.yaml"
    config.write_text(json.dumps({**raw, "trainer": {**raw["trainer"], "save_every": 2, "keep_last": 5}}))
    proc = torchrun(config, tmp_path / "two")
    assert proc.stdout.count("model saved to") == 1  # one writer
    for step in (2, 4, 6):  # each process's generators are in every checkpoint
        saved = tmp_path / "two" / "checkpoints" / f"step-{step:08d}"
        assert {"random_states_0.pkl", "random_states_1.pkl", "progress.json"} <= {
            p.name for p in saved.iterdir()
        }

    # a kill after step 2 (stage 1, fading in progress): what the run directory held then
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "two", resumed)
    for later in (
        "model",
        "checkpoints/step-00000004",
        "checkpoints/step-00000006",
        "checkpoints/stage1",
        "checkpoints/stage2",
    ):
        shutil.rmtree(resumed / later)
    torchrun(config, resumed, "--resume")

    def trajectory(run):
        return [(r["stage"], r["step"], r["loss"], r["lr"]) for r in step_rows(run)]

    assert trajectory(resumed) == trajectory(tmp_path / "two")
    whole, again = (load_file(str(d / "model" / "model.safetensors")) for d in (tmp_path / "two", resumed))
    assert all(torch.equal(whole[k], again[k]) for k in whole)

    raw["trainer"]["grad_accum"] = 2
    run_training(config_from_dict(raw), tmp_path / "one", Reporter(enabled=False))
    two, one = step_rows(tmp_path / "two"), step_rows(tmp_path / "one")
    assert [(r["stage"], r["step"]) for r in two] == [(r["stage"], r["step"]) for r in one]
    assert [r["lr"] for r in two] == pytest.approx([r["lr"] for r in one])
    assert [r["lr"] for r in two][:4] == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3])  # 2-step warm-up
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-4)
    stages = [
        json.loads(line)
        for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
        if '"event": "stage"' in line
    ]
    assert [s["plan"]["effective_batch"] for s in stages] == [16, 16]


def test_a_sharded_launch_on_cpus_says_it_runs_unsharded(tmp_path, monkeypatch, caplog):
    """Accelerate selects FSDP and DeepSpeed on GPUs only; on CPUs the user is told."""
    from rim.common.progress import log

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setattr(log, "propagate", True)  # `rim` commands send it to the console only
    raw = {
        "model": {
            "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2},
            "vocab_size": 48,
            "max_length": 64,
        },
        "data": {"train": "gen:chain?n=16&seed=0&ops=2"},
        "method": {"name": "rim"},
        "trainer": {
            "batch_size": 8,
            "threads": 1,
            "report_to": [],
            "stage1": {"steps": 1},
            "stage2": {"steps": 1},
        },
    }
    with caplog.at_level("WARNING", logger="rim"):
        run_training(config_from_dict(raw), tmp_path / "run", Reporter(enabled=False))
    assert "asked for FSDP, but Accelerate did not select it" in caplog.text
    assert "this run is NO" in caplog.text


def test_evaluation_while_training_is_refused_when_sharded_over_several_gpus(tmp_path, monkeypatch):
    """FSDP over several GPUs (the environment `accelerate launch` sets, CUDA pretended): the
    main process cannot evaluate a sharded model alone, so `eval_every` is refused up front
    instead of hanging, and nothing is written."""
    import rim.training.run
    from rim.common.errors import RimInputError

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setattr(rim.training.run.torch.cuda, "is_available", lambda: True)
    raw = {
        "data": {"train": "gen:chain?n=16&seed=0&ops=2", "eval": "gen:chain?n=8&seed=1&ops=2"},
        "trainer": {"eval_every": 10},
    }
    with pytest.raises(RimInputError, match="cannot run under FSDP") as err:
        run_training(config_from_dict(raw), tmp_path / "run", Reporter(enabled=False))
    assert err.value.source == "trainer.eval_every"
    assert not (tmp_path / "run").exists()
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    with pytest.raises(RimInputError, match="cannot run under DeepSpeed ZeRO-3"):
        run_training(config_from_dict(raw), tmp_path / "run", Reporter(enabled=False))
