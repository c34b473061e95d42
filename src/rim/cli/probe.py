"""`rim probe fit` and the probe's uses in `rim eval` (`--select probe`, `--adaptive`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from rim.bench import report
from rim.common.progress import console, err_console

THRESHOLDS = [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]


def register(subparsers: Any) -> None:
    """Add ``probe fit`` to the main CLI."""
    probe = subparsers.add_parser("probe", help="a correctness probe on the memory blocks")
    sub = probe.add_subparsers(dest="probe_command", metavar="{fit}", required=True)
    p = sub.add_parser(
        "fit",
        help="fit the probe on a labelled file; report AUROC per block",
        epilog="example: rim probe fit runs/quickstart/rim --data runs/quickstart/data/test.jsonl",
    )
    p.add_argument("run", help="run directory (or its model/ directory)")
    p.add_argument("--data", required=True, help="records with gold answers (half fits)")
    p.add_argument("--layer", type=int, default=-1, help="hidden layer (-1: the last)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fit/test split")
    p.set_defaults(func=cmd_probe_fit)


def cmd_probe_fit(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rim.analysis.probe import fit_probe
    from rim.common.rundir_lock import run_dir_lock
    from rim.data.sources import load_records
    from rim.inference.infer import load_run
    from rim.models.runinfo import model_directory

    model_dir = model_directory(args.run)  # the lock is on its run directory, if it has one
    locked = model_dir.parent if (model_dir.parent / "config.yaml").is_file() else model_dir
    with run_dir_lock(locked, "rim probe fit"):
        run = load_run(args.run)
        probe, found = fit_probe(
            run, load_records(args.data), run.info.checker, args.layer, args.seed, source=args.data
        )
        if (model_dir / "probe.safetensors").exists():
            err_console.print(
                f"replacing the probe in {model_dir}", markup=False, highlight=False, soft_wrap=True
            )
        probe.save(args.run, asdict(found))
    table = Table(title=f"probe on layer {args.layer}: fitted on {found.n_fit}, tested on {found.n_test}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, value in enumerate(found.auroc_per_block, start=1):
        table.add_row(f"AUROC after block {k}", "-" if value is None else f"{value:.3f}")
    table.add_row("last-block accuracy", f"{100 * found.last_block_accuracy:.1f}%")
    table.add_row("probe-selected accuracy", f"{100 * found.selected_accuracy:.1f}%")
    table.add_row("any-block accuracy", f"{100 * found.any_block_accuracy:.1f}%")
    if found.selected_right_where_some_block_is is not None:
        table.add_row(
            "selected right where some block is", f"{100 * found.selected_right_where_some_block_is:.1f}%"
        )
    console.print(table)
    return 0


def probe_eval(
    run,
    run_path: str,
    records,
    checker: str,
    select: bool,
    adaptive: bool,
    out: Path | None,
    answers: list[list[str]] | None = None,
) -> dict:
    """Probe-selected accuracy and the adaptive-compute table of `run` on `records`; `answers`
    (after every block, per record) are decoded here unless the evaluation already has them."""
    import torch

    from rim.analysis.probe import Probe, adaptive_table, block_states, correctness

    probe = Probe.load(run_path)
    questions = [r.question for r in records]
    if answers is None:
        answers = run.answers_every_block(questions)
    right = correctness(answers, records, checker)
    confidence = probe.confidence(block_states(run, questions, probe.layer))
    result: dict = {"fixed_k_accuracy": right.float().mean(0).tolist()}
    if select:
        chosen = right[torch.arange(len(right)), confidence.argmax(1)]
        result["probe_selected_accuracy"] = float(chosen.float().mean())
    if adaptive:
        rows = adaptive_table(confidence, right, THRESHOLDS)
        result["adaptive"] = rows
        if out is not None:
            columns = [
                report.Column("threshold", "confidence threshold", report.fixed(2)),
                report.Column("mean_blocks", "mean blocks used", report.fixed(2)),
                report.Column("accuracy", "accuracy (%)", report.percent()),
            ]
            fixed = ", ".join(
                f"K={k} {100 * a:.1f}%" for k, a in enumerate(result["fixed_k_accuracy"], start=1)
            )
            report.publish(
                out,
                "adaptive",
                result,
                "Adaptive compute: answer after the first block the probe trusts",
                rows,
                columns,
                [f"{len(records)} questions. Fixed K: {fixed}."],
                _plot,
                console,
            )
    return result


def _plot(result: dict, path: Path) -> Path | None:
    plt = report.pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    rows = result["adaptive"]
    ax.plot(
        [r["mean_blocks"] for r in rows],
        [100 * r["accuracy"] for r in rows],
        marker="o",
        label="adaptive (probe threshold)",
    )
    fixed = result["fixed_k_accuracy"]
    ax.plot(range(1, len(fixed) + 1), [100 * a for a in fixed], marker="s", label="fixed K")
    ax.set_xlabel("blocks used (mean)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    return report.save_figure(fig, path)
