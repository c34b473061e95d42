"""`rim bench latency|accuracy|step`: `register(subparsers)` adds them to the main CLI.

Each benchmark reads an optional settings file (configs/bench/*.yaml); options given on the
command line override it.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bench latency``, ``bench accuracy`` and ``bench step`` to argparse subparsers."""
    bench = subparsers.add_parser("bench", help="benchmarks: latency, accuracy, training step")
    sub = bench.add_subparsers(dest="bench_command", metavar="{latency,accuracy,step}",
                               required=True)

    p = sub.add_parser("latency", help="time to first answer token, answers/s, per method")
    p.add_argument("--config", help="settings file (configs/bench/latency-*.yaml)")
    p.add_argument("--out", default="runs/bench/latency", help="output directory")
    p.add_argument("--model", help="model preset (configs/model/*.yaml); default: tiny GPT-2")
    p.add_argument("--run", help="a trained run directory (its weights, tokenizer, K, M)")
    p.add_argument("--data", help="records whose questions are asked (run or pretrained model)")
    p.add_argument("--methods", nargs="+", help="default: every registered method")
    p.add_argument("--batches", nargs="+", type=int, help="batch sizes (default 1 64)")
    p.add_argument("--device", help="cpu (default), cuda or cuda:N")
    p.add_argument("--bf16", action="store_const", const="bfloat16", dest="dtype",
                   help="bfloat16 weights (GPU)")
    p.add_argument("--question-tokens", type=int, help="Q, random question length (48)")
    p.add_argument("--answer-tokens", type=int, help="A, answer length (4)")
    p.add_argument("--chain-tokens", type=int, help="C, CoT tokens before the answer (25)")
    p.add_argument("--blocks", type=int, help="K memory blocks (default the run's, else 8)")
    p.add_argument("--block-size", type=int, help="M memory tokens per block (default 2)")
    p.add_argument("--thoughts-per-step", type=int, help="Coconut: c thoughts per stage (1)")
    p.add_argument("--latent-stages", type=int, help="Coconut: L stages, c*L thoughts (K)")
    p.add_argument("--warmup", type=int, help="warm-up rounds (2)")
    p.add_argument("--repeats", type=int, help="timed rounds, median reported (10)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(func=cmd_latency)

    p = sub.add_parser("accuracy", help="train every method x seed, compare final-block accuracy")
    p.add_argument("sweep", help="sweep file (configs/bench/accuracy-*.yaml)")
    p.add_argument("--out", required=True, help="sweep directory (resumed if it exists)")
    p.add_argument("--methods", nargs="+", help="only these methods of the sweep")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the sweep's)")
    p.add_argument("--concurrent", type=int, help="runs at once, as `rim train` subprocesses")
    p.add_argument("--threads", type=int, help="torch threads per run")
    p.add_argument("--report-only", action="store_true", help="summarise finished runs only")
    p.set_defaults(func=cmd_accuracy)

    p = sub.add_parser("step", help="training step time: RiM one-pass layout vs plain SFT")
    p.add_argument("--config", help="settings file (configs/bench/step-*.yaml)")
    p.add_argument("--out", default="runs/bench/step", help="output directory")
    p.add_argument("--model", help="model preset (configs/model/*.yaml); default: tiny GPT-2")
    p.add_argument("--batch-size", type=int, help="examples per step (64)")
    p.add_argument("--blocks", type=int, help="K, stage-2 blocks (4)")
    p.add_argument("--ops", type=int, help="moves per chain = stage-1 blocks (4)")
    p.add_argument("--precision", choices=("bf16", "no"), help="autocast (default bf16)")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.add_argument("--warmup", type=int, help="untimed steps first (3)")
    p.add_argument("--repeats", type=int, help="timed steps per layout (10)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(func=cmd_step)
    return bench


def cmd_latency(args: argparse.Namespace) -> int:
    from rim.bench.common import load_settings, override
    from rim.bench.latency import PATH_SETTINGS, LatencySettings, run_latency
    from rim.cli import console

    settings = load_settings(LatencySettings, args.config, PATH_SETTINGS)
    settings = override(settings, model=args.model, run=args.run, data=args.data,
                        methods=args.methods, batches=args.batches, device=args.device,
                        dtype=args.dtype, question_tokens=args.question_tokens,
                        answer_tokens=args.answer_tokens, chain_tokens=args.chain_tokens,
                        blocks=args.blocks, block_size=args.block_size,
                        thoughts_per_step=args.thoughts_per_step,
                        latent_stages=args.latent_stages, warmup=args.warmup,
                        repeats=args.repeats, threads=args.threads)
    run_latency(settings, args.out, console)
    return 0


def cmd_accuracy(args: argparse.Namespace) -> int:
    from rim.bench.accuracy import load_sweep, run_sweep
    from rim.cli import console

    sweep = load_sweep(args.sweep, methods=args.methods, seeds=args.seeds,
                       concurrent=args.concurrent, threads=args.threads)
    summary = run_sweep(sweep, args.out, console, train=not args.report_only)
    return 1 if summary["failed"] else 0


def cmd_step(args: argparse.Namespace) -> int:
    from rim.bench.common import load_settings, override
    from rim.bench.step import PATH_SETTINGS, StepSettings, run_step
    from rim.cli import console

    settings = load_settings(StepSettings, args.config, PATH_SETTINGS)
    settings = override(settings, model=args.model, batch_size=args.batch_size,
                        blocks=args.blocks, ops=args.ops, precision=args.precision,
                        device=args.device, warmup=args.warmup, repeats=args.repeats,
                        threads=args.threads)
    run_step(settings, args.out, console)
    return 0
