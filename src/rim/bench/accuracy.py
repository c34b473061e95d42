"""`rim bench accuracy`: train every method with every seed under one budget, compare accuracy.

A sweep file (configs/bench/accuracy-*.yaml) names one base training config, the data (a task
to generate, or files), the methods with their overrides, and the seeds:

    config: train-tiny-cpu.yaml          # base config: a path relative to this file, or a mapping
    task: {name: chain, train: 20000, test: 500, seed: 0, options: {ops: 4}}
    # disjoint: true drops the training records whose question is in the test set
    # or: data: {train: path, eval: path}  (relative to this file)
    # or both: a task for the training data, data.eval for a published evaluation file
    methods:                             # name -> overrides (dotted keys or nested mappings)
      nocot: {trainer.stage2.steps: 400}
      rim: {}
    seeds: [0, 1, 2]
    concurrent: 1                        # > 1: that many `rim train` subprocesses at once
    threads: 1                           # torch threads per run

Each (method, seed) is one `rim.run.run_training` into OUT/runs/METHOD/seedS, with the base
config, the method's overrides, `trainer.seed = S` and the data. The sweep resumes: a run whose
`eval.json` exists is skipped (after checking its config is the one the sweep asks for), a run
directory without one (an interrupted run) is trained again from scratch. The summary (final-
block accuracy: mean and standard error over seeds; any-block and per-block accuracy for block
methods; training time) goes to OUT/accuracy.json, accuracy.md and accuracy.png.

"Same budget" is whatever the configs say: the same optimizer steps by default; the sweep files
shipped under configs/bench/ give every method the same total number of steps (RiM's stage 1 +
stage 2; Coconut's steps spread over its latent stages).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from rim.bench import report
from rim.bench.common import check_methods, default_methods
from rim.config import Config, config_from_dict, load_config, read_yaml, set_dotted
from rim.data.records import Record
from rim.errors import RimInputError
from rim.progress import Reporter, log


def _tasks() -> dict[str, Any]:
    from rim.data.generators import GENERATORS
    from rim.tasks.chain import generate_chain
    from rim.tasks.lookup import generate_lookup

    return {**GENERATORS, "chain": generate_chain, "lookup": generate_lookup}


def task_records(name: str, n: int, seed: int, options: dict[str, Any]) -> list[Record]:
    """Records of a generated task: the `rim data` generators, `chain` or `lookup`."""
    tasks = _tasks()
    if name not in tasks:
        raise RimInputError(f"unknown task {name!r} (known: {', '.join(sorted(tasks))})")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    try:
        return tasks[name](n, seed, **options)
    except TypeError as err:
        raise RimInputError(f"task {name!r}: {err}") from None


@dataclass
class Sweep:
    """A resolved sweep: base config, data, methods with overrides, seeds."""

    config: dict[str, Any]
    methods: dict[str, dict[str, Any]]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    task: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    concurrent: int = 1
    threads: int | None = None
    source: str = "<sweep>"

    def run_config(self, method: str, seed: int, data: dict[str, str]) -> Config:
        """The validated config of the run (method, seed)."""
        raw = copy.deepcopy(self.config)
        raw["method"]["name"] = method
        for key, value in self.methods[method].items():
            set_dotted(raw, key, value, merge=True, source=self.source)
        raw["trainer"]["seed"] = seed
        if self.threads:
            raw["trainer"]["threads"] = self.threads
        raw["data"].update(data)
        return config_from_dict(raw, source=f"{self.source} [{method}, seed {seed}]")


SWEEP_KEYS = ("config", "task", "data", "methods", "seeds", "concurrent", "threads")


def load_sweep(path: str | Path, methods: list[str] | None = None, seeds: list[int] | None = None,
               concurrent: int | None = None, threads: int | None = None) -> Sweep:
    """Read a sweep file; the other arguments (command-line options) override it."""
    path = Path(path)
    raw = read_yaml(path)
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise RimInputError(f"unknown sweep key {unknown[0]!r} (known: {', '.join(SWEEP_KEYS)})",
                            source=str(path))
    base = raw.get("config")
    if isinstance(base, str):
        cfg = load_config(path.parent / base)
    elif isinstance(base, dict) or base is None:
        cfg = config_from_dict(base or {}, source=str(path))
    else:
        raise RimInputError("'config' must be a file path or a mapping", source=str(path))
    data = raw.get("data")
    if data is not None:
        if not isinstance(data, dict) or not ("train" in data or "eval" in data and raw.get("task")):
            raise RimInputError("'data' needs at least 'train' (and 'eval'), or 'eval' with a "
                                "'task' that generates the training data", source=str(path))
        data = {k: str((path.parent / v).resolve()) for k, v in data.items() if k in ("train", "eval")}
    return make_sweep(cfg, raw.get("methods"), seeds or raw.get("seeds", [0, 1, 2]),
                      task=raw.get("task"), data=data,
                      concurrent=concurrent or raw.get("concurrent", 1),
                      threads=threads or raw.get("threads"), source=str(path), only=methods)


def make_sweep(cfg: Config, methods: dict | list | None, seeds: list[int], *,
               task: dict | None = None, data: dict | None = None, concurrent: int = 1,
               threads: int | None = None, source: str = "<sweep>",
               only: list[str] | None = None) -> Sweep:
    """Validate the parts of a sweep (`methods`: names, or name -> overrides; None: all)."""
    if methods is None:
        methods = default_methods()
    if isinstance(methods, list):
        methods = {m: {} for m in methods}
    if not isinstance(methods, dict) or not all(isinstance(v or {}, dict) for v in methods.values()):
        raise RimInputError("'methods' must be a list of names or a mapping of name -> overrides",
                            source=source)
    methods = {m: dict(v or {}) for m, v in methods.items()}
    check_methods(list(methods))
    if only:
        missing = [m for m in only if m not in methods]
        if missing:
            raise RimInputError(f"method {missing[0]!r} is not in the sweep", source=source)
        methods = {m: methods[m] for m in only}
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise RimInputError("'seeds' must be a non-empty list of integers", source=source)
    if not isinstance(concurrent, int) or concurrent < 1:
        raise RimInputError("'concurrent' must be at least 1", source=source)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise RimInputError("'threads' must be at least 1", source=source)
    if task is not None:
        if not isinstance(task, dict) or "name" not in task:
            raise RimInputError("'task' needs a name (and train, test, seed, options)",
                                source=source)
        unknown = sorted(set(task) - {"name", "train", "test", "seed", "disjoint", "options"})
        if unknown:
            raise RimInputError(f"unknown task key {unknown[0]!r}", source=source)
        if task["name"] not in _tasks():
            raise RimInputError(f"unknown task {task['name']!r} (known: "
                                f"{', '.join(sorted(_tasks()))})", source=source)
    if task is None and data is None and not cfg.data.train:
        raise RimInputError("the sweep needs a 'task', 'data' or a base config with data.train",
                            source=source)
    sweep = Sweep(cfg.to_dict(), methods, list(seeds), task, data, concurrent, threads, source)
    for m in methods:  # every override must give a valid config before anything runs
        sweep.run_config(m, sweep.seeds[0], data or {"train": "<data>", "eval": "<data>"})
    return sweep


# --- running -----------------------------------------------------------------------------------

@dataclass
class Job:
    method: str
    seed: int
    cfg: Config
    run_dir: Path

    @property
    def name(self) -> str:
        return f"{self.method}-seed{self.seed}"


def run_sweep(sweep: Sweep, out: str | Path, console: Console | None = None,
              train: bool = True) -> dict[str, Any]:
    """Train what is missing of the sweep into `out`, then summarise every finished run.

    Returns the summary that is written to `out/accuracy.json` (its `failed` lists the runs that
    failed; their logs are in `out/logs`). With `train=False`, only summarises what is there.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = _data(sweep, out)
    jobs = [Job(m, s, sweep.run_config(m, s, data), out / "runs" / m / f"seed{s}")
            for m in sweep.methods for s in sweep.seeds]
    todo = [j for j in jobs if not _finished(j)]
    (out / "sweep.yaml").write_text(yaml.safe_dump({
        "source": sweep.source, "config": sweep.config, "task": sweep.task, "data": data,
        "methods": sweep.methods, "seeds": sweep.seeds, "concurrent": sweep.concurrent,
        "threads": sweep.threads}, sort_keys=False))
    skipped = len(jobs) - len(todo)
    failed: list[str] = []
    if train and todo:
        if console is not None:
            console.print(f"{len(todo)} runs to train, {skipped} finished runs skipped")
        for job in todo:
            if job.run_dir.exists():  # an interrupted run: start it again
                shutil.rmtree(job.run_dir)
        if sweep.concurrent > 1:
            failed = _run_subprocesses(todo, out, sweep.concurrent, sweep.threads, console)
        else:
            failed = _run_in_process(todo, out, console)
    summary = summarise(sweep, jobs, out, data)
    summary["skipped"] = skipped
    summary["failed"] = failed
    _write(summary, out, console)
    if failed:
        log.error("%d runs failed (%s); see %s", len(failed), ", ".join(failed), out / "logs")
    return summary


def _data(sweep: Sweep, out: Path) -> dict[str, str]:
    """Paths of the training and evaluation data (generated once into out/data).

    Files named by the sweep's `data` win; a task generates the rest: the test set from seed + 1,
    the training set from seed, without the questions of the test set when `disjoint` is true.
    """
    given = dict(sweep.data or {})
    if sweep.task is None or "train" in given:
        return given
    from rim.data.readers import read_records
    from rim.data.writers import write_records

    task = sweep.task
    seed = int(task.get("seed", 0))
    options = dict(task.get("options") or {})
    test = Path(given["eval"]) if "eval" in given else out / "data" / "test.jsonl"
    if not test.is_file():
        write_records(task_records(task["name"], int(task.get("test", 500)), seed + 1, options),
                      test)
    train = out / "data" / "train.jsonl"
    if not train.is_file():
        records = task_records(task["name"], int(task.get("train", 10000)), seed, options)
        if task.get("disjoint"):
            held_out = {r.question for r in read_records(test)}
            records = [r for r in records if r.question not in held_out]
        write_records(records, train)
    return {"train": str(train.resolve()), "eval": str(test.resolve())}


def _finished(job: Job) -> bool:
    """True if the run has its eval.json; raises if it was trained with another config."""
    if not (job.run_dir / "eval.json").is_file():
        return False
    saved = job.run_dir / "config.yaml"
    if saved.is_file():
        raw = yaml.safe_load(saved.read_text()) or {}
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
            key = _first_difference(old, new)
            raise RimInputError(f"a finished run was trained with another config than the sweep "
                                f"now asks for ({key}): use another --out or delete the run",
                                source=str(job.run_dir))
    return True


def _first_difference(old: Any, new: Any, prefix: str = "") -> str:
    """The dotted key of the first setting that differs between two config dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
    return prefix.rstrip(".") or "config"


def _run_in_process(jobs: list[Job], out: Path, console: Console | None) -> list[str]:
    from rim.run import run_training

    failed = []
    for i, job in enumerate(jobs, start=1):
        if console is not None:
            console.print(f"[{i}/{len(jobs)}] training {job.method}, seed {job.seed}")
        try:
            run_training(job.cfg, job.run_dir, Reporter(console, enabled=console is not None))
        except Exception:  # one failed run should not lose the others
            log_file = out / "logs" / f"{job.name}.log"
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.write_text(traceback.format_exc())
            log.error("run %s failed; see %s", job.name, log_file)
            failed.append(job.name)
    return failed


def _run_subprocesses(jobs: list[Job], out: Path, concurrent: int, threads: int | None,
                      console: Console | None) -> list[str]:
    """Run `rim train` for every job, `concurrent` at a time."""
    env = {**os.environ}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    (out / "configs").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    pending, running, failed, done = list(jobs), {}, [], 0
    with _stop_children_on_exit(running):
        while pending or running:
            while pending and len(running) < concurrent:
                job = pending.pop(0)
                config = out / "configs" / f"{job.name}.yaml"
                config.write_text(yaml.safe_dump(job.cfg.to_dict(), sort_keys=False))
                log_file = (out / "logs" / f"{job.name}.log").open("w")
                proc = subprocess.Popen(
                    [sys.executable, "-m", "rim.cli", "train", str(config), "--out",
                     str(job.run_dir), "--no-progress"], stdout=log_file, stderr=subprocess.STDOUT,
                    env=env)
                running[job.name] = (proc, log_file)
                if console is not None:
                    console.print(f"started {job.name} (pid {proc.pid})")
            time.sleep(0.5)
            for name, (proc, log_file) in list(running.items()):
                if proc.poll() is None:
                    continue
                log_file.close()
                del running[name]
                done += 1
                if proc.returncode != 0:
                    failed.append(name)
                    log.error("run %s failed (exit %d); see %s", name, proc.returncode,
                              out / "logs" / f"{name}.log")
                elif console is not None:
                    console.print(f"finished {name} ({done}/{len(jobs)})")
    return failed


@contextlib.contextmanager
def _stop_children_on_exit(running: dict[str, tuple[subprocess.Popen, Any]]):
    """On any exit (an error, Ctrl-C, or SIGTERM from `timeout`), stop the runs still training
    instead of leaving them orphaned; their directories lack eval.json, so a resume retrains."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_exit) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        for proc, _ in running.values():
            proc.terminate()
        for proc, log_file in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_file.close()


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


# --- summary -----------------------------------------------------------------------------------

def _train_seconds(run_dir: Path) -> tuple[float | None, int | None]:
    """Training wall time (sum over stages) and optimizer steps of a finished run."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None, None
    last: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        last[row["stage"]] = row
    if not last:
        return None, None
    return (sum(r["elapsed_s"] for r in last.values()), max(r["step"] for r in last.values()))


def _mean_se(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = statistics.mean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return mean, se


def _seen(data: dict[str, str]) -> float | None:
    """Fraction of the test questions that are also training questions (None without files)."""
    from rim.data.readers import read_records
    from rim.data.stats import seen_fraction

    if not all(Path(data.get(k, "")).is_file() for k in ("train", "eval")):
        return None
    return seen_fraction(read_records(data["eval"]), read_records(data["train"]))


def _digit_accuracy(job: Job, result: dict[str, Any]) -> float | None:
    """Per-digit accuracy of a run evaluated with the `digits` checker (None otherwise); runs
    evaluated before `evaluate` reported it get it from their saved predictions."""
    if job.cfg.data.checker != "digits":
        return None
    if "digit_accuracy" in result:
        return result["digit_accuracy"]
    from rim.data.answers import mean_digit_accuracy
    from rim.data.readers import read_records

    return mean_digit_accuracy(result["predictions"],
                               [r.answer for r in read_records(job.cfg.data.eval)])


def summarise(sweep: Sweep, jobs: list[Job], out: Path, data: dict[str, str]) -> dict[str, Any]:
    """Per run and per method results of the finished runs among `jobs` (`data`: the resolved
    training and evaluation files)."""
    runs = []
    for job in jobs:
        path = job.run_dir / "eval.json"
        if not path.is_file():
            continue
        result = json.loads(path.read_text())
        seconds, steps = _train_seconds(job.run_dir)
        runs.append({"method": job.method, "seed": job.seed, "accuracy": result["accuracy"],
                     "digit_accuracy": _digit_accuracy(job, result),
                     "any_block_accuracy": result.get("any_block_accuracy"),
                     "per_block": result.get("per_block"), "n": result.get("n"),
                     "ttft_ms": result.get("ttft_ms"), "train_s": seconds, "steps": steps,
                     "run": str(job.run_dir.relative_to(out))})
    rows = []
    for method in sweep.methods:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        mean, se = _mean_se([r["accuracy"] for r in mine])
        anyb, _ = _mean_se([r["any_block_accuracy"] for r in mine
                            if r["any_block_accuracy"] is not None])
        blocks = [r["per_block"] for r in mine if r["per_block"]]
        per_block = ([statistics.mean(col) for col in zip(*blocks)]
                     if blocks and len({len(b) for b in blocks}) == 1 else None)
        digits = [r["digit_accuracy"] for r in mine if r["digit_accuracy"] is not None]
        train_s, _ = _mean_se([r["train_s"] for r in mine if r["train_s"] is not None])
        ttft, _ = _mean_se([r["ttft_ms"] for r in mine if r["ttft_ms"] is not None])
        rows.append({"method": method, "seeds": len(mine), "accuracy": mean, "stderr": se,
                     "seed_accuracies": [r["accuracy"] for r in mine],
                     "digit_accuracy": statistics.mean(digits) if digits else None,
                     "any_block_accuracy": anyb, "per_block": per_block,
                     "steps": mine[0]["steps"], "train_s": train_s, "ttft_ms": ttft})
    return {"task": sweep.task, "data": data, "test_seen_in_train": _seen(data),
            "eval_file": (sweep.data or {}).get("eval") if sweep.task else None,
            "source": sweep.source,
            "seeds": sweep.seeds, "expected_runs": len(jobs), "finished_runs": len(runs),
            "environment": report.environment(), "rows": rows, "runs": runs}


COLUMNS = [
    report.Column("method", "method", align="left"),
    report.Column("seeds", "seeds"),
    report.Column("accuracy", "final-block accuracy (%)", report.percent()),
    report.Column("stderr", "± s.e.", report.percent()),
    report.Column("digit_accuracy", "digits (%)", report.percent()),
    report.Column("seed_list", "per seed (%)", align="left"),
    report.Column("any_block_accuracy", "any-block (%)", report.percent()),
    report.Column("per_block_list", "after each block (%)", align="left"),
    report.Column("steps", "steps"),
    report.Column("train_s", "train s", report.fixed(0)),
]


def _display(rows: list[dict]) -> list[dict]:
    shown = []
    for r in rows:
        shown.append({**r, "seed_list": " ".join(f"{100 * a:.1f}" for a in r["seed_accuracies"]),
                      "per_block_list": " ".join(f"{100 * a:.0f}" for a in r["per_block"])
                      if r["per_block"] else "-"})
    return shown


def _write(summary: dict, out: Path, console: Console | None) -> None:
    task = summary["task"]
    what = (f"task {task['name']} {task.get('options') or ''}".strip() if task
            else f"data {summary['data']}")
    if task and summary.get("eval_file"):
        what += f", evaluated on {os.path.relpath(summary['eval_file'])}"
    title = f"Accuracy: {what}"
    notes = [f"{summary['finished_runs']} of {summary['expected_runs']} runs finished "
             f"(seeds {', '.join(map(str, summary['seeds']))}); mean and standard error over "
             f"seeds. Sweep: {summary['source']}."]
    if summary.get("test_seen_in_train") is not None:
        notes.append(f"Test questions also in the training data: "
                     f"{100 * summary['test_seen_in_train']:.1f}%.")
    report.publish(out, "accuracy", summary, title, _display(summary["rows"]), COLUMNS, notes,
                   plot if summary["rows"] else None, console)


def plot(summary: dict, path: Path) -> Path | None:
    """Final-block accuracy per method (mean, s.e., seeds as dots); accuracy after each block."""
    plt = report.pyplot()
    if plt is None:
        return None
    rows = summary["rows"]
    blocky = [r for r in rows if r["per_block"]]
    fig, axes = plt.subplots(1, 2 if blocky else 1, figsize=(11 if blocky else 6, 4),
                             squeeze=False)
    ax = axes[0][0]
    xs = range(len(rows))
    ax.bar(xs, [100 * r["accuracy"] for r in rows],
           yerr=[100 * (r["stderr"] or 0) for r in rows], capsize=4, color="tab:blue", alpha=0.7)
    for x, r in zip(xs, rows):
        ax.scatter([x] * len(r["seed_accuracies"]), [100 * a for a in r["seed_accuracies"]],
                   color="black", s=12, zorder=3)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r["method"] for r in rows])
    ax.set_ylabel("final-block accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    if blocky:
        ax = axes[0][1]
        for r in blocky:
            ks = range(1, len(r["per_block"]) + 1)
            ax.plot(list(ks), [100 * a for a in r["per_block"]], marker="o", label=r["method"])
            ax.set_xticks(list(ks))
        ax.set_xlabel("memory blocks read")
        ax.set_ylabel("accuracy after block k (%), mean over seeds")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend()
    task = summary["task"]
    fig.suptitle(f"{task['name'] if task else 'data'}: {summary['finished_runs']} runs", fontsize=9)
    return report.save_figure(fig, path)
