"""`rim data ...`: generate datasets and print dataset statistics.

`register(subparsers)` adds the ``data`` command to the main CLI's argparse subparsers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from rim.cli.flags import positive_int
from rim.common.errors import RimInputError
from rim.common.outputs import check_output_file
from rim.data.generators import GENERATORS, check_options, generate
from rim.data.readers import FORMATS
from rim.data.writers import WRITE_FORMATS, output_format, write_records


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``data generate`` and ``data stats`` to an argparse subparsers object."""
    data = subparsers.add_parser("data", help="generate datasets, show dataset statistics")
    sub = data.add_subparsers(dest="data_command", metavar="{generate,stats}", required=True)

    gen = sub.add_parser(
        "generate",
        help="write a seeded synthetic dataset",
        epilog="example: rim data generate multiplication --digits 4 --n 20000 "
        "--seed 0 --out data/mult4/train.jsonl",
    )
    gen.add_argument("task", help=f"one of: {', '.join(sorted(GENERATORS))}")
    gen.add_argument("--n", type=positive_int, default=None, help="number of records")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--out", required=True, help="output file (.jsonl, .json or .txt)")
    gen.add_argument("--force", action="store_true", help="replace --out if it exists")
    gen.add_argument("--digits", type=int, default=None, help="multiplication: operand digits")
    gen.add_argument(
        "--operands-from",
        default=None,
        metavar="FILE",
        help="multiplication: rebuild the records for the operands of this file",
    )
    gen.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other option of the task's generator, e.g. --option ops=3 (repeatable)",
    )
    gen.add_argument(
        "--format", choices=WRITE_FORMATS, default=None, help="default: from the suffix of --out"
    )
    gen.set_defaults(func=cmd_generate)

    stats = sub.add_parser(
        "stats",
        help="counts, step histogram and lengths of a data file",
        epilog="example: rim data stats ../shared/data/prosqa/valid.json",
    )
    stats.add_argument(
        "file", help="data file, directory, hf:NAME or gen:TASK?n=N (as in a config's data.train)"
    )
    stats.add_argument("--format", choices=FORMATS, default=None, help="default: from the file")
    stats.add_argument("--split", default="train", help="Hugging Face split (default train)")
    stats.add_argument(
        "--compare",
        metavar="FILE",
        default=None,
        help="ProsQA: print graph statistics of FILE beside those of the file",
    )
    stats.set_defaults(func=cmd_stats)
    return data


def cmd_generate(args: argparse.Namespace) -> int:
    """Handler of ``rim data generate``: generate, then write the file atomically."""
    options: dict[str, Any] = dict(_parse_option(item) for item in args.option)
    if args.digits is not None:
        options["digits"] = args.digits
    if args.operands_from is not None:
        options["operands_from"] = args.operands_from
    if args.n is None and args.operands_from is None:
        raise RimInputError("--n is required (unless --operands-from is given)")
    n = args.n if args.n is not None else 0
    fmt = output_format(args.out, args.format)
    check_options(args.task, options)
    check_output_file(args.out, args.force)
    records = generate(args.task, n, args.seed, **options)
    path = write_records(records, args.out, fmt)
    print(f"wrote {len(records)} {args.task} records to {path}")
    return 0


def _parse_option(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise RimInputError(f"--option {item!r} is not KEY=VALUE")
    parsed = yaml.safe_load(value)
    return key, tuple(parsed) if isinstance(parsed, list) else parsed


def cmd_stats(args: argparse.Namespace) -> int:
    """Handler of ``rim data stats``: read the file and print its statistics as tables."""
    from rim.data.sources import GEN_PREFIX, load_records
    from rim.data.stats import dataset_stats, print_stats

    records = load_records(args.file, format=args.format, split=args.split)
    title = args.file if args.file.startswith(GEN_PREFIX) else str(Path(args.file))
    print_stats(dataset_stats(records), title=title)
    if args.compare is not None:
        print_graph_comparison({args.file: records, args.compare: load_records(args.compare)})
    return 0


def print_graph_comparison(named: dict[str, list]) -> None:
    """ProsQA graph statistics (nodes, edges, path lengths, steps) of several files, side by side."""
    from rich.console import Console
    from rich.table import Table

    from rim.data.prosqa_graph import prosqa_statistics

    for name, records in named.items():
        if not all({"idx_to_symbol", "edges", "root", "target"} <= set(r.meta) for r in records):
            raise RimInputError("--compare needs ProsQA records with their graph fields", source=name)
    stats = {name: prosqa_statistics(records) for name, records in named.items()}
    table = Table(title="ProsQA graph statistics")
    table.add_column("statistic")
    for name in stats:
        table.add_column(name, justify="right")
    rows = [
        ("records", "records", "{:d}"),
        ("nodes (mean)", "nodes", "{:.2f}"),
        ("edges (mean)", "edges", "{:.2f}"),
        ("shortest path (mean)", "shortest_path", "{:.2f}"),
        ("shortest paths (mean count)", "shortest_paths", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        table.add_row(label, *(fmt.format(s[key]) for s in stats.values()))
    for n in range(
        min(s["min_steps"] for s in stats.values()), max(s["max_steps"] for s in stats.values()) + 1
    ):
        table.add_row(f"{n} steps", *(f"{100 * s['steps'][n] / s['records']:.1f}%" for s in stats.values()))
    Console().print(table)
