"""The `rim` command: train, eval, infer, quickstart, config, data, bench."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

from rim.cli.bench import register as register_bench
from rim.cli.commands import (
    cmd_config,
    cmd_eval,
    cmd_explain,
    cmd_export,
    cmd_infer,
    cmd_quickstart,
    cmd_train,
)
from rim.cli.data import register as register_data
from rim.cli.flags import positive_int
from rim.cli.probe import register as register_probe
from rim.common.errors import RimInputError, RimRunError
from rim.common.fileio import check_outputs
from rim.common.progress import err_console, setup_logging


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows an option's default once: not where its help already tells it, nor a
    default of None or False (nothing to tell)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "default" in (action.help or "") or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An argument parser whose commands take positionals after options, as in
    `rim train CONFIG --out RUN key=value`, and whose help shows defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """One line on stderr and exit code 2, as every other bad input."""
        err_console.print(
            f"error: {self.prog}: {message} (see {self.prog} --help)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(2)

    def parse_known_args(self, args=None, namespace=None):
        if self._subparsers is not None or getattr(self, "_intermixing", False):
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args calls back into this method
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `rim`."""
    parser = Parser(prog="rim", description="Reasoning in Memory")
    parser.add_argument(
        "--version", action="version", version=f"rim {metadata.version('reasoning-in-memory')}"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser(
        "train",
        help="train a model with a method from a YAML config",
        epilog="example: rim train configs/examples/multiplication.yaml --out runs/mult trainer.seed=1",
    )
    p.add_argument("config", help="YAML config (may include others)")
    p.add_argument("--out", help="run directory to create (required unless --dry-run)")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars: a plain line every trainer.log_every steps",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config and print the plan of every stage; train nothing",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint (same config)",
    )
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.seed=1")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "eval",
        help="evaluate a trained run on a data file",
        epilog="example: rim eval runs/mult --data data/mult4/test.jsonl",
    )
    p.add_argument("run", help="run directory (or its model/ directory)")
    p.add_argument("--data", help="records to evaluate on (default: the run's data.eval)")
    p.add_argument("--checker", help="answer checker (default: the run's)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="questions per batch")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate the first N records")
    p.add_argument("--final-only", action="store_true", help="skip per-block accuracy")
    p.add_argument(
        "--select",
        choices=("last", "probe"),
        default="last",
        help="which block's answer counts: the last, or the one the probe trusts most "
        "(also reported beside the last)",
    )
    p.add_argument(
        "--adaptive",
        action="store_true",
        help="accuracy against blocks used when answering after the first block the "
        "probe trusts (table, and RUN/adaptive/adaptive.json, .md, .png)",
    )
    p.add_argument(
        "--separate-passes",
        action="store_true",
        help="per-block answers from one run per block (default: one prefill)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--save-predictions",
        metavar="FILE",
        help="write question, gold, prediction and per-block answers as JSONL "
        "(a new file, never inside the model directory)",
    )
    p.add_argument("--force", action="store_true", help="replace --save-predictions if it exists")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "infer",
        help="answer a question (or a file of them) with a trained run",
        epilog='examples: rim infer runs/mult "5 6 3 2 * 7 4 3 4" --every-block; '
        "rim infer runs/mult --file questions.txt",
    )
    p.add_argument("run", help="run directory (or its model/ directory)")
    p.add_argument("question", nargs="?", help="the question, as in the training data")
    p.add_argument(
        "--file",
        help="questions, one per line (- for standard input), in batches; "
        "answer N is for line N, so a blank line or an empty file is refused",
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="questions per batch")
    p.add_argument("--every-block", action="store_true", help="answer after each block")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser(
        "explain",
        help="the step and the answer read out after each block",
        epilog='examples: rim explain runs/quickstart/rim "4 +1 *3 -2 -2 ?"; '
        "rim explain runs/quickstart/rim --data runs/quickstart/data/"
        "test.jsonl",
    )
    p.add_argument("run", help="a RiM run directory (with checkpoints/stage1)")
    p.add_argument("question", nargs="?", help="a question, as in the training data")
    p.add_argument("--data", help="records: how often the read-out is the gold step, per block")
    p.add_argument("--limit", type=positive_int, default=None, help="the first N records")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "export",
        help="a model directory any engine serves (chat template, generation config)",
        epilog="example: rim export runs/mult exported/mult",
    )
    p.add_argument("run", help="run directory (or its model/ directory)")
    p.add_argument("out", help="directory to write (must not exist or be empty)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "quickstart",
        help="train RiM and no-CoT on a built-in task, compare",
        epilog="example: rim quickstart --out runs/quickstart",
    )
    p.add_argument("--out", default="runs/quickstart", help="output directory")
    p.add_argument("--seed", type=int, default=0, help="training seed of both runs")
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser(
        "config",
        help="list every training setting, or print a resolved config",
        epilog="examples: rim config; rim config --json; "
        "rim config configs/examples/prosqa.yaml trainer.seed=1",
    )
    p.add_argument("config", nargs="?", help="a config to resolve (includes and overrides)")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.add_argument("--json", action="store_true", help="JSON: the schema, or the resolved config")
    p.set_defaults(func=cmd_config)

    register_data(sub)
    register_probe(sub)
    register_bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a sub-command; bad input prints one line and exits with code 2."""
    try:
        args = build_parser().parse_args(argv)
        setup_logging(err_console)
        _no_hub_progress_bars()
        check_outputs(args)  # an --out that cannot be created fails before any work
        code = args.func(args)
        sys.stdout.flush()  # a reader that closed the pipe shows here, not at exit
        return code
    except BrokenPipeError:  # `rim config | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a tool killed by SIGPIPE
    except RimInputError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except RimRunError as err:
        err_console.print(f"stopped: {err}", markup=False, highlight=False, soft_wrap=True)
        return getattr(err, "code", 1)


def _no_hub_progress_bars() -> None:
    """rim shows its own progress: no bar per weight load or download. Without importing
    transformers, which takes seconds, where the command does not need it."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when they are imported
    if "transformers" in sys.modules or "huggingface_hub" in sys.modules:  # imported already
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
