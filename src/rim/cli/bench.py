"""`rim bench latency|accuracy|step|memory|runs|peers`: `register(subparsers)` adds them to the main CLI.

Each benchmark reads an optional settings file (configs/bench/*.yaml); its flags are generated
from the settings type (`rim.cli.flags`), and a flag given on the command line wins.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rim.cli.flags import add_flags, flag_values
from rim.common.progress import console

if TYPE_CHECKING:
    from pydantic import BaseModel

SWEEP_FLAGS = ("seeds", "concurrent", "threads")
"""The sweep file's settings that flags override (`--methods` picks some of its methods)."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bench latency``, ``accuracy``, ``step``, ``memory``, ``runs`` and ``peers`` to argparse
    subparsers."""
    from rim.bench.settings import (
        LATENCY_PATHS,
        MEMORY_PATHS,
        PEERS_PATHS,
        STEP_PATHS,
        LatencySettings,
        MemorySettings,
        PeersSettings,
        StepSettings,
    )
    from rim.bench.sweep import SweepFile

    bench = subparsers.add_parser(
        "bench", help="benchmarks: latency, accuracy, training step, memory, runs side by side"
    )
    sub = bench.add_subparsers(
        dest="bench_command", metavar="{latency,accuracy,step,memory,runs,peers}", required=True
    )

    _settings_bench(
        sub,
        "latency",
        LatencySettings,
        LATENCY_PATHS,
        help="time to first answer token, answers/s, per method",
        epilog="example: rim bench latency --config "
        "configs/bench/latency-gpt2-gpu.yaml --out runs/bench/latency",
    )

    p = sub.add_parser(
        "accuracy",
        help="train every method x seed, compare final-block accuracy",
        epilog="example: rim bench accuracy configs/bench/accuracy-chain-cpu.yaml "
        "--out runs/bench/chain --seeds 0",
    )
    p.add_argument("sweep", help="sweep file (configs/bench/accuracy-*.yaml)")
    p.add_argument("--out", required=True, help="sweep directory (resumed if it exists)")
    p.add_argument("--methods", nargs="+", help="only these methods of the sweep")
    add_flags(p, SweepFile, only=SWEEP_FLAGS)
    p.add_argument("--report-only", action="store_true", help="summarise finished runs only")
    p.add_argument(
        "--stand-in",
        action="store_true",
        help="run the sweep file's CPU stand-in: tiny scratch models of the same "
        "families, generated data, a few steps (paper tables)",
    )
    p.set_defaults(func=cmd_accuracy)

    _settings_bench(
        sub,
        "step",
        StepSettings,
        STEP_PATHS,
        help="training step time: RiM one-pass layout vs plain SFT",
        epilog="example: rim bench step --device cuda --batch-size 256",
    )
    _settings_bench(
        sub,
        "memory",
        MemorySettings,
        MEMORY_PATHS,
        help="peak memory at the stage switch: previous optimizer released vs kept",
        epilog="example: rim bench memory --model configs/model/gpt2-small.yaml --out runs/bench/memory",
    )

    _settings_bench(
        sub,
        "peers",
        PeersSettings,
        PEERS_PATHS,
        help="beside a peer's official code: equality, generation, speed, data loaders",
        epilog="example: rim bench peers --config configs/bench/peers-coconut-cpu.yaml "
        "--checkout ../coconut --python ../coconut/.venv/bin/python --out runs/bench/peers",
    )

    p = sub.add_parser(
        "runs",
        help="finished training runs side by side: examples/s and loss per stage",
        epilog="example: rim bench runs runs/dense runs/flex --out runs/bench/runs",
    )
    p.add_argument("runs", nargs="+", help="run directories (rim train --out)")
    p.add_argument("--out", default="runs/bench/runs", help="output directory")
    p.set_defaults(func=cmd_runs)
    return bench


def _settings_bench(
    sub: Any, name: str, settings_type: type[BaseModel], paths: tuple[str, ...], help: str, epilog: str
) -> None:
    """`rim bench NAME`: an optional settings file (`--config`), a flag per setting, `--out`;
    `rim.bench.NAME.run_NAME(settings, out, console)` does the work (imported when the command
    runs: it needs torch). `paths` names the settings that are paths, resolved against the
    settings file."""
    p = sub.add_parser(name, help=help, epilog=epilog)
    p.add_argument("--config", help=f"settings file (configs/bench/{name}-*.yaml)")
    p.add_argument("--out", default=f"runs/bench/{name}", help="output directory")
    add_flags(p, settings_type)

    def command(args: argparse.Namespace) -> int:
        import importlib

        from rim.bench.common import load_settings

        run = getattr(importlib.import_module(f"rim.bench.{name}"), f"run_{name}")
        settings = load_settings(settings_type, args.config, paths, **flag_values(args, settings_type))
        run(settings, args.out, console)
        return 0

    p.set_defaults(func=command)


def cmd_accuracy(args: argparse.Namespace) -> int:
    from rim.bench.accuracy import load_sweep, run_sweep
    from rim.bench.sweep import SweepFile

    sweep = load_sweep(
        args.sweep,
        methods=args.methods,
        stand_in=args.stand_in,
        **flag_values(args, SweepFile, only=SWEEP_FLAGS),
    )
    summary = run_sweep(sweep, args.out, console, train=not args.report_only)
    return 1 if summary["failed"] else 0


def cmd_runs(args: argparse.Namespace) -> int:
    from rim.bench.runs import compare_runs

    compare_runs(args.runs, args.out, console)
    return 0
