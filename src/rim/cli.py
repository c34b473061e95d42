"""The `rim` command: train, eval, infer, quickstart, config, data, bench."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path

from rich.table import Table

from rim.bench.cli import register as register_bench
from rim.data.cli import register as register_data
from rim.errors import RimInputError, RimRunError
from rim.progress import console, err_console, setup_logging
from rim.settings_cli import positive_int


class Parser(argparse.ArgumentParser):
    """An argument parser whose commands take positionals after options, as in
    `rim train CONFIG --out RUN key=value`, and whose help shows defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """One line on stderr and exit code 2, as every other bad input."""
        err_console.print(f"error: {self.prog}: {message} (see {self.prog} --help)",
                          markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2)

    def parse_known_args(self, args=None, namespace=None):
        if self._subparsers is not None or getattr(self, "_intermixing", False):
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args calls back into this method
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def cmd_train(args: argparse.Namespace) -> int:
    from rim.config import load_config
    from rim.progress import Reporter
    from rim.run import run_training

    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        from rim.dryrun import dry_run, plan_table

        plan = dry_run(cfg)
        if args.json:
            print(json.dumps(plan, indent=2))
        else:
            console.print(plan_table(plan))
        return 0
    if args.out is None:
        raise RimInputError("--out is required (the run directory to create)",
                            source="command line")
    result = run_training(cfg, args.out, Reporter(bars=False if args.no_progress else None),
                          resume=args.resume)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return 0
    if result:
        console.print(eval_table(result, title=f"{cfg.method.name} on {cfg.data.eval}"))
    console.print(f"model saved to {Path(args.out) / 'model'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from rim.data.sources import load_records
    from rim.evaluate import evaluate
    from rim.infer import load_run

    data = args.data or _run_eval_data(Path(args.run))
    records = load_records(data)[: args.limit]
    run = load_run(args.run)
    checker = args.checker or run.info.checker
    passes = max(run.blocks, 1) if not args.final_only else 1
    with Progress(console=err_console, disable=args.json, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(records) * passes)
        result = evaluate(run, records, checker, batch_size=args.batch_size,
                          per_block=not args.final_only, one_pass=not args.separate_passes,
                          progress=lambda n: bar.advance(task, n))
    if args.save_predictions:
        _save_predictions(Path(args.save_predictions), records, result)
    shown = {k: v for k, v in result.items()
             if k not in ("predictions", "correct", "block_predictions")}
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        console.print(eval_table(result, title=f"{args.run} on {data}"))
    return 0


def _run_eval_data(run: Path) -> str:
    """The evaluation data a run was trained with (`data.eval` of its config.yaml)."""
    import yaml

    saved = run / "config.yaml"
    data = (yaml.safe_load(saved.read_text()) or {}).get("data", {}) if saved.is_file() else {}
    if not data.get("eval"):
        raise RimInputError("give --data: the run names no evaluation data (data.eval)",
                            source=str(run))
    return data["eval"]


def _save_predictions(path: Path, records: list, result: dict) -> None:
    """One JSON line per record: question, gold, prediction, correct, answer after each block."""
    from rim.data.writers import atomic_write_text

    blocks = result.get("block_predictions") or [None] * len(records)
    lines = [json.dumps({"question": r.question, "gold": r.answer, "prediction": pred,
                         "correct": ok, **({"per_block": per} if per is not None else {})})
             for r, pred, ok, per in zip(records, result["predictions"], result["correct"],
                                         blocks)]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    err_console.print(f"predictions written to {path}", markup=False, highlight=False)


def cmd_infer(args: argparse.Namespace) -> int:
    from rim.infer import load_run

    if (args.question is None) == (args.file is None):
        raise RimInputError("give a question or --file (one question per line; - for stdin)",
                            source="command line")
    run = load_run(args.run)
    if args.file is not None:
        source = "<stdin>" if args.file == "-" else args.file
        text = sys.stdin.read() if args.file == "-" else _read_text(args.file)
        numbered = [(i, q.strip()) for i, q in enumerate(text.splitlines(), 1) if q.strip()]
        for i, question in numbered:
            run.check_fits(question, f"{source}:{i}")
        questions = [q for _, q in numbered]
    else:
        run.check_fits(args.question)
        questions = [args.question]
    if args.every_block and run.blocks:
        for row in run.answers_every_block(questions, batch_size=args.batch_size):
            print("\t".join(row) if args.file is not None else "\n".join(
                f"after block {k}: {a}" for k, a in enumerate(row, 1)))
    else:
        for answer in run.answers(questions, batch_size=args.batch_size):
            print(answer)
    return 0


def _read_text(path: str) -> str:
    if not Path(path).is_file():
        raise RimInputError("file not found", source=path)
    return Path(path).read_text(encoding="utf-8-sig")


def cmd_export(args: argparse.Namespace) -> int:
    from rim.export import export

    console.print(f"standalone model written to {export(args.run, args.out)}", markup=False)
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from rim.quickstart import quickstart

    quickstart(Path(args.out), console, seed=args.seed)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from rim.config import Config, load_config
    from rim.settings_cli import settings_rows

    if args.config is not None:
        cfg = load_config(args.config, args.overrides)
        print(json.dumps(cfg.to_dict(), indent=2) if args.json else _yaml(cfg.to_dict()), end="")
        return 0
    if args.json:
        print(json.dumps(Config.model_json_schema(), indent=2))
        return 0
    table = Table(title="rim train settings (set in YAML or as key=value)")
    table.add_column("key", no_wrap=True, min_width=len("trainer.coconut_final.optimizer_reset"))
    table.add_column("type", overflow="fold", max_width=18)
    table.add_column("default", overflow="fold", max_width=18)
    table.add_column("help", overflow="fold", ratio=1)
    for row in settings_rows(Config):
        table.add_row(*row)
    console.print(table)
    return 0


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


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
    parser = Parser(prog="rim", description="Reasoning in Memory")
    parser.add_argument("--version", action="version",
                        version=f"rim {metadata.version('reasoning-in-memory')}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train a model with a method from a YAML config",
                       epilog="example: rim train configs/examples/multiplication.yaml "
                              "--out runs/mult trainer.seed=1")
    p.add_argument("config", help="YAML config (may include others)")
    p.add_argument("--out", help="run directory to create (required unless --dry-run)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars: a plain line every trainer.log_every steps")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the config and print the plan of every stage; train nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest checkpoint (same config)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.seed=1")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained run on a data file",
                       epilog="example: rim eval runs/mult --data data/mult4/test.jsonl")
    p.add_argument("run", help="run directory (or its model/ directory)")
    p.add_argument("--data", help="records to evaluate on (default: the run's data.eval)")
    p.add_argument("--checker", help="answer checker (default: the run's)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="questions per batch")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate the first N records")
    p.add_argument("--final-only", action="store_true", help="skip per-block accuracy")
    p.add_argument("--separate-passes", action="store_true",
                   help="per-block answers from one run per block (default: one prefill)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--save-predictions", metavar="FILE",
                   help="write question, gold, prediction and per-block answers as JSONL")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("infer", help="answer a question (or a file of them) with a trained run",
                       epilog='examples: rim infer runs/mult "5 6 3 2 * 7 4 3 4" --every-block; '
                              'rim infer runs/mult --file questions.txt')
    p.add_argument("run", help="run directory (or its model/ directory)")
    p.add_argument("question", nargs="?", help="the question, as in the training data")
    p.add_argument("--file", help="questions, one per line (- for standard input), in batches")
    p.add_argument("--batch-size", type=positive_int, default=64, help="questions per batch")
    p.add_argument("--every-block", action="store_true", help="answer after each block")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("export", help="a model directory any engine serves (chat template, "
                       "generation config)", epilog="example: rim export runs/mult exported/mult")
    p.add_argument("run", help="run directory (or its model/ directory)")
    p.add_argument("out", help="directory to write (must not exist or be empty)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("quickstart", help="train RiM and no-CoT on a built-in task, compare",
                       epilog="example: rim quickstart --out runs/quickstart")
    p.add_argument("--out", default="runs/quickstart", help="output directory")
    p.add_argument("--seed", type=int, default=0, help="training seed of both runs")
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser("config", help="list every training setting, or print a resolved config",
                       epilog="examples: rim config; rim config --json; "
                              "rim config configs/examples/prosqa.yaml trainer.seed=1")
    p.add_argument("config", nargs="?", help="a config to resolve (includes and overrides)")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.add_argument("--json", action="store_true", help="JSON: the schema, or the resolved config")
    p.set_defaults(func=cmd_config)

    register_data(sub)
    register_bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a sub-command; bad input prints one line and exits with code 2."""
    args = build_parser().parse_args(argv)
    setup_logging(err_console)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # rim shows its own progress; no bar per weight load
    try:
        return args.func(args)
    except RimInputError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except RimRunError as err:
        err_console.print(f"stopped: {err}", markup=False, highlight=False, soft_wrap=True)
        return getattr(err, "code", 1)


if __name__ == "__main__":
    sys.exit(main())
