"""Where a run's records come from: a file or dataset (`rim.data.readers`), or a generator.

``gen:TASK?n=N&seed=S&option=value`` generates the records offline (`rim.data.generators`),
e.g. ``gen:chain?n=2000&seed=0&ops=2``: a config that needs no data file. ``exclude=[FILE, ...]``
holds out the questions of those files (a test split disjoint from training and validation):
generation goes on past them until `n` records with other questions are found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rim.common.errors import RimInputError
from rim.data.generators import generate
from rim.data.readers import read_records
from rim.data.records import Record


def load_records(source: str | Path, **options: Any) -> list[Record]:
    """The records of `source`: a `gen:` source, or anything `read_records` reads."""
    if str(source).startswith(GEN_PREFIX):
        return generated_records(str(source))
    return read_records(source, **options)


GEN_PREFIX = "gen:"


def generated_records(source: str) -> list[Record]:
    """The records of a ``gen:TASK?n=N&seed=S&option=value`` source (values read as YAML)."""
    task, _, query = source.removeprefix(GEN_PREFIX).partition("?")
    options: dict = {}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if not sep:
            raise RimInputError(f"{item!r} is not key=value", source=source)
        parsed = yaml.safe_load(value)
        options[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    n, seed = options.pop("n", None), options.pop("seed", 0)
    exclude = options.pop("exclude", ())
    if not isinstance(n, int) or n < 1:
        raise RimInputError("needs n=N, a number of records of at least 1", source=source)
    files = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    held_out = {r.question for path in files for r in load_records(path)}
    try:
        return generate_excluding(task, n, seed, held_out, **options)
    except RimInputError as err:
        raise RimInputError(str(err), source=source) from None


def generate_excluding(task: str, n: int, seed: int, held_out: set[str], **options: Any) -> list[Record]:
    """`n` records of `task` from `seed` whose questions are not in `held_out`: the first `n`
    such of a run of the generator, lengthened (deterministically) until it has them."""
    size = n
    for _ in range(8):
        kept = [r for r in generate(task, size, seed, **options) if r.question not in held_out]
        if len(kept) >= n:
            return kept[:n]
        size = 2 * size + len(held_out)
    raise RimInputError(
        f"could not generate {n} records whose questions are not held out ({len(held_out)} held out)"
    )
