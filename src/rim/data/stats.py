"""Dataset statistics: record counts, step-count histogram, length percentiles; rich tables."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from rim.data.records import Record

PERCENTILES = (50, 90, 99)
FIELDS = ("question", "steps", "answer", "total")


@dataclass(frozen=True)
class LengthSummary:
    """Distribution of one length: min, mean, percentiles (nearest rank) and max."""

    min: int
    mean: float
    percentiles: dict[int, int]
    max: int


@dataclass(frozen=True)
class DatasetStats:
    """What `rim data stats` reports for a list of records."""

    records: int
    without_steps: int
    step_histogram: dict[int, int]
    chars: dict[str, LengthSummary] = field(default_factory=dict)
    tokens: dict[str, LengthSummary] = field(default_factory=dict)


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile `q` (0-100) of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[int]) -> LengthSummary:
    """`LengthSummary` of non-empty `values`."""
    ordered = sorted(values)
    return LengthSummary(
        min=ordered[0],
        mean=sum(ordered) / len(ordered),
        percentiles={q: percentile(ordered, q) for q in PERCENTILES},
        max=ordered[-1],
    )


def field_texts(record: Record) -> dict[str, str]:
    """The texts measured per record: question, steps (joined by spaces), answer, and all three."""
    steps = " ".join(record.steps)
    total = " ".join(part for part in (record.question, steps, record.answer) if part)
    return {"question": record.question, "steps": steps, "answer": record.answer, "total": total}


def dataset_stats(records: Sequence[Record]) -> DatasetStats:
    """Counts, step-count histogram and character / whitespace-token length summaries."""
    if not records:
        raise ValueError("no records")
    texts = [field_texts(r) for r in records]
    histogram = Counter(len(r.steps) for r in records)
    return DatasetStats(
        records=len(records),
        without_steps=histogram.get(0, 0),
        step_histogram=dict(sorted(histogram.items())),
        chars={f: summarize([len(t[f]) for t in texts]) for f in FIELDS},
        tokens={f: summarize([len(t[f].split()) for t in texts]) for f in FIELDS},
    )


def stats_tables(stats: DatasetStats, title: str = "") -> list[Table]:
    """Rich tables: the step histogram, then lengths in characters and in whitespace tokens."""
    overview = Table(title=title or None, show_header=True)
    overview.add_column("steps per record", justify="right")
    overview.add_column("records", justify="right")
    overview.add_column("share", justify="right")
    for steps, count in stats.step_histogram.items():
        overview.add_row(str(steps), str(count), f"{count / stats.records:.1%}")
    overview.add_section()
    overview.add_row("all", str(stats.records), "100.0%")
    tables = [overview]
    for unit, summaries in (("characters", stats.chars), ("whitespace tokens", stats.tokens)):
        table = Table(title=f"lengths in {unit}")
        table.add_column("field")
        for name in ("min", "mean", *(f"p{q}" for q in PERCENTILES), "max"):
            table.add_column(name, justify="right")
        for name in FIELDS:
            summary = summaries[name]
            table.add_row(
                name,
                str(summary.min),
                f"{summary.mean:.1f}",
                *(str(summary.percentiles[q]) for q in PERCENTILES),
                str(summary.max),
            )
        tables.append(table)
    return tables


def print_stats(stats: DatasetStats, title: str = "", console: Console | None = None) -> None:
    """Print `stats_tables` to `console` (stdout by default)."""
    console = console or Console()
    for table in stats_tables(stats, title):
        console.print(table)


def seen_fraction(test: Sequence[Record], train: Sequence[Record]) -> float:
    """Fraction of `test` records whose question is also a question of `train` (0 when `test`
    is empty): how much of a test set is not held out."""
    questions = {r.question for r in train}
    return sum(r.question in questions for r in test) / len(test) if test else 0.0
