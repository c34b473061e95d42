"""The Implicit-CoT text format: one example per line, `question||cot #### answer`.

Used by the published GSM8k-Aug and multiplication files. How the CoT is split into steps:

- multiplication (question `a_rev * b_rev`, digits space separated): the CoT is the partial
  products joined by `` + ``; each step is one partial product together with the running sum
  that follows it in parentheses, e.g. ``0 0 6 4 9 0 ( 5 5 1 1 1 1 )``. Steps are re-joined
  with `` + ``.
- calculator CoTs (GSM8k-Aug): the CoT is ``<<expr=result>>`` strings separated by one space;
  each calculator string is one step. Steps are re-joined with one space.
- anything else: the whole CoT is a single step (an empty CoT gives no steps).

Every split is lossless: `format_icot_line(parse_icot_line(line))` gives `line` back.
"""

from __future__ import annotations

import re

from rim.common.errors import RimInputError
from rim.data.records import Record

ANSWER_MARK = " #### "
QUESTION_MARK = "||"
MULT_STEP_SEP = " + "
CALC_STEP_SEP = " "

_MULT_QUESTION = re.compile(r"\d( \d)* \* \d( \d)*")
_CALC_COT = re.compile(r"<<[^<>]*>>( <<[^<>]*>>)*")
_CALC_STEP = re.compile(r"<<[^<>]*>>")


def is_multiplication_question(question: str) -> bool:
    """True for an iCoT multiplication question such as ``5 6 3 2 * 7 4 3 4``."""
    return _MULT_QUESTION.fullmatch(question) is not None


def split_cot(question: str, cot: str) -> tuple[str, ...]:
    """Split an iCoT chain of thought into steps (see the module docstring for the rules)."""
    if not cot:
        return ()
    if is_multiplication_question(question):
        return tuple(cot.split(MULT_STEP_SEP))
    if _CALC_COT.fullmatch(cot):
        return tuple(_CALC_STEP.findall(cot))
    return (cot,)


def step_separator(question: str) -> str:
    """The string that joins steps back into an iCoT chain of thought for this question."""
    return MULT_STEP_SEP if is_multiplication_question(question) else CALC_STEP_SEP


def parse_icot_line(line: str, *, source: str, lineno: int) -> Record:
    """Parse one `question||cot #### answer` line (without its newline) into a `Record`.

    Raises `RimInputError` naming `source` and `lineno` when the line is malformed.
    """
    if line.count(QUESTION_MARK) != 1:
        raise RimInputError(
            "malformed iCoT line: expected exactly one '||' in 'question||steps #### answer'",
            source=source,
            line=lineno,
        )
    question, rest = line.split(QUESTION_MARK)
    if "####" not in rest:
        raise RimInputError("malformed iCoT line: no '####' before the answer", source=source, line=lineno)
    cot, answer = rest.rsplit("####", 1)
    if cot and not cot.endswith(" "):
        raise RimInputError("malformed iCoT line: expected a space before '####'", source=source, line=lineno)
    if not question.strip():
        raise RimInputError("malformed iCoT line: empty question", source=source, line=lineno)
    if not answer.strip():
        raise RimInputError("malformed iCoT line: empty answer", source=source, line=lineno)
    cot = cot[:-1] if cot.endswith(" ") else cot
    return Record(question, split_cot(question, cot), answer.strip(), origin=f"{source}:{lineno}")


def format_icot_line(record: Record, *, sep: str | None = None) -> str:
    """Render a record as one iCoT line (no newline); `sep` overrides the step separator."""
    if sep is None:
        sep = step_separator(record.question)
    fields = [("question", record.question), ("answer", record.answer)]
    fields += [("step", step) for step in record.steps]
    for what, text in fields:
        if "\n" in text or QUESTION_MARK in text or (what != "question" and "####" in text):
            raise RimInputError(f"cannot write {what} {text[:40]!r} as iCoT text")
    return f"{record.question}{QUESTION_MARK}{sep.join(record.steps)}{ANSWER_MARK}{record.answer}"
