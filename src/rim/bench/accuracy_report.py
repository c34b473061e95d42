"""The summary of an accuracy sweep: per run and per method results, a table and a plot."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console

from rim.bench import report
from rim.bench.paper import COLUMNS as PAPER_COLUMNS
from rim.bench.paper import add_published
from rim.bench.sweep import Sweep
from rim.training.jobs import Job


def _train_seconds(run_dir: Path) -> tuple[float | None, int | None]:
    """Training wall time (sum over stages) and optimizer steps of a finished run."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None, None
    last: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "loss" not in row:  # stage and evaluation rows
            continue
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

    held = data.get("test") or data.get("eval") or ""  # the reported split
    if not (Path(data.get("train", "")).is_file() and Path(held).is_file()):
        return None
    return seen_fraction(read_records(held), read_records(data["train"]))


def _digit_accuracy(job: Job, result: dict[str, Any]) -> float | None:
    """Per-digit accuracy of a run evaluated with the `digits` checker (None otherwise); runs
    evaluated before `evaluate` reported it get it from their saved predictions."""
    if job.cfg.data.checker != "digits":
        return None
    if "digit_accuracy" in result:
        return result["digit_accuracy"]
    from rim.data.answers import mean_digit_accuracy
    from rim.data.readers import read_records

    return mean_digit_accuracy(
        result["predictions"], [r.answer for r in read_records(_reported_file(job, result))]
    )


def _reported_file(job: Job, result: dict[str, Any]) -> str:
    """The data file of the split whose scores are eval.json's top-level keys (`reported`: the
    test split when the run had one; an eval.json from before the splits: `data.eval`)."""
    data = job.cfg.data
    return str(data.test if result.get("reported") == "test" and data.test else data.eval)


def _scored(job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """`result` under the one scoring rule of `rim.data.answers`: an eval.json written before
    it (no `unparsable`) is scored again from its saved final answers, and its per-block and
    any-block accuracies, whose answers it did not save, are dropped."""
    if "unparsable" in result or "predictions" not in result:
        return result
    from rim.data.answers import check_answer, parsable
    from rim.data.sources import load_records

    predictions, checker = result["predictions"], job.cfg.data.checker
    golds = [r.answer for r in load_records(_reported_file(job, result))]
    if len(golds) != len(predictions) or not golds:
        return result
    right = [check_answer(p, g, checker) for p, g in zip(predictions, golds)]
    return {
        **result,
        "accuracy": sum(right) / len(right),
        "correct": right,
        "unparsable": sum(not parsable(p, checker) for p in predictions) / len(right),
        "per_block": None,
        "any_block_accuracy": None,
    }


def summarise(sweep: Sweep, jobs: list[Job], out: Path, data: dict[str, str]) -> dict[str, Any]:
    """Per run and per method results of the finished runs among `jobs` (`data`: the resolved
    training and evaluation files); a job's name is `METHOD-seedS`."""
    runs = []
    for job in jobs:
        path = job.run_dir / "eval.json"
        if not path.is_file():
            continue
        result = _scored(job, json.loads(path.read_text()))
        seconds, steps = _train_seconds(job.run_dir)
        name, seed = job.cfg.method.name, job.cfg.trainer.seed
        runs.append(
            {
                "method": name,
                "seed": seed,
                "accuracy": result["accuracy"],
                "digit_accuracy": _digit_accuracy(job, result),
                "any_block_accuracy": result.get("any_block_accuracy"),
                "per_block": result.get("per_block"),
                "n": result.get("n"),
                "unparsable": result.get("unparsable"),
                "ttft_ms": result.get("ttft_ms"),
                "train_s": seconds,
                "steps": steps,
                "run": str(job.run_dir.relative_to(out)),
            }
        )
    rows = []
    for method in sweep.methods:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        mean, se = _mean_se([r["accuracy"] for r in mine])
        anyb, _ = _mean_se([r["any_block_accuracy"] for r in mine if r["any_block_accuracy"] is not None])
        blocks = [r["per_block"] for r in mine if r["per_block"]]
        per_block = (
            [statistics.mean(col) for col in zip(*blocks)]
            if blocks and len({len(b) for b in blocks}) == 1
            else None
        )
        digits = [r["digit_accuracy"] for r in mine if r["digit_accuracy"] is not None]
        train_s, _ = _mean_se([r["train_s"] for r in mine if r["train_s"] is not None])
        ttft, _ = _mean_se([r["ttft_ms"] for r in mine if r["ttft_ms"] is not None])
        unparsable, _ = _mean_se([r["unparsable"] for r in mine if r["unparsable"] is not None])
        rows.append(
            {
                "method": method,
                "seeds": len(mine),
                "accuracy": mean,
                "stderr": se,
                "seed_accuracies": [r["accuracy"] for r in mine],
                "digit_accuracy": statistics.mean(digits) if digits else None,
                "any_block_accuracy": anyb,
                "per_block": per_block,
                "unparsable": unparsable,
                "steps": mine[0]["steps"],
                "train_s": train_s,
                "ttft_ms": ttft,
            }
        )
    if sweep.published:  # a paper table: the published number beside ours
        add_published(rows, sweep.published)
    task = sweep.task.model_dump() if sweep.task is not None else None
    return {
        "task": task,
        "data": data,
        "test_seen_in_train": _seen(data),
        "table": sweep.table,
        "stand_in": sweep.stand_in is not None,
        "published": bool(sweep.published),
        "eval_file": (sweep.data or {}).get("eval") if sweep.task else None,
        "source": sweep.source,
        "seeds": sweep.seeds,
        "expected_runs": len(jobs),
        "finished_runs": len(runs),
        "environment": report.environment(),
        "rows": rows,
        "runs": runs,
    }


COLUMNS = [
    report.Column("method", "method", align="left"),
    report.Column("seeds", "seeds"),
    report.Column("accuracy", "final-block accuracy (%)", report.percent()),
    report.Column("stderr", "± s.e.", report.percent()),
    report.Column("digit_accuracy", "digits (%)", report.percent()),
    report.Column("seed_list", "per seed (%)", align="left"),
    report.Column("any_block_accuracy", "any-block (%)", report.percent()),
    report.Column("per_block_list", "after each block (%)", align="left"),
    report.Column("unparsable", "no answer (%)", report.percent()),
    report.Column("steps", "steps"),
    report.Column("train_s", "train s", report.fixed(0)),
]


def _display(rows: list[dict]) -> list[dict]:
    shown = []
    for r in rows:
        shown.append(
            {
                **r,
                "seed_list": " ".join(f"{100 * a:.1f}" for a in r["seed_accuracies"]),
                "per_block_list": " ".join(f"{100 * a:.0f}" for a in r["per_block"])
                if r["per_block"]
                else "-",
            }
        )
    return shown


def write_summary(summary: dict, out: Path, console: Console | None) -> None:
    """accuracy.json, .md and .png in `out`, and the table on `console`."""
    task = summary["task"]
    what = f"task {task['name']} {task.get('options') or ''}".strip() if task else f"data {summary['data']}"
    if task and summary.get("eval_file"):
        what += f", evaluated on {os.path.relpath(summary['eval_file'])}"
    title = f"Accuracy: {what}"
    if summary.get("table"):
        title = f"{summary['table']}{' (CPU stand-in)' if summary.get('stand_in') else ''}"
    notes = [
        f"{summary['finished_runs']} of {summary['expected_runs']} runs finished "
        f"(seeds {', '.join(map(str, summary['seeds']))}); mean and standard error over "
        f"seeds. Sweep: {summary['source']}."
    ]
    if summary.get("test_seen_in_train") is not None:
        notes.append(f"Test questions also in the training data: {100 * summary['test_seen_in_train']:.1f}%.")
    columns = COLUMNS + PAPER_COLUMNS if summary.get("published") else COLUMNS
    if summary.get("stand_in"):
        notes.append(
            "Stand-in run: tiny random models and generated data, to check the "
            "pipeline; its accuracies are not comparable with the published ones."
        )
    report.publish(
        out,
        "accuracy",
        summary,
        title,
        _display(summary["rows"]),
        columns,
        notes,
        plot if summary["rows"] else None,
        console,
    )


def plot(summary: dict, path: Path) -> Path | None:
    """Final-block accuracy per method (mean, s.e., seeds as dots); accuracy after each block."""
    plt = report.pyplot()
    if plt is None:
        return None
    rows = summary["rows"]
    blocky = [r for r in rows if r["per_block"]]
    fig, axes = plt.subplots(1, 2 if blocky else 1, figsize=(11 if blocky else 6, 4), squeeze=False)
    ax = axes[0][0]
    xs = range(len(rows))
    ax.bar(
        xs,
        [100 * r["accuracy"] for r in rows],
        yerr=[100 * (r["stderr"] or 0) for r in rows],
        capsize=4,
        color="tab:blue",
        alpha=0.7,
    )
    for x, r in zip(xs, rows):
        ax.scatter(
            [x] * len(r["seed_accuracies"]),
            [100 * a for a in r["seed_accuracies"]],
            color="black",
            s=12,
            zorder=3,
        )
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
