"""The one record type every reader and generator produces: a question, its reasoning steps, an answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rim.common.errors import RimInputError

COT_SEPARATOR = "####"
"""Separates the steps of a chain of thought from its answer: `steps #### answer`."""


@dataclass(frozen=True)
class Record:
    """A chain-of-thought example.

    Attributes:
        question: the input text x.
        steps: the reasoning steps r_1..r_T (may be empty).
        answer: the final answer y.
        meta: any extra fields of the source (graph fields of ProsQA, ids, ...).
        origin: where the record came from (``file:line``), for error messages.
    """

    question: str
    steps: tuple[str, ...]
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    origin: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (`question`, `steps`, `answer`, then any meta fields)."""
        return {"question": self.question, "steps": list(self.steps), "answer": self.answer, **self.meta}


FIELDS = ("question", "steps", "answer")
"""The default names of the question, steps and answer fields of a row."""


def record_from_dict(
    obj: Any, *, source: str, line: int | None = None, fields: tuple[str, str, str] = FIELDS
) -> Record:
    """Validate a parsed JSON object and turn it into a `Record`.

    `fields` names the question, steps and answer fields (columns) of `obj`. Raises
    `RimInputError` naming `source` (and `line`) and the offending field.
    """
    if not isinstance(obj, dict):
        raise RimInputError(f"expected a JSON object, got {type(obj).__name__}", source=source, line=line)
    question_key, steps_key, answer_key = fields
    for key in (question_key, answer_key):
        if key not in obj:
            raise RimInputError(f"record has no '{key}' field", source=source, line=line)
        if not isinstance(obj[key], str):
            raise RimInputError(f"field '{key}' must be a string", source=source, line=line)
        if not obj[key].strip():
            raise RimInputError(f"field '{key}' is empty", source=source, line=line)
    if steps_key != FIELDS[1] and steps_key not in obj:
        raise RimInputError(f"record has no '{steps_key}' field", source=source, line=line)
    steps = obj.get(steps_key, [])
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise RimInputError(f"field '{steps_key}' must be a list of strings", source=source, line=line)
    meta = {k: v for k, v in obj.items() if k not in fields}
    origin = f"{source}:{line}" if line is not None else source
    return Record(obj[question_key], tuple(steps), obj[answer_key], meta=meta, origin=origin)
