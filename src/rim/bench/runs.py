"""`rim bench runs`: finished training runs side by side, read from what they wrote.

Per run and stage: its attention kernel and packing (from config.yaml), the optimizer steps,
the stage's seconds, and examples per second: optimizer steps x effective batch / seconds.
Examples, not tokens: a padded and a packed run train on the same examples but on different
numbers of (padding) tokens. `steady` leaves out the first log window, which holds the
warm-up (and FlexAttention's compilation). Also the GPU memory peak (on CUDA the trainer logs
`max_memory_mib`, the peak so far, in every metrics row), the last logged loss and, where the
run evaluated, its final-block accuracy.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import yaml
from rich.console import Console

from rim.bench import report
from rim.common.errors import RimInputError

COLUMNS = [
    report.Column("run", "run", align="left"),
    report.Column("attention", "attention", align="left"),
    report.Column("packing", "packed"),
    report.Column("stage", "stage", align="left"),
    report.Column("steps", "steps"),
    report.Column("seconds", "seconds", report.fixed(1)),
    report.Column("examples_per_s", "examples/s", report.fixed(0)),
    report.Column("steady_examples_per_s", "examples/s after the first window", report.fixed(0)),
    report.Column("max_memory_mib", "GPU memory peak (MiB)", report.fixed(0)),
    report.Column("last_loss", "last loss", report.fixed(4)),
    report.Column("accuracy", "accuracy", report.percent()),
]


def compare_runs(runs: Sequence[str | Path], out: str | Path, console: Console | None = None) -> dict:
    """Read each run directory's config.yaml, metrics.jsonl and eval.json; write runs.json/.md."""
    rows = [row for run in runs for row in _rows(Path(run))]
    result = {"runs": [str(r) for r in runs], "rows": rows, "environment": report.environment()}
    notes = [
        "examples/s = optimizer steps x effective batch / seconds of the stage (from "
        "metrics.jsonl); after the first window: the median over the later log windows "
        "(no warm-up, no compilation)."
    ]
    report.publish(
        Path(out), "runs", result, "Training runs side by side", rows, COLUMNS, notes, plot, console
    )
    return result


def plot(result: dict, path: Path) -> Path | None:
    """Examples per second of each run, stage by stage."""
    plt = report.pyplot()
    if plt is None:
        return None
    rows = result["rows"]
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    series = {
        run: [
            next((r["examples_per_s"] for r in rows if r["run"] == run and r["stage"] == stage), float("nan"))
            for stage in stages
        ]
        for run in dict.fromkeys(r["run"] for r in rows)
    }
    fig, ax = plt.subplots(figsize=(6, 4))
    report.grouped_bars(ax, stages, series)
    ax.set_ylabel("examples per second (whole stage)")
    ax.legend(fontsize=8)
    return report.save_figure(fig, path)


def _rows(run: Path) -> list[dict]:
    for name in ("config.yaml", "metrics.jsonl"):
        if not (run / name).is_file():
            raise RimInputError(f"not a training run (no {name})", source=str(run))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    lines = (run / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines if line.strip()]
    accuracy = None
    if (run / "eval.json").is_file():
        accuracy = json.loads((run / "eval.json").read_text()).get("accuracy")
    rows = []
    for stage in (m for m in metrics if m.get("event") == "stage"):
        logged = [m for m in metrics if m.get("stage") == stage["stage"] and "loss" in m]
        if not logged:
            continue
        batch = stage["plan"]["effective_batch"]
        seconds = logged[-1]["elapsed_s"]  # the stage's window runs from its start
        windows = [
            (b["stage_step"] - a["stage_step"]) * batch / (b["elapsed_s"] - a["elapsed_s"])
            for a, b in zip(logged, logged[1:])
            if b["elapsed_s"] > a["elapsed_s"]
        ]
        rows.append(
            {
                "run": run.name,
                "attention": cfg["model"].get("attn_implementation") or "default",
                "packing": bool(cfg["trainer"].get("packing")),
                "stage": stage["stage"],
                "steps": logged[-1]["stage_step"],
                "seconds": seconds,
                "examples_per_s": logged[-1]["stage_step"] * batch / seconds,
                "steady_examples_per_s": statistics.median(windows) if windows else None,
                "max_memory_mib": max(
                    (m["max_memory_mib"] for m in logged if "max_memory_mib" in m), default=None
                ),
                "last_loss": logged[-1]["loss"],
                "accuracy": accuracy,
            }
        )
    return rows
