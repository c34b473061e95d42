"""Write records as JSONL, a JSON list (Coconut's layout) or iCoT text, atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rim.common.errors import RimInputError
from rim.common.outputs import follow_umask
from rim.data.icot import format_icot_line
from rim.data.records import Record

WRITE_FORMATS = ("jsonl", "json", "icot")
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "json", ".txt": "icot"}


def format_for_path(path: str | Path) -> str:
    """The write format implied by a file suffix: ``.jsonl``, ``.json`` or ``.txt`` (iCoT)."""
    suffix = Path(path).suffix
    if suffix not in _SUFFIX_FORMATS:
        raise RimInputError(
            "cannot tell the output format from the suffix; use .jsonl, .json or .txt "
            f"or name it ({', '.join(WRITE_FORMATS)})",
            source=str(path),
        )
    return _SUFFIX_FORMATS[suffix]


def output_format(path: str | Path, given: str | None = None) -> str:
    """The format to write `path` in: `given` (`--format`), else the one its suffix implies. A
    `given` format that the suffix contradicts is refused: rim reads a file back by its suffix
    (iCoT lines in `x.jsonl` would be malformed JSON)."""
    if given is None:
        return format_for_path(path)
    implied = _SUFFIX_FORMATS.get(Path(path).suffix)
    if implied is not None and implied != given:
        suffix = next(s for s, f in _SUFFIX_FORMATS.items() if f == given)
        raise RimInputError(
            f"--format {given} does not match the suffix {Path(path).suffix} "
            f"(read back as {implied}): name the file *{suffix} or leave out "
            "--format",
            source=str(path),
        )
    return given


def record_to_json(record: Record) -> dict[str, Any]:
    """The record as a JSON object in Coconut's key order: question, answer, steps, then meta."""
    return {
        "question": record.question,
        "answer": record.answer,
        "steps": list(record.steps),
        **record.meta,
    }


def render_records(records: Iterable[Record], format: str) -> str:
    """The text of a data file holding `records` in `format` (``jsonl``, ``json``, ``icot``).

    ``json`` is rendered like Coconut's published files (``json.dumps`` of the list, no final
    newline), so re-writing a Coconut file reproduces it byte for byte. ``icot`` joins the steps
    as described in `rim.data.icot` and drops `meta`.
    """
    if format == "jsonl":
        return "".join(json.dumps(record_to_json(r), ensure_ascii=False) + "\n" for r in records)
    if format == "json":
        return json.dumps([record_to_json(r) for r in records])
    if format == "icot":
        return "".join(format_icot_line(r) + "\n" for r in records)
    raise RimInputError(f"unknown output format {format!r} (known: {', '.join(WRITE_FORMATS)})")


def write_records(records: Iterable[Record], path: str | Path, format: str | None = None) -> Path:
    """Write `records` to `path` atomically; `format` defaults to the one implied by the suffix.

    Returns the path written. Nothing is left at `path` if rendering or writing fails.
    """
    path = Path(path)
    text = render_records(records, format or format_for_path(path))
    atomic_write_text(path, text)
    return path


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to a temporary file next to `path`, then move it into place (with
    the mode the umask gives a new file).

    Missing parent directories are created (only once the text is ready to be written)."""
    path = Path(path)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RimInputError("output directory is not a directory", source=str(directory)) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        follow_umask(tmp)  # mkstemp makes it 0600; a file others may read, as `open` makes
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
