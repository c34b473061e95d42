"""Progress display and logging for long work (rich)."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

log = logging.getLogger("rim")
console = Console()
"""Standard output: tables and results."""
err_console = Console(stderr=True)
"""Standard error: progress, logs and error messages."""


def setup_logging(to: Console = err_console, level: int = logging.INFO) -> None:
    """Send the `rim` logger to the console `to`: through rich on a terminal, else as plain
    `level: message` lines (logs of cluster jobs stay one line per message)."""
    if not log.handlers:
        if to.is_terminal:
            handler: logging.Handler = RichHandler(console=to, show_path=False, markup=False)
        else:
            handler = _PlainHandler(to)
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


class _PlainHandler(logging.Handler):
    """`warning: message` on one line of a console."""

    def __init__(self, to: Console) -> None:
        super().__init__()
        self.to = to

    def emit(self, record: logging.LogRecord) -> None:
        self.to.print(
            f"{record.levelname.lower()}: {record.getMessage()}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


class Reporter:
    """What a training run shows while it works: a start banner, then a rich bar per stage on a
    terminal, or one plain line per logged step where the output is a file or a pipe (cluster
    jobs, nohup) or bars are off. `enabled=False` is silence."""

    def __init__(self, to: Console | None = None, enabled: bool = True, bars: bool | None = None) -> None:
        self.console = to or console
        self.enabled = enabled
        self.bars = enabled and (self.console.is_terminal if bars is None else bars)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.bars,
            transient=False,
        )

    def banner(self, text: str) -> None:
        """Say what is about to run."""
        if self.enabled:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def start_stage(self, name: str, total: int) -> int:
        """Begin a bar for `name` with `total` steps; returns its task id."""
        if self.bars and not self.progress.live.is_started:
            self.progress.start()
        return self.progress.add_task(name, total=total, loss=float("nan"))

    def advance(self, task: int, completed: int, row: dict) -> None:
        """Move `task` to `completed` steps; `row` is the logged step (loss, lr, tokens/s,
        elapsed seconds of the stage)."""
        self.progress.update(TaskID(task), completed=completed, loss=row["loss"])
        if self.enabled and not self.bars:
            total = self.progress.tasks[task].total or completed
            eta = row["elapsed_s"] / max(completed, 1) * (total - completed)
            self.console.print(
                f"{row['stage']} step {completed}/{total}  loss {row['loss']:.4f}  "
                f"lr {row['lr']:.2e}  {row['tokens_per_s']:,.0f} tok/s  ETA {_clock(eta)}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def begin(self, plans: list, global_step: int) -> None:
        """Training starts, or resumes at `global_step`, with the stages `plans`
        (`rim.training.schedule.StagePlan`s); a hook for subclasses (`rim.training.callbacks`)."""

    def logged(self, row: dict) -> None:
        """A row of metrics.jsonl was written: a step's loss, an evaluation (`event: eval`) or a
        stage's start (`event: stage`); a hook for subclasses."""

    def saved(self, path: Path, global_step: int) -> None:
        """A checkpoint was written to `path` after `global_step` optimizer steps; a hook."""

    def end_stage(self, task: int) -> None:
        """Finish `task`."""
        self.progress.update(TaskID(task), completed=self.progress.tasks[task].total)

    def close(self) -> None:
        """Stop drawing."""
        self.progress.stop()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
