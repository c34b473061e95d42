"""`rim quickstart`: generate a task offline, train RiM and no-CoT from scratch, compare.

Both runs start as `rim train` processes side by side (one CPU thread each), so the whole
job fits a few minutes on two cores. Results go to `OUT/results.json` and a table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rim.config import load_config
from rim.data.stats import seen_fraction
from rim.data.writers import write_records
from rim.errors import RimInputError
from rim.tasks.chain import generate_chain
from rim.train import stage_steps

OPS = 4
NOCOT_STEPS = 3000  # a no-CoT step is cheaper: 3000 take about the wall time of RiM's 1400


def quickstart(out: Path, console: Console, *, train_size: int = 20000, test_size: int = 500,
               nocot_steps: int = NOCOT_STEPS, overrides: tuple[str, ...] = ()) -> dict:
    """Run the quickstart into `out`; return what it writes to `out/results.json`.

    The keyword arguments shrink it (the tests run it with a few steps); `overrides` are
    `key=value` settings applied to both runs.
    """
    if out.exists() and any(out.iterdir()):
        raise RimInputError("output directory exists and is not empty", source=str(out))
    start = time.perf_counter()
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    train, test = generate_chain(train_size, seed=0, ops=OPS), generate_chain(test_size, seed=1, ops=OPS)
    write_records(train, data / "train.jsonl")
    write_records(test, data / "test.jsonl")
    config = out / "config.yaml"
    config.write_text(resources.files("rim").joinpath("configs/quickstart.yaml").read_text())
    common = [f"data.train={data / 'train.jsonl'}", f"data.eval={data / 'test.jsonl'}",
              *overrides]
    runs = {
        "rim": common + ["method.name=rim"],
        "nocot": common + ["method.name=nocot", f"trainer.stage2.steps={nocot_steps}",
                           "trainer.stage2.lr=1e-3"],
    }
    _train_side_by_side(config, out, runs, console)
    methods = {}
    for name in runs:
        result = json.loads((out / name / "eval.json").read_text())
        methods[name] = {k: result[k] for k in ("accuracy", "ttft_ms", "latency_ms_per_question")
                         if k in result}
        if "per_block" in result:
            methods[name]["per_block"] = result["per_block"]
    results = {"task": f"digit chains, {OPS} moves mod 10 (chance 10%)",
               "test_seen_in_train": seen_fraction(test, train),
               "wall_seconds": round(time.perf_counter() - start, 1), "methods": methods}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    console.print(results_table(results))
    return results


def _train_side_by_side(config: Path, out: Path, runs: dict[str, list[str]],
                        console: Console) -> None:
    procs, totals = {}, {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, overrides in runs.items():
        cfg = load_config(config, overrides)
        totals[name] = sum(stage_steps(getattr(cfg.trainer, s), 1, 1) for s in
                           ("stage1", "stage2") if name == "rim" or s == "stage2")
        log = (out / f"{name}.log").open("w")
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "rim.cli", "train", str(config), "--out", str(out / name),
             "--no-progress", *overrides], stdout=log, stderr=subprocess.STDOUT, env=env)
    columns = (TextColumn("{task.description:>6}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        tasks = {n: bar.add_task(n, total=totals[n], status="training") for n in procs}
        while any(p.poll() is None for p in procs.values()):
            for name in procs:
                bar.update(tasks[name], completed=_last_step(out / name / "metrics.jsonl"),
                           status="training" if procs[name].poll() is None else "done")
            time.sleep(1)
        for name in procs:
            bar.update(tasks[name], completed=totals[name], status="done")
    failed = [n for n, p in procs.items() if p.returncode != 0]
    if failed:
        raise RuntimeError(f"training {', '.join(failed)} failed; see {out}/{failed[0]}.log")


def _last_step(metrics: Path) -> int:
    if not metrics.is_file():
        return 0
    lines = metrics.read_text().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0


def results_table(results: dict) -> Table:
    """The quickstart's comparison table."""
    table = Table(title=f"quickstart: {results['task']}, {results['wall_seconds']:.0f} s")
    for column in ("method", "accuracy", "accuracy after each block", "time to first token"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, row in results["methods"].items():
        blocks = " ".join(f"{100 * a:.0f}" for a in row.get("per_block", [])) or "-"
        table.add_row(name, f"{100 * row['accuracy']:.1f}%", blocks, f"{row['ttft_ms']:.2f} ms")
    if "test_seen_in_train" in results:
        table.caption = (f"{100 * results['test_seen_in_train']:.0f}% of the test questions also "
                         "occur in the training data")
    return table
