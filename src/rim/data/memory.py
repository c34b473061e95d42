"""Records of data held in memory (from Python): a `datasets.Dataset` or `IterableDataset`, a
list of dicts or of `Record`s, read and validated as the rows of a file are."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rim.common.errors import RimInputError
from rim.data.readers import rows_to_records
from rim.data.records import FIELDS, Record


def records_in(
    data: Any, name: str, fields: tuple[str, str, str] = FIELDS
) -> tuple[list[Record] | None, str | None]:
    """`(records, source)` of `data`, which a trainer argument `name` holds.

    A path or a source string (`gen:...`, `hf:...`) is left to the config: `(None, data)`.
    Rows in memory are read now, their columns named by `fields`: `(records, label)`, where the
    label (`python:train_dataset (64 records, sha256 ...)`) is what the run's config.yaml
    records, so that resuming with other data is refused. A missing column or a bad value is a
    `RimInputError` naming `name` and the row's index.
    """
    if data is None:
        return None, None
    if isinstance(data, str | Path):
        return None, str(data)
    if isinstance(data, Mapping) or type(data).__name__.endswith("DatasetDict"):
        raise RimInputError("is a mapping (a DatasetDict?): pass one split, e.g. ds['train']", source=name)
    try:
        rows = list(data)
    except TypeError:
        raise RimInputError(
            f"must be a datasets.Dataset, a list of dicts or a path, got {type(data).__name__}", source=name
        ) from None
    if rows and all(isinstance(row, Record) for row in rows):
        records = rows
    else:
        records = rows_to_records(
            ((dict(row) if isinstance(row, Mapping) else row, None) for row in rows),
            name,
            indexed=True,
            fields=fields,
        )
    return records, f"python:{name} ({len(records)} records, sha256 {fingerprint(records)})"


def fingerprint(records: list[Record]) -> str:
    """A short hash of the questions, steps and answers of `records`."""
    text = json.dumps([[r.question, list(r.steps), r.answer] for r in records])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
