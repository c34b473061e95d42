"""The scoring rule: the answer of a generation, and the checkers that judge it."""

from __future__ import annotations

import json
from fractions import Fraction
from types import SimpleNamespace

import pytest
import torch

from rim.common.errors import RimInputError
from rim.core.generation import Generation
from rim.data.answers import (
    CHECKERS,
    DEFAULT_CHECKER,
    answer_part,
    check_answer,
    digit_accuracy,
    parsable,
    parse_bool,
    parse_number,
)
from rim.data.records import Record

# The one scoring rule, generation to verdict: `chain` is True for the methods that write
# `steps #### answer` (CoT, Coconut), False for the answer-only ones (RiM, no-CoT, pause).
RULE = [
    # (generation, gold, chain, credited)
    ("12", "12", False, True),
    ("12.0", "12", False, True),  # compared as rationals
    ("12.50", "12.5", False, True),
    ("3/4", "0.75", False, True),
    ("0.75", "3/4", False, True),
    ("1,234", "1234", False, True),
    ("1234", "1,234", False, True),
    ("1,234,567", "1234567", False, True),
    ("1,23", "123", False, False),  # commas only group thousands
    ("12,34,567", "1234567", False, False),
    ("-3", "-3", False, True),
    ("+3", "3", False, True),
    ("3", "-3", False, False),
    ("1000001", "1000000", False, False),  # no tolerance
    ("  7 \n", "7", False, True),  # surrounding whitespace is ignored
    ("", "7", False, False),  # empty generation
    ("12 dollars", "12", False, False),  # not one number on its own
    ("$12", "12", False, False),
    ("12%", "12", False, False),
    ("12.", "12", False, False),
    ("3 5", "35", False, False),
    ("answer is 7, not 8", "8", False, False),
    ("answer is 7, not 8", "7", False, False),
    ("<<3*4=12>> <<12+5=17>>", "17", False, False),
    ("<<3*4=12>> <<12+5=17>>", "17", True, False),  # a chain without ####
    ("#### 5", "5", False, False),  # an answer-only method must write the bare answer
    ("#### 5", "5", True, True),
    ("<<3*4=12>> #### 12", "12", True, True),
    ("<<3*4=12>> #### 12 dollars", "12", True, False),  # the text after #### is the answer
    ("#### 4 #### 5", "5", True, True),  # the last #### counts
    ("#### 5\nnext question", "5", True, False),
    ("#### 1,000,000", "1000000", True, True),
    ("####", "5", True, False),
    ("3/0", "0", False, False),
]


@pytest.mark.parametrize(("generation", "gold", "chain", "credited"), RULE)
def test_one_scoring_rule(generation, gold, chain, credited):
    answer = answer_part(generation, chain)
    assert check_answer(answer, gold, "numeric") is credited
    assert parsable(answer, "numeric") is (parse_number(answer) is not None)


@pytest.mark.parametrize("method_name", ["rim", "nocot", "pause", "cot", "coconut"])
def test_every_method_takes_its_answer_by_the_rule(method_name):
    from rim.methods import make_method
    from rim.methods.base import SpecialIds

    method = make_method(method_name, SpecialIds(1, 2, 3, 4, 0))
    chain = method_name in ("cot", "coconut")
    for generation in ("<<3*4=12>> #### 12", " 17 ", "answer 7"):
        assert method.answer_text(generation) == answer_part(generation, chain)


@pytest.mark.parametrize(
    ("prediction", "gold", "checker", "expected"),
    [
        ("  Tom is  a lempus. ", "Tom is a lempus.", "exact", True),
        ("tom is a lempus.", "Tom is a lempus.", "exact", False),
        ("tom is a LEMPUS", "Tom is a lempus.", "sentence", True),
        ("Tom  is a lempus .", "Tom is a lempus.", "sentence", True),
        ("Tom is a scrompus.", "Tom is a lempus.", "sentence", False),
        ("So Tom is a lempus.", "Tom is a lempus.", "sentence", False),
        ("55608201", "5 5 6 0 8 2 0 1", "digits", True),
        (" 5 5 6 0 8 2 0 1 ", "5 5 6 0 8 2 0 1", "digits", True),
        ("5 5 6 0 8 2 0", "5 5 6 0 8 2 0 1", "digits", False),
        ("= 5 5 6 0 8 2 0 1", "5 5 6 0 8 2 0 1", "digits", False),
        ("", "", "digits", False),
        ("yes", "True", "bool", True),
        ("TRUE.", "True", "bool", True),
        ("no", "False", "bool", True),
        ("False", "True", "bool", False),
        ("maybe", "True", "bool", False),
        ("So the claim is true.", "True", "bool", False),
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
        parsable("1", "fuzzy")


@pytest.mark.parametrize(
    ("answer", "checker", "expected"),
    [
        ("-1,450,000", "numeric", True),
        ("3/4", "numeric", True),
        ("12 dollars", "numeric", False),
        ("", "numeric", False),
        ("5 5 6", "digits", True),
        ("5 x", "digits", False),
        ("\u00b2", "digits", False),
        ("", "digits", False),
        ("no", "bool", True),
        ("perhaps", "bool", False),
        ("Tom is a lempus.", "sentence", True),
        ("", "sentence", False),
        (" ", "exact", False),
    ],
)
def test_parsable(answer, checker, expected):
    assert parsable(answer, checker) is expected


def test_parsers():
    assert parse_number("1,450,000") == 1450000
    assert parse_number("-3.5") == Fraction(-7, 2)
    assert parse_number("-3/4") == Fraction(-3, 4)
    assert parse_number("12%") is None
    assert parse_number("1.2.3") is None
    assert parse_number("\u0663") is None  # ASCII digits only
    assert parse_number("abc") is None
    assert parse_bool("Yes.") is True and parse_bool("no") is False and parse_bool("?") is None


def test_default_checkers_name_real_checkers():
    assert set(DEFAULT_CHECKER.values()) <= set(CHECKERS)
    assert DEFAULT_CHECKER["gsm8k"] == "numeric"
    assert DEFAULT_CHECKER["prosqa"] == "sentence"
    assert DEFAULT_CHECKER["prontoqa"] == "bool"
    assert DEFAULT_CHECKER["multiplication"] == "digits"


@pytest.mark.parametrize(
    "prediction,gold,expected",
    [
        ("5 5 6 0", "5 5 6 0", 1.0),
        ("5 5 6 1", "5 5 6 0", 0.75),
        ("5 5", "5 5 6 0", 0.5),  # missing digits are wrong
        ("5 5 6 0 9 9", "5 5 6 0", 1.0),  # extra digits are ignored
        ("", "1 2", 0.0),
        ("1", "", 0.0),
    ],
)
def test_digit_accuracy(prediction, gold, expected):
    assert digit_accuracy(prediction, gold) == expected


def test_an_unfinished_chain_has_no_answer():
    from rim.methods.base import chain_answer

    assert chain_answer(" <<16-3-4=9>> <<9*2=18") == ""
    assert chain_answer(" <<16-3-4=9>> <<9*2=18>> #### 18") == "18"
    assert not check_answer(chain_answer("<<9*2=18"), "18", "numeric")


class _ScriptedRun:
    """Stands in for a `LoadedRun` whose generations (per question, after each block) are
    scripted; everything after generation is the real code path."""

    def __init__(self, method, script: dict[str, list[str]]):
        self.method, self.script = method, script
        self.blocks = method.blocks
        self.info = SimpleNamespace(max_new_tokens=1000)

    def check_fits(self, question: str, source: str) -> None:
        assert question in self.script

    def generate(self, questions: list[str], blocks: int | None = None) -> Generation:
        k = blocks or max(self.blocks, 1)
        return Generation([list(self.script[q][k - 1]) for q in questions], 0.0, 0.0, 1)

    def generate_every_block(self, questions: list[str]) -> list[Generation]:
        return [self.generate(questions, k) for k in range(1, self.blocks + 1)]

    def answers_every_block(self, questions: list[str]) -> list[list[str]]:
        return [
            [self.answer_text(g) for g in self.generate(questions, k).ids] for k in range(1, self.blocks + 1)
        ]

    def answer_text(self, ids: list[str]) -> str:
        return self.method.answer_text("".join(ids))


@pytest.mark.parametrize("one_pass", [True, False])
def test_per_block_and_any_block_accuracies_use_the_same_rule(one_pass):
    from rim.analysis.probe import adaptive_table, correctness
    from rim.inference.evaluate import evaluate
    from rim.methods import make_method
    from rim.methods.base import SpecialIds

    records = [Record("q1", (), "17"), Record("q2", (), "8"), Record("q3", (), "12")]
    script = {
        "q1": ["<<3*4=12>> <<12+5=17>>", " 17"],  # a chain's last number: no credit
        "q2": ["answer is 7, not 8", "8"],
        "q3": ["12 dollars", "twelve"],
    }  # the lenient rule credited block 1 here
    run = _ScriptedRun(make_method("rim", SpecialIds(1, 2, 3, 4, 0), blocks=2), script)
    result = evaluate(run, records, "numeric", latency_samples=0, one_pass=one_pass)
    assert result["per_block"] == [0.0, 2 / 3]
    assert result["any_block_accuracy"] == 2 / 3
    assert result["accuracy"] == 2 / 3 and result["correct"] == [True, True, False]
    assert result["unparsable"] == 1 / 3
    right = correctness(result["block_predictions"], records, "numeric")
    assert right.tolist() == [[False, True], [False, True], [False, False]]
    assert adaptive_table(torch.ones(3, 2), right, [0.5])[0]["accuracy"] == 0.0  # block 1
    assert adaptive_table(torch.zeros(3, 2), right, [0.5])[0]["accuracy"] == pytest.approx(2 / 3)


def test_a_chain_method_is_scored_after_its_last_separator():
    from rim.inference.evaluate import evaluate
    from rim.methods import make_method
    from rim.methods.base import SpecialIds

    records = [Record("q1", (), "17"), Record("q2", (), "17"), Record("q3", (), "12")]
    script = {
        "q1": ["<<3*4=12>> <<12+5=17>>"],
        "q2": ["<<12+5=17>> #### 17"],
        "q3": ["<<3*4=12>> #### 12 dollars"],
    }
    run = _ScriptedRun(make_method("cot", SpecialIds(1, 2, 3, 4, 0)), script)
    result = evaluate(run, records, "numeric", latency_samples=0)
    assert result["correct"] == [False, True, False]
    assert result["predictions"] == ["", "17", "12 dollars"]
    assert result["unparsable"] == 2 / 3 and "per_block" not in result


def test_a_sweep_scores_an_eval_json_from_before_the_rule_again(tmp_path):
    from rim.bench.accuracy_report import _scored

    data = tmp_path / "eval.jsonl"
    data.write_text(
        "".join(
            json.dumps({"question": f"q{i}", "steps": [], "answer": a}) + "\n"
            for i, a in enumerate(["17", "12"])
        )
    )
    job = SimpleNamespace(cfg=SimpleNamespace(data=SimpleNamespace(eval=str(data), checker="numeric")))
    old = {
        "accuracy": 1.0,
        "predictions": ["<<12+5=17>>", "12 dollars"],
        "per_block": [1.0],
        "any_block_accuracy": 1.0,
    }
    scored = _scored(job, old)
    assert scored["accuracy"] == 0.0 and scored["unparsable"] == 1.0
    assert scored["per_block"] is None and scored["any_block_accuracy"] is None
    new = {**old, "unparsable": 0.0}
    assert _scored(job, new) == new
