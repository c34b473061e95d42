"""Answer checking: does a predicted answer match the gold one, under a task's checker.

Checkers:

- ``exact``: equal after collapsing whitespace.
- ``numeric``: GSM-style numbers (``1,450,000``, ``-3``, ``.5``, ``$12.50``, ``18.``), compared
  as numbers within a small tolerance; a prediction that is not a bare number is reduced to its
  answer with `extract_answer` first.
- ``sentence``: ProsQA answers, case-insensitive, whitespace collapsed, trailing period ignored.
- ``digits``: multiplication answers, digit strings compared ignoring spaces.
- ``bool``: ProntoQA answers; ``True``/``yes`` and ``False``/``no`` in any case.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Literal, get_args

from rim.errors import RimInputError

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

REL_TOL = 1e-6
ABS_TOL = 1e-6

# A number: an optional sign, digits with proper thousands grouping or none, an optional
# fraction. In text it must stand alone: "5-3" holds no -3, "1,2" no 12, "3 5" no 35.
_NUMBER = r"[-+]?\$?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
_NUMBER_IN_TEXT = re.compile(rf"(?<![\w.,$+-]){_NUMBER}(?![\w,]\d|\.\d)")
_BARE_NUMBER = re.compile(r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:/\d+)?")
_ANSWER_MARK = re.compile(r"#{3,}")
_TRUE = {"true", "yes", "t", "y"}
_FALSE = {"false", "no", "f", "n"}
_BOOL_WORD = re.compile(r"\b(true|false|yes|no)\b", re.IGNORECASE)
_DIGIT_RUN = re.compile(r"\d(?:\s*\d)*")


def check_answer(prediction: str, gold: str, checker: str = "exact") -> bool:
    """True if `prediction` answers `gold` under `checker` (see the module docstring).

    Raises `RimInputError` for an unknown checker name.
    """
    _validate(checker)
    if checker == "numeric":
        gold_value = parse_number(gold)
        if gold_value is None:
            return _collapse(prediction) == _collapse(gold)
        value = parse_number(prediction)
        if value is None:
            value = parse_number(extract_answer(prediction, "numeric"))
        return value is not None and _close(value, gold_value)
    if checker == "sentence":
        return _sentence_key(prediction) == _sentence_key(gold)
    if checker == "digits":
        pred, ref = _digits_key(prediction), _digits_key(gold)
        return bool(ref) and pred == ref
    if checker == "bool":
        pred_value, gold_value = parse_bool(prediction), parse_bool(gold)
        return pred_value is not None and pred_value == gold_value
    return _collapse(prediction) == _collapse(gold)


def digit_accuracy(prediction: str, gold: str) -> float:
    """Share of `gold`'s digit positions that `prediction` gets right (spaces ignored; a missing
    digit is wrong, extra digits are ignored): partial credit for multiplication answers, where
    exact match stays at 0 long after a model has learnt some digits."""
    pred, ref = _digits_key(prediction), _digits_key(gold)
    return sum(a == b for a, b in zip(pred, ref)) / len(ref) if ref else 0.0


def mean_digit_accuracy(predictions: Sequence[str], golds: Sequence[str]) -> float:
    """`digit_accuracy` averaged over pairs of predictions and gold answers."""
    return sum(digit_accuracy(p, g) for p, g in zip(predictions, golds)) / len(golds)


def extract_answer(text: str, checker: str = "exact") -> str:
    """Pull the final answer out of generated text, for use with `check_answer`.

    Text after the last ``###``/``####`` marker is taken when there is one. Then, per checker:
    ``numeric`` gives the last number, normalised (``"$1,450,000."`` -> ``"1450000"``);
    ``digits`` the last run of digits (spaces kept); ``bool`` the last true/false/yes/no word;
    ``sentence`` and ``exact`` the first line, stripped. Returns ``""`` when nothing is found.
    """
    _validate(checker)
    marks = list(_ANSWER_MARK.finditer(text))
    tail = text[marks[-1].end() :] if marks else text
    if checker == "numeric":
        found = _NUMBER_IN_TEXT.findall(tail) or _NUMBER_IN_TEXT.findall(text)
        if not found:
            return ""
        value = parse_number(found[-1])
        return _format_fraction(value) if value is not None else ""
    if checker == "digits":
        runs = _DIGIT_RUN.findall(tail)
        return runs[-1] if runs else ""
    if checker == "bool":
        words = _BOOL_WORD.findall(tail)
        if not words:
            return ""
        return "True" if words[-1].lower() in _TRUE else "False"
    lines = [line.strip() for line in tail.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def parse_number(text: str) -> Fraction | None:
    """Parse a GSM-style number (thousands commas, ``$``, ``%``, sign, trailing period); None
    if not one. Commas must group thousands and no space may split it: ``"1,2"`` and ``"3 5"``
    are not numbers."""
    cleaned = text.strip().replace("$", "").removesuffix(".").removesuffix("%")
    if not _BARE_NUMBER.fullmatch(cleaned):
        return None
    cleaned = cleaned.replace(",", "")
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
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


def _close(value: Fraction, gold: Fraction) -> bool:
    return value == gold or math.isclose(value, gold, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _format_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return repr(float(value))
