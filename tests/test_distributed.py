"""Two CPU processes (torchrun, gloo) train as one process with twice the accumulation: the same
losses and learning rates at every step, through RiM's curriculum and its stage switch, and only
the main process writes."""

import json
import os
import subprocess
import sys

import pytest
from helpers import write_jsonl

from rim.config import config_from_dict
from rim.data.generators.chain import generate_chain
from rim.progress import Reporter
from rim.run import run_training


def step_rows(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


def test_two_processes_equal_one_process_with_accumulation(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl",
                        [r.to_dict() for r in generate_chain(64, 0, ops=2)])
    raw = {
        "model": {"scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2,
                              "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
                  "vocab_size": 48, "max_length": 64},
        "data": {"train": str(train)},
        "method": {"name": "rim", "blocks": 2},
        "trainer": {"batch_size": 8, "log_every": 1, "threads": 1,
                    "stage1": {"steps": 4, "lr": 1e-3, "warmup": 0.5},
                    "stage2": {"steps": 2, "lr": 5e-4}},
    }
    config = tmp_path / "two.yaml"
    config.write_text(json.dumps(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "rim.cli", "train", str(config), "--out", str(tmp_path / "two"), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("model saved to") == 1  # one writer

    raw["trainer"]["grad_accum"] = 2
    run_training(config_from_dict(raw), tmp_path / "one", Reporter(enabled=False))
    two, one = step_rows(tmp_path / "two"), step_rows(tmp_path / "one")
    assert [(r["stage"], r["step"]) for r in two] == [(r["stage"], r["step"]) for r in one]
    assert [r["lr"] for r in two] == pytest.approx([r["lr"] for r in one])
    assert [r["lr"] for r in two][:4] == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3])  # 2-step warm-up
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-4)
    stages = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text()
              .splitlines() if '"event": "stage"' in line]
    assert [s["plan"]["effective_batch"] for s in stages] == [16, 16]
