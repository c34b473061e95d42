"""`rim quickstart`: generate a task offline, train RiM and no-CoT from scratch, compare.

A two-method sweep: both runs start as `rim train` processes side by side (one CPU thread
each, `rim.training.jobs`), so the whole job fits a few minutes on two cores. Results go to
`OUT/results.json` and a table.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from rim.bench.sweep import Sweep, TaskSpec
from rim.bench.sweep_data import sweep_data
from rim.common.errors import RimInputError
from rim.config import Config, apply_overrides
from rim.data.readers import read_records
from rim.data.stats import seen_fraction
from rim.training.jobs import Job, run_jobs

OPS = 4
NOCOT_STEPS = 3000  # a no-CoT step is cheaper: 3000 take about the wall time of RiM's 1400


def quickstart(
    out: Path,
    console: Console,
    *,
    train_size: int = 20000,
    test_size: int = 500,
    nocot_steps: int = NOCOT_STEPS,
    overrides: tuple[str, ...] = (),
    seed: int = 0,
) -> dict:
    """Run the quickstart into `out`; return what it writes to `out/results.json`.

    The test questions are held out of the training data, so it measures generalisation to
    unseen questions. The keyword arguments shrink it (the tests run it with a few steps);
    `overrides` are `key=value` settings applied to both runs; `seed` is their training seed (the data stay).
    """
    if out.exists() and not out.is_dir():
        raise RimInputError("is a file, not a directory", source=str(out))
    if out.exists() and any(out.iterdir()):
        raise RimInputError("output directory exists and is not empty", source=str(out))
    start = time.perf_counter()
    base = yaml.safe_load(resources.files("rim").joinpath("configs/quickstart.yaml").read_text())
    apply_overrides(base, overrides, Config)
    sweep = Sweep(
        base,
        {"rim": {}, "nocot": {"trainer.baseline.steps": nocot_steps, "trainer.baseline.lr": 1e-3}},
        seeds=[seed],
        task=TaskSpec(name="chain", train=train_size, test=test_size, disjoint=True, options={"ops": OPS}),
        concurrent=2,
        threads=1,
        source="rim quickstart",
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    data = sweep_data(sweep, out)
    jobs = [Job(m, sweep.run_config(m, seed, data), out / m) for m in sweep.methods]
    failed = run_jobs(jobs, out, sweep.concurrent, sweep.threads, console)
    if failed:
        raise RuntimeError(f"training {', '.join(failed)} failed; see {out}/logs/{failed[0]}.log")
    methods = {}
    for job in jobs:
        result = json.loads((job.run_dir / "eval.json").read_text())
        methods[job.name] = {
            k: result[k] for k in ("accuracy", "ttft_ms", "latency_ms_per_question") if k in result
        }
        if "per_block" in result:
            methods[job.name]["per_block"] = result["per_block"]
    seen = seen_fraction(read_records(data["eval"]), read_records(data["train"]))
    results = {
        "task": f"digit chains, {OPS} moves mod 10 (chance 10%)",
        "test_seen_in_train": seen,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "methods": methods,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    console.print(results_table(results))
    return results


def results_table(results: dict) -> Table:
    """The quickstart's comparison table."""
    table = Table(title=f"quickstart: {results['task']}, {results['wall_seconds']:.0f} s")
    for column in ("method", "accuracy", "accuracy after each block", "time to first token"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, row in results["methods"].items():
        blocks = " ".join(f"{100 * a:.0f}" for a in row.get("per_block", [])) or "-"
        table.add_row(name, f"{100 * row['accuracy']:.1f}%", blocks, f"{row['ttft_ms']:.2f} ms")
    if "test_seen_in_train" in results:
        seen = results["test_seen_in_train"]
        table.caption = (
            "test questions held out of training"
            if seen == 0
            else f"{100 * seen:.0f}% of the test questions also occur in the training data"
        )
    return table
