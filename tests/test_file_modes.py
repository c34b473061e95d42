"""Every file rim writes follows the umask, as any other tool's (issue 17): weights written by
safetensors and files written through a temporary file are not left at 0600."""

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
import torch

from rim.cli import main
from rim.common.outputs import follow_umask
from rim.data.generators.chain import generate_chain

CONFIG = {
    "model": {
        "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2},
        "vocab_size": 48,
        "max_length": 64,
    },
    "data": {"train": "train.jsonl"},
    "method": {"name": "rim", "blocks": 2},
    "trainer": {
        "batch_size": 8,
        "save_every": 1,
        "keep_last": 2,
        "stage1": {"steps": 2},
        "stage2": {"steps": 2},
    },
}


@pytest.fixture
def umask():
    """Set the process's umask for the test (`umask(0o022)`), restore it afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """The permission bits of `root` and everything under it, by path relative to `root`."""
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def write_everything(root: Path, monkeypatch) -> list[Path]:
    """Train (with checkpoints), export, fit a probe, generate data and save predictions into
    `root`; returns what rim wrote."""
    monkeypatch.chdir(root)
    rows = [r.to_dict() for r in generate_chain(24, 0, ops=1, moves=("+1", "+2"))]
    Path("train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    Path("run.yaml").write_text(json.dumps(CONFIG))
    assert main(["train", "run.yaml", "--out", "run", "--no-progress"]) == 0
    assert main(["export", "run", "exported"]) == 0
    # a barely trained model gets every answer wrong; the probe needs both kinds to fit
    monkeypatch.setattr(
        "rim.analysis.probe.correctness",
        lambda answers, records, checker: torch.tensor(
            [[k % 2 == 0 for k in range(len(row))] for row in answers]
        ),
    )
    assert main(["probe", "fit", "run", "--data", "train.jsonl"]) == 0
    assert main(["data", "generate", "chain", "--n", "3", "--out", "data/g.jsonl"]) == 0
    assert (
        main(
            [
                "eval",
                "run",
                "--data",
                "train.jsonl",
                "--limit",
                "3",
                "--json",
                "--save-predictions",
                "preds/p.jsonl",
            ]
        )
        == 0
    )
    return [root / name for name in ("run", "exported", "data", "preds")]


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_every_file_rim_writes_follows_the_umask(mask, file_mode, dir_mode, umask, tmp_path, monkeypatch):
    umask(mask)
    written = write_everything(tmp_path, monkeypatch)
    found = {}
    for root in written:
        found.update(modes(root))
    names = {Path(name).name for name in found}
    # the weights of the model, the checkpoints, the export and the probe are among them
    assert {"model.safetensors", "probe.safetensors", "g.jsonl", "p.jsonl"} <= names
    assert any("/checkpoints/step-" in name for name in found)
    assert "exported/model.safetensors" in found and "run/model/model.safetensors" in found
    files = {name: mode for name, mode in found.items() if (tmp_path / name).is_file()}
    dirs = {name: mode for name, mode in found.items() if (tmp_path / name).is_dir()}
    assert files and dirs
    assert {name: oct(m) for name, m in files.items() if m != file_mode} == {}
    assert {name: oct(m) for name, m in dirs.items() if m != dir_mode} == {}


def test_follow_umask_gives_a_temporary_file_the_mode_of_a_new_file(umask, tmp_path):
    umask(0o022)
    fd, name = tempfile.mkstemp(dir=tmp_path)
    os.close(fd)
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o600
    follow_umask(name)
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o644
    (tmp_path / "sub").mkdir(mode=0o700)
    (tmp_path / "sub" / "w.bin").write_bytes(b"")
    os.chmod(tmp_path / "sub" / "w.bin", 0o600)
    follow_umask(tmp_path / "sub")
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "sub" / "w.bin").stat().st_mode) == 0o644
