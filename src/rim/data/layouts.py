"""Row layouts of published datasets, each mapped onto a `Record`.

A layout says which fields of a JSON object (or Hugging Face row) hold the question, the steps
and the answer:

- ``coconut``: ``{question, steps, answer, ...}`` (Coconut's GSM8k-Aug, ProsQA, ProntoQA files;
  Hugging Face copies that call the steps ``cot``, as a list or one string, are accepted too;
  a ``steps`` field must be a list of strings).
- ``gsm8k``: the GSM8K test layout ``{question, answer}`` where ``answer`` is the worked solution
  ending in ``#### n``; each solution line before ``####`` becomes a step.
- ``gsmhard``: GSM-Hard ``{input, code, target}``; ``target`` is a number.
- ``svamp``: SVAMP ``{ID, Body, Question, Equation, Answer, Type}``; the question is
  ``Body + " " + Question``.
- ``multiarith``: MultiArith ``{iIndex, sQuestion, lEquations, lSolutions}``; the answer is the
  first solution.

Fields not used for question, steps and answer are kept in `Record.meta`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from rim.common.errors import RimInputError
from rim.data.icot import split_cot
from rim.data.records import Record, record_from_dict


def format_number(value: Any) -> str:
    """Render a JSON number as an answer string: ``16.0 -> "16"``, ``2.50 -> "2.5"``.

    Strings are returned stripped; anything else raises `RimInputError`.
    """
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RimInputError(f"expected a number, got {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise RimInputError(f"expected a finite number, got {value}")
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def detect_layout(obj: Any) -> str:
    """Guess the layout of one parsed row from its keys (``coconut`` when nothing else fits)."""
    if not isinstance(obj, dict):
        return "coconut"
    if "sQuestion" in obj and "lSolutions" in obj:
        return "multiarith"
    if "Body" in obj and "Question" in obj and "Answer" in obj:
        return "svamp"
    if "input" in obj and "target" in obj:
        return "gsmhard"
    answer = obj.get("answer")
    if (
        "question" in obj
        and "steps" not in obj
        and "cot" not in obj
        and isinstance(answer, str)
        and "####" in answer
    ):
        return "gsm8k"
    return "coconut"


def row_to_record(obj: Any, layout: str, *, source: str, line: int | None = None) -> Record:
    """Map one parsed row of `layout` onto a `Record`; errors name `source` and `line`."""
    try:
        mapper = MAPPERS[layout]
    except KeyError:
        raise RimInputError(
            f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})", source=source
        ) from None
    if not isinstance(obj, dict):
        raise RimInputError(f"expected a JSON object, got {type(obj).__name__}", source=source, line=line)
    record = mapper(obj, source, line)
    if record.origin is None:
        record = replace(record, origin=f"{source}:{line}" if line is not None else source)
    return record


def _require(obj: dict[str, Any], key: str, source: str, line: int | None) -> Any:
    if key not in obj or obj[key] is None:
        raise RimInputError(f"record has no '{key}' field", source=source, line=line)
    return obj[key]


def _number(obj: dict[str, Any], key: str, source: str, line: int | None) -> str:
    value = _require(obj, key, source, line)
    if isinstance(value, list):
        if not value:
            raise RimInputError(f"field '{key}' is an empty list", source=source, line=line)
        value = value[0]
    try:
        text = format_number(value)
    except RimInputError as err:
        raise RimInputError(f"field '{key}': {err}", source=source, line=line) from None
    if not text:
        raise RimInputError(f"field '{key}' is empty", source=source, line=line)
    return text


def _text(obj: dict[str, Any], key: str, source: str, line: int | None) -> str:
    value = _require(obj, key, source, line)
    if not isinstance(value, str) or not value.strip():
        raise RimInputError(f"field '{key}' must be a non-empty string", source=source, line=line)
    return value.strip()


def _rest(obj: dict[str, Any], used: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in used}


def _coconut(obj: dict[str, Any], source: str, line: int | None) -> Record:
    row = dict(obj)
    if "steps" not in row and "cot" in row:
        cot = row.pop("cot")
        # Hugging Face copies store the chain as one string under `cot`; `steps` must be a list.
        row["steps"] = (
            list(split_cot(str(row.get("question", "")), cot.strip())) if isinstance(cot, str) else cot
        )
    if isinstance(row.get("answer"), int | float) and not isinstance(row.get("answer"), bool):
        row["answer"] = format_number(row["answer"])
    return record_from_dict(row, source=source, line=line)


def _gsm8k(obj: dict[str, Any], source: str, line: int | None) -> Record:
    question = _text(obj, "question", source, line)
    solution = _require(obj, "answer", source, line)
    if isinstance(solution, int | float) and not isinstance(solution, bool):
        return Record(question, (), format_number(solution), _rest(obj, ("question", "answer")))
    if not isinstance(solution, str) or "####" not in solution:
        raise RimInputError("field 'answer' must be a solution ending in '#### n'", source=source, line=line)
    work, answer = solution.rsplit("####", 1)
    if not answer.strip():
        raise RimInputError("empty answer after '####'", source=source, line=line)
    steps = tuple(s.strip() for s in work.splitlines() if s.strip())
    return Record(question, steps, answer.strip(), _rest(obj, ("question", "answer")))


def _gsmhard(obj: dict[str, Any], source: str, line: int | None) -> Record:
    question = _text(obj, "input", source, line)
    answer = _number(obj, "target", source, line)
    return Record(question, (), answer, _rest(obj, ("input", "target")))


def _svamp(obj: dict[str, Any], source: str, line: int | None) -> Record:
    body = _text(obj, "Body", source, line)
    question = f"{body} {_text(obj, 'Question', source, line)}"
    answer = _number(obj, "Answer", source, line)
    return Record(question, (), answer, _rest(obj, ("Body", "Question", "Answer")))


def _multiarith(obj: dict[str, Any], source: str, line: int | None) -> Record:
    question = _text(obj, "sQuestion", source, line)
    answer = _number(obj, "lSolutions", source, line)
    return Record(question, (), answer, _rest(obj, ("sQuestion", "lSolutions")))


MAPPERS: dict[str, Callable[[dict[str, Any], str, int | None], Record]] = {
    "coconut": _coconut,
    "gsm8k": _gsm8k,
    "gsmhard": _gsmhard,
    "svamp": _svamp,
    "multiarith": _multiarith,
}
LAYOUTS = tuple(MAPPERS)
"""The layout names (`coconut`, `gsm8k`, `gsmhard`, `svamp`, `multiarith`)."""
