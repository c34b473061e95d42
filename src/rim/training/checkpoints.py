"""Checkpoints to resume a run exactly, and stops that lose nothing.

A checkpoint is `RUN/checkpoints/step-NNNNNNNN/`: Accelerate's own state (`save_state`: model,
optimizer, random generators, gradient scaler, sampler) and `progress.json`, where the run is
(stage, step, the pass of its optimizer, the epoch and the batches read of it, the loss since
the last log line, the best validation accuracy, the length of metrics.jsonl). It is written
into a temporary directory and renamed, so a checkpoint either is complete or is not there;
the newest complete one is resumed (`rim train ... --resume`). SIGINT and SIGTERM make the run
save a checkpoint after the step in progress and stop with a one-line message.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from rim.common.outputs import follow_umask

# A model with tied embeddings is saved with one copy of them; Accelerate says so at every
# checkpoint, which is noise here.
logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)

PROGRESS = "progress.json"
PREFIX = "step-"


@dataclass
class Position:
    """Where a run is, after an optimizer step."""

    stage_index: int = 0
    step: int = 0
    """Optimizer steps done in the stage."""
    global_step: int = 0
    pass_start: int = 0
    """The stage step at which the current optimizer was created."""
    epoch: int = 0
    """Passes over the data begun in the stage (0-based: the one in progress)."""
    batches: int = 0
    """Loader batches read in the current epoch."""
    window: dict[str, float] = field(default_factory=dict)
    """Loss sum and count since the last log line."""
    best: float | None = None
    """Best validation accuracy so far."""
    metrics_bytes: int = 0
    """Length of metrics.jsonl when the checkpoint was written."""


def save_checkpoint(accelerator: Accelerator, run_dir: Path, position: Position, keep_last: int) -> Path:
    """Write a checkpoint atomically (every process takes part) and keep the `keep_last`
    newest; returns its directory."""
    root = run_dir / "checkpoints"
    final = root / f"{PREFIX}{position.global_step:08d}"
    tmp = root / f".{final.name}.tmp"
    if accelerator.is_main_process:
        for stale in root.glob(f".{PREFIX}*"):  # left by a run killed while writing or removing
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every process has written its part before the rename
    if accelerator.is_main_process:
        (tmp / PROGRESS).write_text(json.dumps(asdict(position), indent=2) + "\n")
        follow_umask(tmp)  # safetensors writes the weights 0600
        if final.exists():
            _remove(final)
        tmp.rename(final)
        for old in complete_checkpoints(run_dir)[:-keep_last]:
            _remove(old)
    accelerator.wait_for_everyone()
    return final


def _remove(checkpoint: Path) -> None:
    """Delete a checkpoint so that a kill midway leaves no half of it under its name: it is
    renamed to a hidden name first (the next save clears those)."""
    trash = checkpoint.with_name(f".{checkpoint.name}.old")
    checkpoint.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob(f"{PREFIX}*") if (p / PROGRESS).is_file())


def latest_checkpoint(run_dir: Path) -> tuple[Path, Position] | None:
    """The newest complete checkpoint and its position, if any."""
    found = complete_checkpoints(run_dir)
    if not found:
        return None
    return found[-1], Position(**json.loads((found[-1] / PROGRESS).read_text()))


class StopSignals:
    """While active, SIGINT and SIGTERM ask the run to stop after the step in progress
    (`requested` holds the signal's number); outside the main thread it does nothing."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._ask)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _ask(self, signum: int, frame: Any) -> None:
        self.requested = signum

    def agreed(self, accelerator: Accelerator) -> int | None:
        """The signal any process received (every process learns it at the same step)."""
        import torch

        flag = torch.tensor([float(self.requested or 0)], device=accelerator.device)
        value = int(accelerator.gather(flag).max().item())
        return value or None
