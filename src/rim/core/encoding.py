"""Records to token ids (`Example`): the question as the model reads it, readouts with a
leading space; and generated ids back to text."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rim.common.errors import RimInputError
from rim.data.icot import step_separator
from rim.data.records import COT_SEPARATOR, Record

if TYPE_CHECKING:  # annotations only: importing this module needs no transformers
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Example:
    """A record after tokenisation. Readout texts (steps, answer, cot) carry a leading space."""

    question: tuple[int, ...]
    steps: tuple[tuple[int, ...], ...]
    answer: tuple[int, ...]
    cot: tuple[int, ...]
    joint: tuple[int, ...] = ()
    """The tokens that join two steps in `cot` (`` +`` for the iCoT multiplication files; none
    where steps are joined by a space)."""


def joined_steps(ex: Example, k: int) -> tuple[int, ...]:
    """The tokens of the first k steps joined as in the chain (`joint` between two steps)."""
    pieces = [(*ex.joint, *step) if i else step for i, step in enumerate(ex.steps[:k])]
    return tuple(itertools.chain.from_iterable(pieces))


def chain_prefix(ex: Example, k: int) -> tuple[int, ...]:
    """The first k steps of the tokenised CoT chain with the joint after them (none after the
    last step): what `chain_after_steps` cuts off. Raises ValueError if `cot` does not start
    with these tokens (the tokenizer merged across a step boundary)."""
    prefix = joined_steps(ex, k) + (ex.joint if 0 < k < len(ex.steps) else ())
    if ex.cot[: len(prefix)] != prefix:
        raise ValueError(
            "the tokenised CoT chain does not start with the tokens of its steps "
            "(the tokenizer merges across step boundaries)"
        )
    return prefix


def chain_after_steps(ex: Example, k: int) -> tuple[int, ...]:
    """The tokenised CoT chain without its first k steps: steps k+1..T, then ` #### answer`."""
    return ex.cot[len(chain_prefix(ex, k)) :]


def texts_of(record: Record) -> list[str]:
    """The texts of a record as `encode` tokenises them (to train a tokenizer on)."""
    return [
        record.question.strip(),
        *(" " + t.strip() for t in (*record.steps, record.answer)),
        " " + COT_SEPARATOR,
    ]


def encode(record: Record, tok: PreTrainedTokenizerBase) -> Example:
    """Tokenise a record. The question gets the tokenizer's own special tokens (e.g. BOS);
    steps, answer and the CoT chain are tokenised as continuations (leading space, no BOS).
    The chain joins the steps as the iCoT text format does (`step_separator`: `` + `` for
    multiplication, a space otherwise), then ` #### answer`."""

    def cont(text: str) -> tuple[int, ...]:
        return tuple(tok(" " + text.strip(), add_special_tokens=False).input_ids)

    question = tuple(tok(record.question.strip()).input_ids)
    if not question:
        raise RimInputError("question is empty after tokenisation", source=record.origin)
    sep = step_separator(record.question)
    steps_text = [sep.join(record.steps)] if record.steps else []
    chain = " ".join([*steps_text, COT_SEPARATOR, record.answer])
    return Example(
        question=question,
        steps=tuple(cont(s) for s in record.steps if s.strip()),
        answer=cont(record.answer),
        cot=cont(chain),
        joint=cont(sep) if sep.strip() else (),
    )


def decode_text(tok: PreTrainedTokenizerBase, ids: list[int]) -> str:
    """Text of generated ids, without special tokens and surrounding spaces."""
    return cast(str, tok.decode(ids, skip_special_tokens=True)).strip()  # one sequence: one str
