"""A run directory is locked while a process works in it: two trainings started half a second
apart into one directory leave one refused in one line (naming the holder's pid and host) and
the other's run consistent; a lock left by a dead process is taken over, saying so; export and
probe fit respect the lock."""

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml
from helpers import write_jsonl

from rim.cli import main
from rim.common.rundir_lock import LOCK_NAME, RunDirLocked, run_dir_lock
from rim.data.generators.chain import generate_chain

# each training step slowed by 0.1 s, so that both processes are surely alive at the same time
SLOW = (
    "import sys, time; import rim.methods.rim as r; real = r.RiM.loss; "
    "r.RiM.loss = lambda *a: (time.sleep(0.1), real(*a))[1]; from rim.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


class Collect(logging.Handler):
    """The messages of the `rim` logger."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def rim_log():
    handler = Collect()
    logger = logging.getLogger("rim")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def tiny_config(root):
    write_jsonl(root / "train.jsonl", [r.to_dict() for r in generate_chain(64, 0, ops=2)])
    config = {
        "model": {
            "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
            "vocab_size": 48,
            "max_length": 64,
        },
        "data": {"train": str(root / "train.jsonl")},
        "method": {"name": "rim", "blocks": 2},
        "trainer": {
            "batch_size": 8,
            "log_every": 5,
            "threads": 1,
            "save_every": 10,
            "report_to": [],
            "stage1": {"steps": 30, "lr": 3e-3},
            "stage2": {"steps": 10, "lr": 1e-3},
        },
    }
    (root / "run.yaml").write_text(json.dumps(config))
    return root / "run.yaml"


def test_two_trainings_into_one_directory_one_is_refused(tmp_path):
    config, out = tiny_config(tmp_path), tmp_path / "run"
    procs = {}
    for seed in (1, 2):
        procs[seed] = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SLOW,
                "train",
                str(config),
                "--out",
                str(out),
                "--no-progress",
                f"trainer.seed={seed}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        time.sleep(0.5)
    results = {seed: (p.wait(timeout=300), *p.communicate()) for seed, p in procs.items()}
    codes = sorted(code for code, _, _ in results.values())
    assert codes == [0, 1], results
    (winner,) = [seed for seed, (code, _, _) in results.items() if code == 0]
    loser = 3 - winner
    (line,) = results[loser][2].strip().splitlines()
    assert line.startswith(
        f"stopped: {out} is in use by pid {procs[winner].pid} on host {socket.gethostname()} (rim train"
    )
    assert yaml.safe_load((out / "config.yaml").read_text())["trainer"]["seed"] == winner
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    assert (out / "model" / "model.safetensors").is_file()
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, rim_log):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": "gone-host"}))
    with run_dir_lock(tmp_path, "test") as lock:
        holder = json.loads(lock.read_text())
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
    assert any(f"taking over the lock left by pid {dead.pid} on host gone-host" in m for m in rim_log)
    assert not lock.exists()


def test_a_held_lock_is_refused_naming_pid_and_host(tmp_path):
    run = tmp_path / "new" / "run"
    with run_dir_lock(run, "rim train"):
        assert (run / LOCK_NAME).is_file()
        with pytest.raises(RunDirLocked) as refused:
            with run_dir_lock(run, "rim export"):
                pass
        message = str(refused.value)
        assert f"in use by pid {os.getpid()} on host {socket.gethostname()} (rim train" in message
        assert "\n" not in message
        assert (run / LOCK_NAME).is_file()  # the refused one removed nothing
    assert not (tmp_path / "new").exists()  # created by the lock, nothing written: removed


def test_export_and_probe_fit_refuse_a_locked_directory(tmp_path, capsys):
    out = tmp_path / "exported"
    with run_dir_lock(out, "rim export"):
        assert main(["export", str(tmp_path / "some-run"), str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"in use by pid {os.getpid()}" in err
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    (run / "model" / "rim.json").write_text("{}\n")
    with run_dir_lock(run, "rim train"):
        assert main(["probe", "fit", str(run), "--data", str(tmp_path / "x.jsonl")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "(rim train" in err
    assert sorted(p.name for p in run.rglob("*")) == ["config.yaml", "model", "rim.json"]
