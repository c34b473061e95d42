import json

import pytest

from rim.cli import main
from rim.common.errors import RimInputError
from rim.data.generators.chain import apply, generate_chain


def test_chain_steps_follow_the_moves():
    for r in generate_chain(200, seed=3, ops=3):
        words = r.question.split()
        assert words[-1] == "?" and len(r.steps) == 3
        value = int(words[0])
        for move, step in zip(words[1:-1], r.steps):
            value = apply(value, move)
            assert str(value) == step
        assert r.answer == r.steps[-1]


def test_chain_is_seeded_and_answers_are_balanced():
    assert generate_chain(50, seed=1) == generate_chain(50, seed=1)
    assert generate_chain(50, seed=1) != generate_chain(50, seed=2)
    answers = [r.answer for r in generate_chain(2000, seed=0)]
    assert all(120 < answers.count(str(d)) < 280 for d in range(10))


def test_chain_rejects_bad_moves():
    with pytest.raises(RimInputError, match="bad move"):
        generate_chain(1, 0, moves="+1 *2")


def test_rim_data_generate_chain_with_options(tmp_path):
    out = tmp_path / "c.jsonl"
    assert (
        main(
            [
                "data",
                "generate",
                "chain",
                "--n",
                "5",
                "--option",
                "ops=2",
                "--option",
                "moves=+1 *3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["steps"]) == 2 for r in rows)
    assert all(set(r["question"].split()[1:-1]) <= {"+1", "*3"} for r in rows)


def test_data_stats_compares_prosqa_graphs(tmp_path, shared_data, capsys):
    out = tmp_path / "p.json"
    assert main(["data", "generate", "prosqa", "--n", "40", "--seed", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(out), "--compare", str(shared_data / "prosqa" / "valid.json")]) == 0
    printed = capsys.readouterr().out
    assert "ProsQA graph statistics" in printed and "edges (mean)" in printed
    assert "22.82" in printed  # the published set's mean node count


def test_data_stats_compare_needs_graphs(tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    assert main(["data", "generate", "chain", "--n", "5", "--out", str(out)]) == 0
    assert main(["data", "stats", str(out), "--compare", str(out)]) == 2
    assert "needs ProsQA records" in capsys.readouterr().err
