"""`rim bench accuracy`: train every method with every seed under one budget, compare accuracy.

The sweep file (see `rim.bench.sweep`) names a base training config, the data, the methods with
their overrides, and the seeds. Each (method, seed) is one training run into
OUT/runs/METHOD/seedS, with the base config, the method's overrides, `trainer.seed = S` and the
data (`rim.training.jobs.run_jobs`: in this process, or `concurrent` subprocesses). The sweep resumes: a
run whose `eval.json` exists is skipped (after checking its config is the one the sweep asks
for), a run directory without one (an interrupted run) continues from its newest checkpoint
(`rim train --resume`: the same config, checked), or is trained again from scratch without one. The
summary (final-block accuracy: mean and standard error over seeds; any-block and per-block
accuracy for block methods; training time) goes to OUT/accuracy.json, accuracy.md and
accuracy.png (`rim.bench.accuracy_report`).

"Same budget" is whatever the configs say: the same optimizer steps by default; the sweep files
shipped under configs/bench/ give every method the same total number of steps (RiM's stage 1 +
stage 2; Coconut's steps spread over its latent stages).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from rim.bench.accuracy_report import summarise, write_summary
from rim.bench.sweep import Sweep, load_sweep
from rim.bench.sweep_data import sweep_data
from rim.common.errors import RimInputError
from rim.common.progress import log
from rim.config import config_from_dict, first_difference
from rim.methods import METHODS
from rim.training.checkpoints import latest_checkpoint
from rim.training.jobs import Job, run_jobs

__all__ = ["load_sweep", "run_sweep"]


def sweep_jobs(sweep: Sweep, out: Path, data: dict[str, str]) -> list[Job]:
    """One job per (method, seed), into OUT/runs/METHOD/seedS."""
    runs = str((out / "runs").resolve())
    return [
        Job(f"{m}-seed{s}", sweep.run_config(m, s, data, runs), out / "runs" / m / f"seed{s}")
        for m in sweep.methods
        for s in sweep.seeds
    ]


def run_sweep(
    sweep: Sweep, out: str | Path, console: Console | None = None, train: bool = True
) -> dict[str, Any]:
    """Train what is missing of the sweep into `out`, then summarise every finished run.

    Returns the summary that is written to `out/accuracy.json` (its `failed` lists the runs that
    failed; their logs are in `out/logs`). With `train=False`, only summarises what is there.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RimInputError("is a file, not a sweep directory", source=str(out))
    out.mkdir(parents=True, exist_ok=True)
    data = sweep_data(sweep, out)
    jobs = sweep_jobs(sweep, out, data)
    todo = [j for j in jobs if not _finished(j)]
    (out / "sweep.yaml").write_text(
        yaml.safe_dump(
            {
                "source": sweep.source,
                "config": sweep.config,
                "task": sweep.task.model_dump() if sweep.task else None,
                "data": data,
                "methods": sweep.methods,
                "seeds": sweep.seeds,
                "concurrent": sweep.concurrent,
                "threads": sweep.threads,
            },
            sort_keys=False,
        )
    )
    skipped = len(jobs) - len(todo)
    failed: list[str] = []
    if train and todo:
        if console is not None:
            console.print(f"{len(todo)} runs to train, {skipped} finished runs skipped")
        for job in todo:  # an interrupted run: continue from its newest checkpoint, else start again
            if job.run_dir.exists() and latest_checkpoint(job.run_dir) is not None:
                job.resume = True
            elif job.run_dir.exists():
                shutil.rmtree(job.run_dir)
        failed = run_jobs(todo, out, sweep.concurrent, sweep.threads, console)
    summary = summarise(sweep, jobs, out, data)
    summary["skipped"] = skipped
    summary["failed"] = failed
    write_summary(summary, out, console)
    if failed:
        log.error("%d runs failed (%s); see %s", len(failed), ", ".join(failed), out / "logs")
    return summary


def _finished(job: Job) -> bool:
    """True if the run has its eval.json; raises if it was trained with another config."""
    if not (job.run_dir / "eval.json").is_file():
        return False
    saved = job.run_dir / "config.yaml"
    if saved.is_file():
        raw = yaml.safe_load(saved.read_text()) or {}
        method = raw.get("method") or {}
        if method.get("name") in METHODS:  # a run saved when a section held every method's keys
            fields = METHODS[method["name"]].Config.model_fields
            raw["method"] = {k: v for k, v in method.items() if k in fields}
        try:  # settings added since the run was trained take their defaults
            old = config_from_dict(raw, source=str(saved)).to_dict()
        except RimInputError:
            old = raw
        new = job.cfg.to_dict()
        for d in (old, new):  # where the data lies and how many threads ran do not matter
            d.get("data", {}).pop("train", None)
            d.get("data", {}).pop("eval", None)
            d.get("trainer", {}).pop("threads", None)
        if old != new:
            key = first_difference(old, new)
            raise RimInputError(
                f"a finished run was trained with another config than the sweep "
                f"now asks for ({key}): use another --out or delete the run",
                source=str(job.run_dir),
            )
    return True
