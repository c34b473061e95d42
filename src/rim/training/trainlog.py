"""What a training run writes as it goes: metrics.jsonl rows (and the trackers), the loss and
throughput window between log lines, and the start banner."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from accelerate import Accelerator

from rim.models.families import family
from rim.training.prepare import Prepared
from rim.training.schedule import StagePlan


class Window:
    """Loss and throughput since the last log line."""

    def __init__(self, loss_sum: float = 0.0, loss_n: int = 0) -> None:
        self.start = time.perf_counter()
        self.tokens, self.loss_sum, self.loss_n = 0, loss_sum, loss_n

    def add(self, loss: float, tokens: int) -> None:
        self.tokens += tokens
        self.loss_sum, self.loss_n = self.loss_sum + loss, self.loss_n + 1

    def mean_loss(self) -> float:
        return self.loss_sum / max(self.loss_n, 1)

    def rates(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.start
        return {"tokens_per_s": self.tokens / elapsed, "elapsed_s": elapsed}

    def reset_loss(self) -> None:
        self.loss_sum, self.loss_n = 0.0, 0

    def state(self) -> dict[str, float]:
        """What a checkpoint keeps of it (the losses; timing restarts)."""
        return {"loss_sum": self.loss_sum, "loss_n": self.loss_n}


class Metrics:
    """metrics.jsonl (main process only) and the experiment trackers."""

    def __init__(
        self,
        accelerator: Accelerator,
        path: Path,
        truncate_at: int | None = None,
        on_row: Callable[[dict], None] | None = None,
    ):
        self.accelerator, self.on_row = accelerator, on_row
        self.file: IO[str] | None = None
        if accelerator.is_main_process:
            if truncate_at is not None and path.is_file():  # rows after the resumed checkpoint
                with path.open("r+b") as f:
                    f.truncate(truncate_at)
            self.file = path.open("a", encoding="utf-8")

    def log(self, row: dict) -> None:
        """Append one row (main process) and send its scalars to the trackers."""
        if self.file is None:
            return
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.on_row is not None:
            self.on_row(row)
        scalars = {
            f"{row['stage']}/{k}": v
            for k, v in row.items()
            if k in ("loss", "lr", "tokens_per_s", "accuracy")
        }
        if scalars:
            self.accelerator.log(scalars, step=row["step"])

    def size(self) -> int:
        """Bytes written so far (0 on the other processes)."""
        return self.file.tell() if self.file is not None else 0

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def banner(prep: Prepared, plans: list[StagePlan], accelerator: Accelerator, run_dir: Path) -> str:
    """What the run is about to do, in one paragraph."""
    params = sum(p.numel() for p in prep.model.parameters())
    trainable = sum(p.numel() for p in prep.model.parameters() if p.requires_grad)
    plan = plans[0] if plans else None
    batch = (
        (
            f"{plan.effective_batch} ({plan.batch_per_device} per device x {plan.grad_accum} "
            f"accumulation x {plan.processes} processes)"
        )
        if plan
        else "-"
    )
    stages = ", ".join(f"{p.name} {p.steps} steps" for p in plans)
    return (
        f"rim train: {prep.cfg.method.name} on {len(prep.train):,} examples; "
        f"model family {family(prep.model)}, {params:,} parameters ({trainable:,} trainable); "
        f"device {accelerator.device}; "
        f"effective batch {batch}; {stages}; output {run_dir}"
    )
