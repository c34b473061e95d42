"""Progress display and logging for long work (rich)."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

log = logging.getLogger("rim")
console = Console()
"""Standard output: tables and results."""
err_console = Console(stderr=True)
"""Standard error: progress, logs and error messages."""


def setup_logging(to: Console = err_console, level: int = logging.INFO) -> None:
    """Send the `rim` logger to the console `to` through rich."""
    if not log.handlers:
        log.addHandler(RichHandler(console=to, show_path=False, markup=False))
    log.setLevel(level)
    log.propagate = False


class Reporter:
    """A progress bar per training stage (or silence when `enabled` is False)."""

    def __init__(self, to: Console | None = None, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
            console=to or err_console, disable=not enabled, transient=False,
        )

    def start_stage(self, name: str, total: int) -> int:
        """Begin a bar for `name` with `total` steps; returns its task id."""
        if not self.progress.live.is_started:
            self.progress.start()
        return self.progress.add_task(name, total=total, loss=float("nan"))

    def advance(self, task: int, completed: int, loss: float) -> None:
        """Move `task` to `completed` steps and show the latest loss."""
        self.progress.update(task, completed=completed, loss=loss)

    def end_stage(self, task: int) -> None:
        """Finish `task`."""
        self.progress.update(task, completed=self.progress.tasks[task].total)

    def close(self) -> None:
        """Stop drawing."""
        self.progress.stop()
