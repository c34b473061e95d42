"""Generators: seeded and deterministic, faithful to the published formats, correct answers."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from rim.cli.data import register
from rim.common.errors import RimInputError
from rim.data.generators import GENERATORS, generate
from rim.data.generators.calc import calc_result, check_calc_step, evaluate
from rim.data.generators.gsm import TEMPLATES
from rim.data.generators.multiplication import multiplication_record, parse_operands
from rim.data.prosqa_graph import children_of, distances_from, graph_problems, prosqa_statistics
from rim.data.readers import read_records
from rim.data.writers import write_records


def dump(records) -> list[dict]:
    return [{**r.to_dict(), "_steps": list(r.steps)} for r in records]


# --- registry ------------------------------------------------------------------------------


def test_registry_is_a_plain_dict_of_tasks():
    assert type(GENERATORS) is dict
    assert {"multiplication", "prosqa", "prontoqa", "gsm"} <= set(GENERATORS)


@pytest.mark.parametrize("task", ["multiplication", "prosqa", "prontoqa", "gsm"])
def test_same_seed_same_records_other_seed_other_records(task):
    first = generate(task, 6, seed=11)
    assert len(first) == 6
    assert dump(first) == dump(generate(task, 6, seed=11))
    assert dump(first) != dump(generate(task, 6, seed=12))


def test_unknown_task_option_or_count():
    with pytest.raises(RimInputError, match="unknown task 'sudoku'"):
        generate("sudoku", 1, 0)
    with pytest.raises(RimInputError, match="takes no option digits"):
        generate("prosqa", 1, 0, digits=3)
    with pytest.raises(RimInputError, match="n must be at least 1"):
        generate("gsm", 0, 0)


# --- multiplication --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["4x4", "5x5"])
def test_multiplication_reproduces_published_files_byte_for_byte(shared_data, tmp_path, name):
    published = shared_data / "multiplication" / name / "valid.txt"
    records = generate("multiplication", 0, 0, operands_from=str(published))
    out = write_records(records, tmp_path / "valid.txt")
    assert out.read_bytes() == published.read_bytes()
    assert len(generate("multiplication", 10, 0, operands_from=str(published))) == 10


@pytest.mark.parametrize("digits", [1, 2, 4, 5, 7])
def test_multiplication_answers_and_format(digits):
    for record in generate("multiplication", 20, seed=digits, digits=digits):
        a, b = (int(x) for x in parse_operands(record.question))
        assert len(str(a)) == len(str(b)) == digits
        assert record.answer == " ".join(str(a * b)[::-1].ljust(2 * digits, "0"))
        assert len(record.steps) == digits
        assert [("(" in step) for step in record.steps] == [0 < i < digits - 1 for i in range(digits)]
        partial_sums = 0
        for i, step in enumerate(record.steps):
            partial = int("".join(step.split(" ( ")[0].split())[::-1])
            assert partial == a * int(str(b)[::-1][i]) * 10**i
            partial_sums += partial
            if "(" in step:
                running = step.split(" ( ")[1].removesuffix(" )")
                assert int("".join(running.split())[::-1]) == partial_sums


def test_multiplication_record_matches_published_example():
    record = multiplication_record(2365, 4347)
    assert record.question == "5 6 3 2 * 7 4 3 4"
    assert record.answer == "5 5 6 0 8 2 0 1"


def test_multiplication_operands_from_a_non_multiplication_file(tmp_path):
    path = tmp_path / "gsm.txt"
    path.write_text("How many?||<<1+1=2>> #### 2\n")
    with pytest.raises(RimInputError, match="record 1: not a multiplication question"):
        generate("multiplication", 0, 0, operands_from=str(path))


# --- ProsQA ------------------------------------------------------------------------------------


def test_prosqa_structural_invariants():
    for record in generate("prosqa", 60, seed=3):
        meta = record.meta
        children = children_of(len(meta["idx_to_symbol"]), meta["edges"])
        reach = distances_from(children, meta["root"])
        assert meta["target"] in reach
        assert meta["neg_target"] not in reach
        assert 3 <= len(record.steps) == reach[meta["target"]] <= 6
        # the steps chain: each step's object is the next step's subject
        for step, after in zip(record.steps, record.steps[1:], strict=False):
            assert step.removesuffix(".").split(" is a ")[1] == after.split(" is a ")[0][6:]
        assert graph_problems(record) == []
        assert all(all(isinstance(i, int) for i in edge) for edge in meta["edges"])


def test_prosqa_looks_like_the_published_split(shared_data):
    published = read_records(shared_data / "prosqa" / "valid.json")
    generated = generate("prosqa", 200, seed=0)
    ours, theirs = prosqa_statistics(generated), prosqa_statistics(published)
    assert abs(ours["nodes"] - theirs["nodes"]) < 1.5  # published: 22.8
    assert abs(ours["edges"] - theirs["edges"]) < 3  # published: 36.3
    assert abs(ours["shortest_path"] - theirs["shortest_path"]) < 0.35  # published: 3.75
    assert abs(ours["shortest_paths"] - theirs["shortest_paths"]) < 0.4  # published: 1.6
    assert ours["min_steps"] == 3 and ours["max_steps"] <= 6
    assert set(published[0].meta) == set(generated[0].meta)
    words = {w for r in published for w in r.meta["idx_to_symbol"]}
    assert {w for r in generated for w in r.meta["idx_to_symbol"]} <= words
    pattern = re.compile(r"((Every [a-z]+|[A-Z][a-z]+) is a [a-z]+\. )+Is [A-Z][a-z]+ a [a-z]+ or [a-z]+\?")
    assert all(pattern.fullmatch(r.question) for r in generated + published)


# --- ProntoQA ----------------------------------------------------------------------------------


def test_prontoqa_chains_and_answers():
    records = generate("prontoqa", 40, seed=5)
    assert {r.answer for r in records} == {"True", "False"}
    for record in records:
        assert len(record.steps) == 5
        name = record.steps[0].split(" is a ")[0]
        claim = record.question.rsplit("True or false: ", 1)[1]
        assert claim.startswith(f"{name} is ")
        last_rule = record.steps[-1].split(". ", 1)[1]
        prop = claim.removesuffix(".").split()[-1]
        assert last_rule.removesuffix(".").split()[-1] == prop
        derived_positive = " not " not in f" {last_rule} "
        claimed_positive = " not " not in f" {claim} "
        assert record.answer == str(derived_positive == claimed_positive)
        for step in record.steps:  # every rule used is stated in the question
            fact, rule = step.split(". ", 1)
            assert fact.startswith(f"{name} is a ") and rule in record.question


# --- GSM ---------------------------------------------------------------------------------------


def test_gsm_arithmetic_is_correct_and_answer_is_last_result():
    records = generate("gsm", 300, seed=1)
    assert {r.meta["template"] for r in records} == set(TEMPLATES)
    assert len(TEMPLATES) >= 12
    for record in records:
        assert record.steps
        assert all(check_calc_step(step) for step in record.steps), record.steps
        assert record.answer == calc_result(record.steps[-1])
        assert int(record.answer) >= 0


def test_calculator_checks():
    assert check_calc_step("<<2/.5=4>>") and check_calc_step("<<1.5+3+5.5=10>>")
    assert not check_calc_step("<<2*3=7>>") and not check_calc_step("2*3=6")
    assert not check_calc_step("<<__import__('os')=0>>")
    assert evaluate("-(2+3)*4") == -20
    with pytest.raises(RimInputError):
        evaluate("2**10")


def test_gsm_reasoning_gym_source_needs_the_package():
    try:
        import reasoning_gym  # noqa: F401
    except ImportError:
        with pytest.raises(RimInputError, match="reasoning-gym"):
            generate("gsm", 2, 0, source="reasoning_gym")
    with pytest.raises(RimInputError, match="unknown gsm source"):
        generate("gsm", 2, 0, source="web")


# --- CLI -------------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="rim")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_generate_and_stats(tmp_path, capsys):
    out = tmp_path / "prosqa.json"
    assert run_cli("data", "generate", "prosqa", "--n", "3", "--seed", "2", "--out", str(out)) == 0
    assert len(json.loads(out.read_text())) == 3
    assert run_cli("data", "stats", str(out)) == 0
    printed = capsys.readouterr().out
    assert "steps per record" in printed and "p90" in printed
    icot = tmp_path / "mult.dat"
    args = ["data", "generate", "multiplication", "--n", "4", "--digits", "3", "--out", str(icot)]
    assert run_cli(*args, "--format", "icot") == 0
    assert len(read_records(icot, format="icot")) == 4


def test_cli_operands_from_reproduces_file(shared_data, tmp_path):
    published = shared_data / "multiplication" / "5x5" / "valid.txt"
    out = tmp_path / "again.txt"
    argv = ["data", "generate", "multiplication", "--operands-from", str(published)]
    assert run_cli(*argv, "--out", str(out)) == 0
    assert out.read_bytes() == published.read_bytes()


def test_cli_errors_leave_no_file(tmp_path):
    out = tmp_path / "x.jsonl"
    with pytest.raises(RimInputError, match="unknown task"):
        run_cli("data", "generate", "sudoku", "--n", "3", "--out", str(out))
    with pytest.raises(RimInputError, match="--n is required"):
        run_cli("data", "generate", "gsm", "--out", str(out))
    with pytest.raises(RimInputError, match="digits must be"):
        run_cli("data", "generate", "multiplication", "--n", "2", "--digits", "0", "--out", str(out))
    with pytest.raises(RimInputError, match="output format"):
        run_cli("data", "generate", "gsm", "--n", "2", "--out", str(tmp_path / "x.csv"))
    assert list(tmp_path.iterdir()) == []
    out.write_text("old\n")
    with pytest.raises(RimInputError, match="no option digits"):
        run_cli("data", "generate", "gsm", "--n", "2", "--digits", "3", "--out", str(out))
    assert out.read_text() == "old\n"


def test_cli_refuses_a_format_its_suffix_contradicts(tmp_path):
    """iCoT lines in x.jsonl would be read back as malformed JSON: refused, nothing written."""
    out = tmp_path / "x.jsonl"
    with pytest.raises(
        RimInputError,
        match=r"--format icot does not match the suffix \.jsonl "
        r"\(read back as jsonl\): name the file \*\.txt",
    ):
        run_cli("data", "generate", "chain", "--n", "3", "--format", "icot", "--out", str(out))
    assert list(tmp_path.iterdir()) == []
    txt = tmp_path / "x.txt"  # the suffix alone picks the format, and the file reads back
    assert run_cli("data", "generate", "chain", "--n", "3", "--out", str(txt)) == 0
    assert len(read_records(txt)) == 3 and "||" in txt.read_text()
    assert run_cli("data", "generate", "chain", "--n", "3", "--format", "jsonl", "--out", str(out)) == 0
    assert len(read_records(out)) == 3


def test_cli_stats_reads_a_gen_source_as_train_does(capsys):
    assert run_cli("data", "stats", "gen:chain?n=5&seed=1&ops=2") == 0
    printed = capsys.readouterr().out
    assert "gen:chain?n=5&seed=1&ops=2" in printed and "steps per record" in printed
    assert re.search(r"all\W+5\W+100\.0%", printed)  # 5 records, every one of 2 steps
