"""The `rim` command: train, eval, infer, quickstart, data, bench."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rim.errors import RimInputError

console = Console()
err_console = Console(stderr=True)


def cmd_train(args: argparse.Namespace) -> int:
    from rim.config import load_config
    from rim.progress import Reporter
    from rim.run import run_training

    cfg = load_config(args.config, args.overrides)
    result = run_training(cfg, args.out, Reporter(enabled=not args.no_progress))
    if result:
        console.print(eval_table(result, title=f"{cfg.method.name} on {cfg.data.eval}"))
    console.print(f"model saved to {Path(args.out) / 'model'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from rim.data.readers import read_records
    from rim.evaluate import evaluate
    from rim.infer import load_run

    records = read_records(args.data)[: args.limit]
    run = load_run(args.run)
    checker = args.checker or run.info.get("checker", "exact")
    passes = max(run.blocks, 1) if not args.final_only else 1
    with Progress(console=err_console, disable=args.json, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(records) * passes)
        result = evaluate(run, records, checker, batch_size=args.batch_size,
                          per_block=not args.final_only,
                          progress=lambda n: bar.advance(task, n))
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2))
    else:
        console.print(eval_table(result, title=f"{args.run} on {args.data}"))
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from rim.infer import load_run

    run = load_run(args.run)
    if args.every_block and run.blocks:
        for k in range(1, run.blocks + 1):
            console.print(f"after block {k}: {run.answers([args.question], blocks=k)[0]}",
                          markup=False, highlight=False)
    else:
        print(run.answers([args.question])[0])
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from rim.quickstart import quickstart

    quickstart(Path(args.out), console)
    return 0


def eval_table(result: dict, title: str) -> Table:
    """A rich table of an evaluation result."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("questions", str(result["n"]))
    table.add_row("final-block accuracy", f"{100 * result['accuracy']:.1f}%")
    if "digit_accuracy" in result:
        table.add_row("  digits right", f"{100 * result['digit_accuracy']:.1f}%")
    if "any_block_accuracy" in result:
        table.add_row("any-block accuracy", f"{100 * result['any_block_accuracy']:.1f}%")
        for k, acc in enumerate(result["per_block"], start=1):
            table.add_row(f"  after block {k}", f"{100 * acc:.1f}%")
    table.add_row("latency per question (batched)", f"{result['latency_ms_per_question']:.2f} ms")
    table.add_row("time to first token (batch 1)", f"{result['ttft_ms']:.2f} ms")
    return table


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `rim`."""
    parser = argparse.ArgumentParser(prog="rim", description="Reasoning in Memory")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model with a method from a YAML config")
    p.add_argument("config", help="YAML config (may include others)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.seed=1")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained run on a data file")
    p.add_argument("run", help="run directory (or its model/ directory)")
    p.add_argument("--data", required=True, help="records to evaluate on")
    p.add_argument("--checker", help="answer checker (default: the run's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N records")
    p.add_argument("--final-only", action="store_true", help="skip per-block accuracy")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("infer", help="answer one question with a trained run")
    p.add_argument("run")
    p.add_argument("question")
    p.add_argument("--every-block", action="store_true", help="answer after each block")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("quickstart", help="train RiM and no-CoT on a built-in task, compare")
    p.add_argument("--out", default="runs/quickstart", help="output directory")
    p.set_defaults(func=cmd_quickstart)

    _register_optional(sub)
    from rim.bench.cli import register as register_bench

    register_bench(sub)
    return parser


def _register_optional(sub) -> None:
    try:
        from rim.data.cli import register as register_data
    except ImportError:
        return
    register_data(sub)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a sub-command; bad input prints one line and exits with code 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "train" and all("=" in e for e in extra):
        args.overrides += extra  # overrides may also follow --out
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # rim shows its own progress; no bar per weight load
    try:
        return args.func(args)
    except RimInputError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
