"""`rim bench latency|accuracy|step|memory|runs`: `register(subparsers)` adds them to the main CLI.

Each benchmark reads an optional settings file (configs/bench/*.yaml); its flags are generated
from the settings type (`rim.settings_cli`), and a flag given on the command line wins.
"""

from __future__ import annotations

import argparse
from typing import Any

from rim.progress import console
from rim.settings_cli import add_flags, flag_values

SWEEP_FLAGS = ("seeds", "concurrent", "threads")
"""The sweep file's settings that flags override (`--methods` picks some of its methods)."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bench latency``, ``accuracy``, ``step``, ``memory`` and ``runs`` to argparse
    subparsers."""
    from rim.bench.latency import LatencySettings
    from rim.bench.memory import MemorySettings
    from rim.bench.step import StepSettings
    from rim.bench.sweep import SweepFile

    bench = subparsers.add_parser("bench", help="benchmarks: latency, accuracy, training step, "
                                  "memory, runs side by side")
    sub = bench.add_subparsers(dest="bench_command",
                               metavar="{latency,accuracy,step,memory,runs}",
                               required=True)

    p = sub.add_parser("latency", help="time to first answer token, answers/s, per method",
                       epilog="example: rim bench latency --config "
                              "configs/bench/latency-gpt2-gpu.yaml --out runs/bench/latency")
    p.add_argument("--config", help="settings file (configs/bench/latency-*.yaml)")
    p.add_argument("--out", default="runs/bench/latency", help="output directory")
    add_flags(p, LatencySettings)
    p.set_defaults(func=cmd_latency)

    p = sub.add_parser("accuracy", help="train every method x seed, compare final-block accuracy",
                       epilog="example: rim bench accuracy configs/bench/accuracy-chain-cpu.yaml "
                              "--out runs/bench/chain --seeds 0")
    p.add_argument("sweep", help="sweep file (configs/bench/accuracy-*.yaml)")
    p.add_argument("--out", required=True, help="sweep directory (resumed if it exists)")
    p.add_argument("--methods", nargs="+", help="only these methods of the sweep")
    add_flags(p, SweepFile, only=SWEEP_FLAGS)
    p.add_argument("--report-only", action="store_true", help="summarise finished runs only")
    p.set_defaults(func=cmd_accuracy)

    p = sub.add_parser("step", help="training step time: RiM one-pass layout vs plain SFT",
                       epilog="example: rim bench step --device cuda --batch-size 256")
    p.add_argument("--config", help="settings file (configs/bench/step-*.yaml)")
    p.add_argument("--out", default="runs/bench/step", help="output directory")
    add_flags(p, StepSettings)
    p.set_defaults(func=cmd_step)

    p = sub.add_parser("memory", help="peak memory at the stage switch: previous optimizer "
                       "released vs kept",
                       epilog="example: rim bench memory --model configs/model/gpt2-small.yaml "
                              "--out runs/bench/memory")
    p.add_argument("--config", help="settings file (configs/bench/memory-*.yaml)")
    p.add_argument("--out", default="runs/bench/memory", help="output directory")
    add_flags(p, MemorySettings)
    p.set_defaults(func=cmd_memory)

    p = sub.add_parser("runs", help="finished training runs side by side: examples/s and loss "
                       "per stage",
                       epilog="example: rim bench runs runs/dense runs/flex --out runs/bench/runs")
    p.add_argument("runs", nargs="+", help="run directories (rim train --out)")
    p.add_argument("--out", default="runs/bench/runs", help="output directory")
    p.set_defaults(func=cmd_runs)
    return bench


def cmd_latency(args: argparse.Namespace) -> int:
    from rim.bench.common import load_settings
    from rim.bench.latency import PATH_SETTINGS, LatencySettings, run_latency

    settings = load_settings(LatencySettings, args.config, PATH_SETTINGS,
                             **flag_values(args, LatencySettings))
    run_latency(settings, args.out, console)
    return 0


def cmd_accuracy(args: argparse.Namespace) -> int:
    from rim.bench.accuracy import load_sweep, run_sweep
    from rim.bench.sweep import SweepFile

    sweep = load_sweep(args.sweep, methods=args.methods,
                       **flag_values(args, SweepFile, only=SWEEP_FLAGS))
    summary = run_sweep(sweep, args.out, console, train=not args.report_only)
    return 1 if summary["failed"] else 0


def cmd_step(args: argparse.Namespace) -> int:
    from rim.bench.common import load_settings
    from rim.bench.step import PATH_SETTINGS, StepSettings, run_step

    settings = load_settings(StepSettings, args.config, PATH_SETTINGS,
                             **flag_values(args, StepSettings))
    run_step(settings, args.out, console)
    return 0


def cmd_memory(args: argparse.Namespace) -> int:
    from rim.bench.common import load_settings
    from rim.bench.memory import PATH_SETTINGS, MemorySettings, run_memory

    settings = load_settings(MemorySettings, args.config, PATH_SETTINGS,
                             **flag_values(args, MemorySettings))
    run_memory(settings, args.out, console)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from rim.bench.runs import compare_runs

    compare_runs(args.runs, args.out, console)
    return 0
