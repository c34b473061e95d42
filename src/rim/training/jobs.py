"""Run several trainings: one after another in this process, or as `rim train` subprocesses side
by side. Sweeps and the quickstart use it.

With subprocesses, each run's config goes to `OUT/configs/NAME.yaml` and its log to
`OUT/logs/NAME.log`; on a terminal a progress bar per
run follows its `metrics.jsonl`. However the runner stops (an error, Ctrl-C, SIGTERM from
`timeout`), it stops the runs still training instead of leaving them orphaned; their
directories lack `eval.json`, so a resumed sweep trains them again (from their newest checkpoint
where they have one).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rim.common.errors import RimStopped
from rim.common.progress import Reporter, log
from rim.config import Config
from rim.methods import method_plan
from rim.training.schedule import counted_steps


@dataclass
class Job:
    """One training run: a name (for logs), its config and its run directory; `resume`: continue
    the run there from its newest checkpoint (`rim train --resume`)."""

    name: str
    cfg: Config
    run_dir: Path
    resume: bool = False

    @property
    def total_steps(self) -> int | None:
        """Optimizer steps of all stages when the config counts them in steps (else None)."""
        return counted_steps(self.cfg, method_plan(self.cfg.method))


def run_jobs(
    jobs: list[Job],
    out: Path,
    concurrent: int = 1,
    threads: int | None = None,
    console: Console | None = None,
) -> list[str]:
    """Train every job (`concurrent` > 1: that many subprocesses at a time, each with `threads`
    torch threads); returns the names of those that failed (their logs are in `out/logs`)."""
    if concurrent == 1:
        return _in_process(jobs, out / "logs", console)
    return _subprocesses(jobs, out, concurrent, threads, console)


def _in_process(jobs: list[Job], logs: Path, console: Console | None) -> list[str]:
    from rim.training.run import run_training

    failed = []
    for i, job in enumerate(jobs, start=1):
        if console is not None:
            console.print(f"[{i}/{len(jobs)}] training {job.name}")
        try:
            reporter = Reporter(console, enabled=console is not None)
            run_training(job.cfg, job.run_dir, reporter, resume=job.resume)
        except RimStopped:  # Ctrl-C or SIGTERM stops the sweep, not just this run
            raise
        except Exception:  # one failed run should not lose the others
            log_file = logs / f"{job.name}.log"
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.write_text(traceback.format_exc())
            log.error("run %s failed; see %s", job.name, log_file)
            failed.append(job.name)
    return failed


def _subprocesses(
    jobs: list[Job], out: Path, concurrent: int, threads: int | None, console: Console | None
) -> list[str]:
    env = {**os.environ}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    logs, configs = out / "logs", out / "configs"
    logs.mkdir(parents=True, exist_ok=True)
    configs.mkdir(parents=True, exist_ok=True)
    pending, failed, done = list(jobs), [], 0
    running: dict[str, tuple[subprocess.Popen, Any, Job]] = {}
    bars = _Bars(console)
    with _stop_children_on_exit(running), bars:
        while pending or running:
            while pending and len(running) < concurrent:
                job = pending.pop(0)
                config = configs / f"{job.name}.yaml"
                config.write_text(yaml.safe_dump(job.cfg.to_dict(), sort_keys=False))
                log_file = (logs / f"{job.name}.log").open("w")
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "rim.cli",
                        "train",
                        str(config),
                        "--out",
                        str(job.run_dir),
                        "--no-progress",
                        *(["--resume"] if job.resume else []),
                    ],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                running[job.name] = (proc, log_file, job)
                bars.start(job, f"started {job.name} (pid {proc.pid})")
            time.sleep(0.5)
            for name, (proc, log_file, job) in list(running.items()):
                bars.update(job)
                if proc.poll() is None:
                    continue
                log_file.close()
                del running[name]
                done += 1
                if proc.returncode != 0:
                    failed.append(name)
                    log.error("run %s failed (exit %d); see %s", name, proc.returncode, logs / f"{name}.log")
                bars.finish(job, proc.returncode == 0, f"finished {name} ({done}/{len(jobs)})")
    return failed


class _Bars:
    """A progress bar per run on a terminal; plain lines otherwise (logs, pipes, CI)."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.live = console is not None and console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not self.live,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def start(self, job: Job, line: str) -> None:
        self.tasks[job.name] = self.progress.add_task(job.name, total=job.total_steps, status="training")
        if self.console is not None:
            self.console.print(line, markup=False, highlight=False)

    def update(self, job: Job) -> None:
        self.progress.update(self.tasks[job.name], completed=last_step(job.run_dir))

    def finish(self, job: Job, ok: bool, line: str) -> None:
        self.progress.update(
            self.tasks[job.name],
            status="done" if ok else "failed",
            completed=job.total_steps if ok else last_step(job.run_dir),
        )
        if self.console is not None and ok:
            self.console.print(line, markup=False, highlight=False)


def last_step(run_dir: Path) -> int:
    """The last optimizer step a run has logged (0 before its first log line)."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return 0
    lines = metrics.read_text().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0


@contextlib.contextmanager
def _stop_children_on_exit(running: dict[str, tuple[subprocess.Popen, Any, Job]]):
    """On any exit (an error, Ctrl-C, or SIGTERM), stop the runs still training."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_exit) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        for proc, _, _ in running.values():
            proc.terminate()
        for proc, log_file, _ in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_file.close()


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
