"""Answer checking: one rule for every method.

The answer of a generation (`answer_part`, what every method's `answer_text` returns): for the
methods that write a chain (CoT, and Coconut, whose generation is ``steps #### answer`` at every
stage) the text after the last ``####``, and nothing when there is none; for the others (RiM,
no-CoT, pause) the whole generation up to its end. Surrounding whitespace is ignored. A checker
then judges that whole answer; nothing is searched for inside it (``12 dollars``, ``answer is 7``
and ``<<3*4=12>>`` hold no answer):

- ``exact``: equal after collapsing whitespace.
- ``numeric``: one number on its own: an optional sign, digits (thousands grouped by commas as
  in ``1,234,567``, or not at all), optional decimals (``12.50``); or a fraction ``a/b``.
  Compared exactly as rationals: ``12.0`` equals ``12`` and ``3/4`` equals ``0.75``;
  ``1000001`` does not equal ``1000000``. A gold answer that is not such a number is compared
  as ``exact``.
- ``sentence``: ProsQA answers, case-insensitive, whitespace collapsed, trailing period ignored.
- ``digits``: multiplication answers, digit strings compared ignoring spaces.
- ``bool``: ProntoQA answers; ``True``/``yes`` and ``False``/``no`` in any case.

`parsable` says whether an answer is one its checker can read at all (`eval.json`'s
``unparsable`` is the share that is not). docs/recipes.md compares the rule with Coconut's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Literal, get_args

from rim.common.errors import RimInputError
from rim.data.records import COT_SEPARATOR

Checker = Literal["exact", "numeric", "sentence", "digits", "bool"]
CHECKERS: tuple[str, ...] = get_args(Checker)

DEFAULT_CHECKER: dict[str, str] = {
    "gsm8k": "numeric",
    "gsm8k_aug": "numeric",
    "gsm8k-aug": "numeric",
    "gsm": "numeric",
    "gsmhard": "numeric",
    "gsm-hard": "numeric",
    "svamp": "numeric",
    "multiarith": "numeric",
    "prosqa": "sentence",
    "prontoqa": "bool",
    "multiplication": "digits",
    "mult": "digits",
    "chain": "exact",
}

# One number on its own: sign, digits with proper thousands grouping or none, decimals; or a/b.
_NUMBER = re.compile(r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\d+/\d+)", re.ASCII)
_DIGITS = re.compile(r"[0-9]+")
_TRUE = {"true", "yes", "t", "y"}
_FALSE = {"false", "no", "f", "n"}


def answer_part(generation: str, chain: bool) -> str:
    """The answer of a decoded generation: with `chain` (the method writes ``steps ####
    answer``), the text after the last ``####``, or ``""`` without one (an unfinished chain gets
    no credit); else the whole generation. Stripped of surrounding whitespace."""
    if not chain:
        return generation.strip()
    _, separator, tail = generation.rpartition(COT_SEPARATOR)
    return tail.strip() if separator else ""


def check_answer(prediction: str, gold: str, checker: str = "exact") -> bool:
    """True if the answer `prediction` (see `answer_part`) answers `gold` under `checker` (see
    the module docstring).

    Raises `RimInputError` for an unknown checker name.
    """
    _validate(checker)
    if checker == "numeric":
        gold_value = parse_number(gold)
        if gold_value is None:
            return _collapse(prediction) == _collapse(gold)
        return parse_number(prediction) == gold_value
    if checker == "sentence":
        return _sentence_key(prediction) == _sentence_key(gold)
    if checker == "digits":
        pred, ref = _digits_key(prediction), _digits_key(gold)
        return bool(ref) and pred == ref
    if checker == "bool":
        pred_flag, gold_flag = parse_bool(prediction), parse_bool(gold)
        return pred_flag is not None and pred_flag == gold_flag
    return _collapse(prediction) == _collapse(gold)


def parsable(prediction: str, checker: str = "exact") -> bool:
    """True if `checker` can read the answer `prediction` at all, whatever the gold: a number
    for ``numeric``, digits for ``digits``, a truth value for ``bool``, any text otherwise."""
    _validate(checker)
    if checker == "numeric":
        return parse_number(prediction) is not None
    if checker == "digits":
        return _DIGITS.fullmatch(_digits_key(prediction)) is not None
    if checker == "bool":
        return parse_bool(prediction) is not None
    return bool(prediction.strip())


def digit_accuracy(prediction: str, gold: str) -> float:
    """Share of `gold`'s digit positions that `prediction` gets right (spaces ignored; a missing
    digit is wrong, extra digits are ignored): partial credit for multiplication answers, where
    exact match stays at 0 long after a model has learnt some digits."""
    pred, ref = _digits_key(prediction), _digits_key(gold)
    return sum(a == b for a, b in zip(pred, ref)) / len(ref) if ref else 0.0


def mean_digit_accuracy(predictions: Sequence[str], golds: Sequence[str]) -> float:
    """`digit_accuracy` averaged over pairs of predictions and gold answers."""
    return sum(digit_accuracy(p, g) for p, g in zip(predictions, golds)) / len(golds)


def parse_number(text: str) -> Fraction | None:
    """The exact value of `text` if it is one number on its own (surrounding whitespace
    ignored): ``"-1,450,000"``, ``"12.50"``, ``"3/4"``; None otherwise (``"1,23"``, ``"$5"``,
    ``"12%"``, ``"3 5"``, ``"18."``, ``"3/0"``)."""
    cleaned = text.strip()
    if not _NUMBER.fullmatch(cleaned):
        return None
    try:
        return Fraction(cleaned.replace(",", ""))
    except ZeroDivisionError:
        return None


def parse_bool(text: str) -> bool | None:
    """``True``/``yes`` -> True, ``False``/``no`` -> False (any case, trailing period ok)."""
    key = _collapse(text).rstrip(".").lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    return None


def _validate(checker: str) -> None:
    if checker not in CHECKERS:
        raise RimInputError(f"unknown answer checker {checker!r} (known: {', '.join(CHECKERS)})")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _sentence_key(text: str) -> str:
    return _collapse(text).rstrip(".").rstrip().casefold()


def _digits_key(text: str) -> str:
    return "".join(text.split())
