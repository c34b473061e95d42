"""Read records from any supported file or dataset into `Record`s.

Containers: iCoT text lines (``.txt``), a JSON list (``.json``), JSONL (``.jsonl``) and
Hugging Face datasets (a directory, ``hf:NAME``, or ``format="hf"``). Rows of JSON, JSONL and
Hugging Face data are mapped by a layout (see `rim.data.layouts`), guessed from the first row
unless `format` names one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from rim.common.errors import RimInputError
from rim.common.fileio import read_text
from rim.data.hf import load_hf_rows
from rim.data.icot import parse_icot_line
from rim.data.layouts import LAYOUTS, detect_layout, row_to_record
from rim.data.records import FIELDS, Record, record_from_dict

CONTAINERS = ("icot", "json", "jsonl", "hf")
FORMATS = CONTAINERS + LAYOUTS
HF_PREFIX = "hf:"


def read_records(
    path: str | Path,
    format: str | None = None,
    *,
    split: str = "train",
    config: str | None = None,
    cache_dir: str | None = None,
    fields: tuple[str, str, str] = FIELDS,
) -> list[Record]:
    """Read every record of `path`.

    `format` is None (pick from the file: ``.txt`` with ``||`` is iCoT, ``.json`` holding a
    list is a JSON list, ``.jsonl`` is JSONL, a directory or ``hf:NAME`` is a Hugging Face
    dataset), a container (``icot``, ``json``, ``jsonl``, ``hf``) or a row layout (``coconut``,
    ``gsm8k``, ``gsmhard``, ``svamp``, ``multiarith``; the container is then picked from the
    file). `split`, `config` and `cache_dir` apply to Hugging Face datasets only. `fields` names
    the question, steps and answer fields of JSON, JSONL and Hugging Face rows (other names than
    the default take the rows as they are, without a layout).

    Raises `RimInputError` naming the file and line of the first bad record.
    """
    if format is not None and format not in FORMATS:
        raise RimInputError(f"unknown data format {format!r} (known: {', '.join(FORMATS)})")
    container = format if format in CONTAINERS else None
    layout = format if format in LAYOUTS else None
    text_path = str(path)
    if container == "hf" or (container is None and _is_hf_source(text_path)):
        name = text_path.removeprefix(HF_PREFIX)
        rows = load_hf_rows(name, split=split, config=config, cache_dir=cache_dir)
        source = f"{name}[{split}]"
        return rows_to_records(
            ((row, i) for i, row in enumerate(rows, 1)), source, layout=layout, fields=fields
        )
    path = Path(path)
    if not path.is_file():
        raise RimInputError("data file not found", source=str(path))
    text = read_text(path)  # UTF-8; a byte-order mark (Windows tools) is skipped
    source = str(path)
    if container is None:
        container = _sniff_container(path, text)
    if container == "icot":
        if layout not in (None, "coconut"):
            raise RimInputError(f"iCoT text cannot hold the {layout!r} layout", source=source)
        return _read_icot(text, source)
    numbered = _iter_json_list(text, source) if container == "json" else _iter_jsonl(text, source)
    return rows_to_records(numbered, source, layout=layout, indexed=container == "json", fields=fields)


DATASET_FILES = ("dataset_dict.json", "state.json", "dataset_info.json", "README.md")
DATA_SUFFIXES = (".parquet", ".arrow", ".jsonl", ".json", ".csv")


def _is_hf_source(text_path: str) -> bool:
    """`hf:NAME`, or a local directory that holds a dataset (a `save_to_disk` directory, or data
    files laid out like a hub repository); any other directory is an error, not a hub name."""
    if text_path.startswith(HF_PREFIX):
        return True
    path = Path(text_path)
    if not path.is_dir():
        return False
    if any((path / name).is_file() for name in DATASET_FILES) or any(
        f.suffix in DATA_SUFFIXES for f in path.rglob("*") if f.is_file()
    ):
        return True
    raise RimInputError(
        "a directory that holds no dataset (no data files, no save_to_disk layout)", source=text_path
    )


def _sniff_container(path: Path, text: str) -> str:
    head = text.lstrip()
    first_line = head.split("\n", 1)[0]
    if path.suffix == ".txt":
        if "||" in first_line:
            return "icot"
        raise RimInputError(
            "a .txt data file must hold iCoT lines 'question||steps #### answer'",
            source=str(path),
            line=1,
        )
    if path.suffix == ".jsonl":
        return "jsonl"
    if head.startswith("["):
        return "json"
    if path.suffix == ".json" or head.startswith("{"):
        return "jsonl"
    if "||" in first_line:
        return "icot"
    raise RimInputError(
        "cannot tell the data format; name it with format= (icot, json, jsonl, hf)",
        source=str(path),
    )


def _read_icot(text: str, source: str) -> list[Record]:
    records = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        records.append(parse_icot_line(line, source=source, lineno=lineno))
    if not records:
        raise RimInputError("no records", source=source)
    return records


def _iter_jsonl(text: str, source: str) -> Iterator[tuple[Any, int]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise RimInputError(f"malformed JSON ({err.msg})", source=source, line=lineno) from None
        yield obj, lineno


def _iter_json_list(text: str, source: str) -> Iterator[tuple[Any, int | None]]:
    """Each element of a JSON list (its index names it in errors and origins)."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as err:
        raise RimInputError(f"malformed JSON ({err.msg})", source=source, line=err.lineno) from None
    if not isinstance(rows, list):
        raise RimInputError("expected a JSON list of records", source=source)
    return ((row, None) for row in rows)


def rows_to_records(
    rows: Iterable[tuple[Any, int | None]],
    source: str,
    *,
    layout: str | None = None,
    indexed: bool = False,
    fields: tuple[str, str, str] = FIELDS,
) -> list[Record]:
    """`Record`s of parsed rows, each with its line (or None), validated as a file's are; errors
    name `source` and the line (or, `indexed`, the row's index). Rows are mapped by `layout`
    (guessed from the first row if None), or by `fields` when those are not the default names."""
    records = []
    for index, (obj, line) in enumerate(rows):
        if layout is None and fields == FIELDS:
            layout = detect_layout(obj)
        try:
            record = (
                row_to_record(obj, layout, source=source, line=line)
                if layout
                else record_from_dict(obj, source=source, line=line, fields=fields)
            )
        except RimInputError as err:
            if not indexed:
                raise
            detail = str(err).removeprefix(f"{source}: ")
            raise RimInputError(f"record {index}: {detail}", source=source) from None
        records.append(replace(record, origin=f"{source}[{index}]") if indexed else record)
    if not records:
        raise RimInputError("no records", source=source)
    return records
