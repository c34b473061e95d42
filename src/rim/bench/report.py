"""Writing benchmark results: JSON, a markdown table, a rich table, a PNG plot.

Every benchmark hands over its rows as plain dicts plus a list of `Column`s; this module renders
the same columns three ways, so the markdown, the terminal and the JSON never disagree.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rim.common.progress import log


@dataclass(frozen=True)
class Column:
    """A table column: the row key, its header and how a value is written."""

    key: str
    header: str
    fmt: Callable[[Any], str] = str
    align: str = "right"


def fixed(digits: int) -> Callable[[Any], str]:
    """Format numbers with `digits` decimals (`-` for missing or NaN)."""

    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:.{digits}f}"

    return fmt


def percent(digits: int = 1) -> Callable[[Any], str]:
    """Format a fraction as a percentage."""

    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{100 * value:.{digits}f}"

    return fmt


def write_json(path: Path, data: dict) -> Path:
    """Write `data` as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def markdown_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """A GitHub markdown table of `rows`."""
    lines = [
        "| " + " | ".join(c.header for c in columns) + " |",
        "| " + " | ".join("---:" if c.align == "right" else "---" for c in columns) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(c.fmt(row.get(c.key)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(
    path: Path,
    title: str,
    rows: Sequence[dict],
    columns: Sequence[Column],
    notes: Sequence[str] = (),
    image: str | None = None,
) -> Path:
    """A markdown file: a title, notes (one paragraph each), the table, the plot if any."""
    parts = [f"# {title}\n"]
    parts += [f"{note}\n" for note in notes]
    parts.append(markdown_table(rows, columns))
    if image:
        parts.append(f"![{title}]({image})\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def rich_table(title: str, rows: Sequence[dict], columns: Sequence[Column]) -> Table:
    """The same table for the terminal."""
    table = Table(title=title)
    for c in columns:
        table.add_column(c.header, justify="right" if c.align == "right" else "left")
    for row in rows:
        table.add_row(*(c.fmt(row.get(c.key)) for c in columns))
    return table


def say(console: Console | None, text: str) -> None:
    """Print a line (no-op without a console)."""
    if console is not None:
        console.print(text)


def print_table(console: Console | None, title: str, rows: Sequence[dict], columns: Sequence[Column]) -> None:
    """Print the rich table (no-op without a console)."""
    if console is not None:
        console.print(rich_table(title, rows, columns))


def publish(
    out: Path,
    name: str,
    data: dict,
    title: str,
    rows: Sequence[dict],
    columns: Sequence[Column],
    notes: Sequence[str],
    plot: Callable[[dict, Path], Path | None] | None,
    console: Console | None,
) -> None:
    """Write `out/NAME.json` (`data`), `NAME.png` (by `plot`, if given and matplotlib is there)
    and `NAME.md` (title, notes, table, plot); print the table and where the files are."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", data)
    image = plot(data, out / f"{name}.png") if plot is not None else None
    write_markdown(out / f"{name}.md", title, rows, columns, notes, image.name if image else None)
    print_table(console, title, rows, columns)
    if console is not None:
        console.print(f"results in {out}/{name}.json, {name}.md" + (f", {name}.png" if image else ""))


def pyplot():
    """matplotlib's pyplot with a file-only backend, or None if matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'reasoning-in-memory[bench]'): no plot written")
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Save and close a matplotlib figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def grouped_bars(
    ax,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    errors: Mapping[str, Sequence[float]] | None = None,
) -> None:
    """Bars of several series side by side for each group (NaN values are left out)."""
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        err = None if errors is None else errors.get(label)
        ax.bar(xs, values, width, label=label, yerr=err, capsize=3 if err is not None else 0)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)


def log_axis(ax) -> None:
    """A logarithmic y axis with plain numbers as tick labels."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
    ax.tick_params(axis="y", which="minor", labelsize=7)


def device_description(device: str) -> str:
    """The device in words: the GPU name, or the CPU model and torch's thread count."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} (CUDA {torch.version.cuda})"
    return f"cpu: {cpu_model()}, {torch.get_num_threads()} torch threads"


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(load_at_start: float | None = None) -> dict[str, Any]:
    """Versions and machine facts that a timing depends on, with the 1-minute load average now
    (and at the start of the benchmark, if given): other work on the machine skews timings."""
    import os

    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m_start": load_at_start,
        "load_average_1m_end": load_average(),
    }


def load_note(env: dict[str, Any]) -> str:
    """A sentence on the machine's load during a timing (from `environment`)."""
    return (
        f"Machine load (1-minute average) {env.get('load_average_1m_start')} at the start, "
        f"{env.get('load_average_1m_end')} at the end, on {env.get('cpu_count')} CPUs; "
        f"torch {env.get('torch')}, transformers {env.get('transformers')}."
    )


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS has none)."""
    import os

    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
