"""Read records from files: JSONL (one object per line) or a JSON list."""

from __future__ import annotations

import json
from pathlib import Path

from rim.data.records import Record, record_from_dict
from rim.errors import RimInputError


def read_records(path: str | Path) -> list[Record]:
    """Read `{question, steps, answer}` records from a `.jsonl` file or a JSON list.

    Raises `RimInputError` naming the file and line of the first bad record.
    """
    path = Path(path)
    if not path.is_file():
        raise RimInputError("data file not found", source=str(path))
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" or text.lstrip().startswith("["):
        return _read_json_list(text, str(path))
    return _read_jsonl(text, str(path))


def _read_jsonl(text: str, source: str) -> list[Record]:
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise RimInputError(f"malformed JSON ({err.msg})", source=source, line=lineno) from None
        records.append(record_from_dict(obj, source=source, line=lineno))
    if not records:
        raise RimInputError("no records", source=source)
    return records


def _read_json_list(text: str, source: str) -> list[Record]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RimInputError(f"malformed JSON ({err.msg})", source=source, line=err.lineno) from None
    if not isinstance(data, list) or not data:
        raise RimInputError("expected a non-empty JSON list of records", source=source)
    return [record_from_dict(obj, source=f"{source}[{i}]") for i, obj in enumerate(data)]
