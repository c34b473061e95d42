"""Answer checkers and answer extraction."""

from __future__ import annotations

import pytest

from rim.data.answers import (
    CHECKERS,
    DEFAULT_CHECKER,
    check_answer,
    digit_accuracy,
    extract_answer,
    parse_bool,
    parse_number,
)
from rim.errors import RimInputError


@pytest.mark.parametrize(
    ("prediction", "gold", "checker", "expected"),
    [
        ("  Tom is  a lempus. ", "Tom is a lempus.", "exact", True),
        ("tom is a lempus.", "Tom is a lempus.", "exact", False),
        ("1,450,000", "1450000", "numeric", True),
        ("$1,450,000.", "1450000", "numeric", True),
        ("1450000", "1,450,000", "numeric", True),
        ("-12", "-12", "numeric", True),
        ("12", "-12", "numeric", False),
        (".5", "0.5", "numeric", True),
        ("0.50", ".5", "numeric", True),
        ("3.0000000001", "3", "numeric", True),
        ("3.01", "3", "numeric", False),
        ("18 dollars", "18", "numeric", True),
        ("The total is 5 + 13 = 18.", "18", "numeric", True),
        ("<<5+13=18>> #### 18", "18", "numeric", True),
        ("no number here", "18", "numeric", False),
        ("3 5", "35", "numeric", False),  # no space inside a number
        ("1,2", "12", "numeric", False),  # commas only group thousands
        ("5-3", "-3", "numeric", False),  # a sign after a digit is an operator
        ("12,345", "12345", "numeric", True),
        ("", "18", "numeric", False),
        ("tom is a LEMPUS", "Tom is a lempus.", "sentence", True),
        ("Tom  is a lempus .", "Tom is a lempus.", "sentence", True),
        ("Tom is a scrompus.", "Tom is a lempus.", "sentence", False),
        ("55608201", "5 5 6 0 8 2 0 1", "digits", True),
        (" 5 5 6 0 8 2 0 1 ", "5 5 6 0 8 2 0 1", "digits", True),
        ("5 5 6 0 8 2 0", "5 5 6 0 8 2 0 1", "digits", False),
        ("", "", "digits", False),
        ("yes", "True", "bool", True),
        ("TRUE.", "True", "bool", True),
        ("no", "False", "bool", True),
        ("False", "True", "bool", False),
        ("maybe", "True", "bool", False),
    ],
)
def test_check_answer(prediction, gold, checker, expected):
    assert check_answer(prediction, gold, checker) is expected


def test_non_numeric_gold_falls_back_to_exact():
    assert check_answer("n/a", "n/a", "numeric")
    assert not check_answer("4", "n/a", "numeric")


def test_unknown_checker_raises():
    with pytest.raises(RimInputError, match="unknown answer checker 'fuzzy'"):
        check_answer("1", "1", "fuzzy")
    with pytest.raises(RimInputError, match="unknown answer checker"):
        extract_answer("1", "fuzzy")


@pytest.mark.parametrize(
    ("text", "checker", "expected"),
    [
        ("So she pays 3 * $400 = $1,200.", "numeric", "1200"),
        ("<<4-2=2>> <<2*3=6>> #### -4.50", "numeric", "-4.5"),
        ("12 apples and 7 pears ### 19", "numeric", "19"),
        ("the answer is .25", "numeric", "0.25"),
        ("nothing", "numeric", ""),
        ("0 0 6 4 ( 5 5 ) #### 5 5 6 0 8 2 0 1", "digits", "5 5 6 0 8 2 0 1"),
        ("Wren is a wumpus. So the claim is false.", "bool", "False"),
        ("### Tom is a lempus.\nmore text", "sentence", "Tom is a lempus."),
        ("  42  ", "exact", "42"),
    ],
)
def test_extract_answer(text, checker, expected):
    assert extract_answer(text, checker) == expected


def test_parsers():
    assert parse_number("1,450,000") == 1450000
    assert parse_number("-3.5") == -3.5
    assert parse_number("12%") == 12
    assert parse_number("1.2.3") is None
    assert parse_number("abc") is None
    assert parse_bool("Yes.") is True and parse_bool("no") is False and parse_bool("?") is None


def test_default_checkers_name_real_checkers():
    assert set(DEFAULT_CHECKER.values()) <= set(CHECKERS)
    assert DEFAULT_CHECKER["gsm8k"] == "numeric"
    assert DEFAULT_CHECKER["prosqa"] == "sentence"
    assert DEFAULT_CHECKER["prontoqa"] == "bool"
    assert DEFAULT_CHECKER["multiplication"] == "digits"


@pytest.mark.parametrize("prediction,gold,expected", [
    ("5 5 6 0", "5 5 6 0", 1.0),
    ("5 5 6 1", "5 5 6 0", 0.75),
    ("5 5", "5 5 6 0", 0.5),          # missing digits are wrong
    ("5 5 6 0 9 9", "5 5 6 0", 1.0),  # extra digits are ignored
    ("", "1 2", 0.0),
    ("1", "", 0.0),
])
def test_digit_accuracy(prediction, gold, expected):
    assert digit_accuracy(prediction, gold) == expected


def test_an_unfinished_chain_has_no_answer():
    from rim.methods.base import chain_answer

    assert chain_answer(" <<16-3-4=9>> <<9*2=18") == ""
    assert chain_answer(" <<16-3-4=9>> <<9*2=18>> #### 18") == "18"
    assert not check_answer(chain_answer("<<9*2=18"), "18", "numeric")
