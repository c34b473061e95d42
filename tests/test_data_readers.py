"""Readers and writers: the published files read without loss, every format, clear errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rim.common.errors import RimInputError
from rim.data.prosqa_graph import GRAPH_FIELDS, graph_problems
from rim.data.readers import read_records
from rim.data.records import Record
from rim.data.writers import render_records, write_records

PUBLISHED = {
    "prosqa/valid.json": 300,
    "multiplication/4x4/valid.txt": 1000,
    "multiplication/5x5/valid.txt": 1000,
    "gsm8k_aug/valid.txt": 500,
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the published files ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), PUBLISHED.items())
def test_published_files_read_and_rewrite_byte_for_byte(shared_data, name, count):
    path = shared_data / name
    records = read_records(path)
    assert len(records) == count
    fmt = "json" if path.suffix == ".json" else "icot"
    original = path.read_bytes().decode("utf-8")
    assert render_records(records, fmt) == original
    if fmt == "json":
        assert json.loads(render_records(records, fmt)) == json.loads(original)


def test_multiplication_steps_are_partial_products_with_running_sums(shared_data):
    record = read_records(shared_data / "multiplication/4x4/valid.txt")[0]
    assert record.question == "5 6 3 2 * 7 4 3 4"
    assert record.steps == (
        "5 5 5 6 1",
        "0 0 6 4 9 0 ( 5 5 1 1 1 1 )",
        "0 0 5 9 0 7 0 ( 5 5 6 0 2 8 0 )",
        "0 0 0 0 6 4 9 0",
    )
    assert record.answer == "5 5 6 0 8 2 0 1"
    five = read_records(shared_data / "multiplication/5x5/valid.txt")
    assert {len(r.steps) for r in five} == {5}


def test_gsm8k_aug_steps_are_calculator_strings(shared_data):
    records = read_records(shared_data / "gsm8k_aug/valid.txt")
    first = records[0]
    assert first.steps == ("<<4-2=2>>", "<<2/.5=4>>", "<<12/4=3>>", "<<100*3=300>>")
    assert first.answer == "300"
    assert first.question.endswith("How much does he pay per year?")
    assert all(s.startswith("<<") and s.endswith(">>") for r in records for s in r.steps)
    assert sum(1 for r in records if not r.steps) == 6  # published rows with an empty CoT
    assert first.origin.endswith("valid.txt:1")


def test_prosqa_graph_fields_kept_and_well_formed(shared_data):
    records = read_records(shared_data / "prosqa/valid.json")
    assert all(set(GRAPH_FIELDS) <= set(r.meta) for r in records)
    assert all(graph_problems(r) == [] for r in records)
    assert records[0].steps[0] == "Tom is a terpus."
    assert records[0].answer == "Tom is a lempus."


# --- format detection and overrides ------------------------------------------------------


def test_jsonl_json_list_and_override(tmp_path):
    row = {"question": "q?", "steps": ["a", "b"], "answer": "x", "id": 7}
    jsonl = write(tmp_path, "d.jsonl", json.dumps(row) + "\n\n" + json.dumps(row) + "\n")
    listed = write(tmp_path, "d.json", json.dumps([row, row], indent=2))
    jsonl_as_json = write(tmp_path, "lines.json", json.dumps(row) + "\n")
    other = write(tmp_path, "d.data", json.dumps(row) + "\n")
    expected = Record("q?", ("a", "b"), "x")
    for path in (jsonl, listed, jsonl_as_json, other):
        records = read_records(path)
        assert records[0] == expected and records[0].meta == {"id": 7}
    assert read_records(write(tmp_path, "rows.txt", json.dumps(row)), format="jsonl") == [expected]
    icot = write(tmp_path, "plain.dat", "2 + 2?||<<2+2=4>> #### 4\n")
    assert read_records(icot) == [Record("2 + 2?", ("<<2+2=4>>",), "4")]
    assert read_records(icot, format="icot") == [Record("2 + 2?", ("<<2+2=4>>",), "4")]


def test_icot_text_without_calculator_steps_is_one_step(tmp_path):
    path = write(tmp_path, "t.txt", "Q||first then second #### 3\nQ2|| #### 4\n")
    assert read_records(path) == [Record("Q", ("first then second",), "3"), Record("Q2", (), "4")]


def test_unknown_format_and_undetectable_files(tmp_path):
    path = write(tmp_path, "d.txt", "no separators here\n")
    with pytest.raises(RimInputError, match="d.txt:1: .*iCoT"):
        read_records(path)
    with pytest.raises(RimInputError, match="unknown data format 'yaml'"):
        read_records(path, format="yaml")
    with pytest.raises(RimInputError, match="data file not found"):
        read_records(tmp_path / "missing.jsonl")
    with pytest.raises(RimInputError, match="no records"):
        read_records(write(tmp_path, "empty.jsonl", "\n"))


# --- malformed input names file and line --------------------------------------------------


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("a question without the separator #### 4", "expected exactly one '\\|\\|'"),
        ("q||<<1+1=2>> 2", "no '####'"),
        ("q||<<1+1=2>> #### ", "empty answer"),
        ("  ||<<1+1=2>> #### 2", "empty question"),
    ],
)
def test_malformed_icot_line_names_file_and_line(tmp_path, bad_line, message):
    path = write(tmp_path, "bad.txt", f"q||<<1+1=2>> #### 2\n\n{bad_line}\n")
    with pytest.raises(RimInputError, match=message) as info:
        read_records(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert info.value.source == str(path) and info.value.line == 3


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    good = json.dumps({"question": "q", "answer": "a"})
    path = write(tmp_path, "bad.jsonl", f"{good}\n{good}\n{{not json\n")
    with pytest.raises(RimInputError, match=r"bad.jsonl:3: malformed JSON"):
        read_records(path)
    path = write(tmp_path, "noanswer.jsonl", f'{good}\n{{"question": "q"}}\n')
    with pytest.raises(RimInputError, match=r"noanswer.jsonl:2: record has no 'answer'"):
        read_records(path)


def test_bad_record_in_json_list_names_file_and_index(tmp_path):
    rows = [{"question": "q", "answer": "a"}, {"question": "q", "answer": ""}]
    path = write(tmp_path, "bad.json", json.dumps(rows, indent=1))
    with pytest.raises(RimInputError, match=r"bad.json: record 1: field 'answer' is empty"):
        read_records(path)
    path = write(tmp_path, "syntax.json", '[\n {"question": "q", "answer": "a"},\n {"q" 1}\n]')
    with pytest.raises(RimInputError, match=r"syntax.json:3: malformed JSON"):
        read_records(path)


# --- evaluation layouts --------------------------------------------------------------------

GSM8K_ROW = {
    "question": "Janet has 3 apples and buys 2 more. How many?",
    "answer": "She has 3+2=<<3+2=5>>5 apples.\n#### 5",
}
GSMHARD_ROW = {"input": "Janet has 3000000 apples...", "code": "def solution(): ...", "target": 8.5}
SVAMP_ROW = {
    "ID": "chal-1",
    "Body": "Each pack has 6 bananas.",
    "Question": "How many bananas in 2 packs?",
    "Equation": "( 6.0 * 2.0 )",
    "Answer": 12.0,
    "Type": "Multiplication",
}
MULTIARITH_ROW = {
    "iIndex": 5,
    "sQuestion": " Tom had 4 cars and got 3 more. How many now?",
    "lEquations": ["X=(4.0+3.0)"],
    "lSolutions": [7.0],
}


@pytest.mark.parametrize(
    ("fmt", "row", "expected"),
    [
        (
            "gsm8k",
            GSM8K_ROW,
            Record(GSM8K_ROW["question"], ("She has 3+2=<<3+2=5>>5 apples.",), "5"),
        ),
        ("gsmhard", GSMHARD_ROW, Record("Janet has 3000000 apples...", (), "8.5")),
        (
            "svamp",
            SVAMP_ROW,
            Record("Each pack has 6 bananas. How many bananas in 2 packs?", (), "12"),
        ),
        (
            "multiarith",
            MULTIARITH_ROW,
            Record("Tom had 4 cars and got 3 more. How many now?", (), "7"),
        ),
    ],
)
def test_evaluation_layouts(tmp_path, fmt, row, expected):
    as_jsonl = write(tmp_path, f"{fmt}.jsonl", json.dumps(row) + "\n")
    as_list = write(tmp_path, f"{fmt}.json", json.dumps([row, row]))
    for path in (as_jsonl, as_list):
        assert read_records(path, format=fmt)[0] == expected
        assert read_records(path)[0] == expected  # layout recognised from the keys
    unused = set(row) - {"question", "answer", "input", "target", "Body", "Question", "Answer"}
    unused -= {"sQuestion", "lSolutions"}
    assert set(read_records(as_jsonl, format=fmt)[0].meta) == unused  # unused fields are kept


def test_evaluation_layout_errors_name_file_and_line(tmp_path):
    path = write(tmp_path, "g.jsonl", json.dumps(GSM8K_ROW) + "\n" + '{"question": "q", "answer": "7"}\n')
    with pytest.raises(RimInputError, match=r"g.jsonl:2: .*'#### n'"):
        read_records(path, format="gsm8k")
    path = write(tmp_path, "s.json", json.dumps([{**SVAMP_ROW, "Answer": "many"}]))
    assert read_records(path, format="svamp")[0].answer == "many"
    path = write(tmp_path, "m.jsonl", json.dumps({**MULTIARITH_ROW, "lSolutions": []}) + "\n")
    with pytest.raises(RimInputError, match=r"m.jsonl:1: field 'lSolutions' is an empty list"):
        read_records(path, format="multiarith")


# --- Hugging Face datasets -------------------------------------------------------------------


def test_hf_dataset_from_local_hub_layout_and_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    repo = tmp_path / "gsm8k-aug"
    (repo / "data").mkdir(parents=True)
    for split in ("train", "validation", "test"):
        table = datasets.Dataset.from_dict(
            {
                "question": [f"{split} q1", f"{split} q2"],
                "steps": [["<<1+1=2>>", "<<2*3=6>>"], []],
                "answer": ["6", "1,000"],
            }
        )
        table.to_parquet(str(repo / "data" / f"{split}-00000-of-00001.parquet"))
    cache = str(tmp_path / "cache")
    records = read_records(repo, split="validation", cache_dir=cache)
    assert records == [
        Record("validation q1", ("<<1+1=2>>", "<<2*3=6>>"), "6"),
        Record("validation q2", (), "1,000"),
    ]
    assert read_records(f"hf:{repo}", split="valid", cache_dir=cache)[0].question == "validation q1"
    with pytest.raises(RimInputError, match="no split 'dev2'"):
        read_records(repo, split="dev2", cache_dir=cache)

    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {"test": datasets.Dataset.from_dict({"question": ["q"], "answer": ["work\n#### 12"]})}
    ).save_to_disk(str(saved))
    assert read_records(saved, split="test") == [Record("q", ("work",), "12")]


def test_hf_without_datasets_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    (tmp_path / "train.jsonl").write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(RimInputError, match="optional 'datasets' package"):
        read_records(tmp_path)
    with pytest.raises(RimInputError, match="optional 'datasets' package"):
        read_records("whynlp/gsm8k-aug", format="hf")


def test_a_directory_without_a_dataset_is_one_line_not_a_hub_lookup(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing to read")
    with pytest.raises(RimInputError, match="holds no dataset"):
        read_records(tmp_path)


def test_hf_row_with_cot_string(tmp_path):
    row = {"question": "q", "cot": "<<1+1=2>> <<2+2=4>>", "answer": 4}
    path = write(tmp_path, "cot.jsonl", json.dumps(row) + "\n")
    assert read_records(path) == [Record("q", ("<<1+1=2>>", "<<2+2=4>>"), "4")]


# --- writers -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".txt"])
def test_write_then_read_round_trip(tmp_path, suffix):
    records = [
        Record("12 + 3?", ("<<12+3=15>>",), "15"),
        Record("Is it?", (), "True"),
    ]
    path = write_records(records, tmp_path / f"out{suffix}")
    assert read_records(path) == records
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}"]


def test_write_is_atomic_on_error(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RimInputError, match="cannot write question"):
        write_records([Record("a\nb", (), "1")], path)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with pytest.raises(RimInputError, match="output format"):
        write_records([Record("a", (), "1")], tmp_path / "out.csv")
    with pytest.raises(RimInputError, match="cannot write question"):
        write_records([Record("a\nb", (), "1")], tmp_path / "new" / "out.txt")
    assert not (tmp_path / "new").exists()  # nothing made when rendering fails
    with pytest.raises(RimInputError, match="not a directory"):
        write_records([Record("a", (), "1")], tmp_path / "out.txt" / "out.jsonl")
    assert read_records(write_records([Record("a", (), "1")], tmp_path / "x" / "y.jsonl"))


def test_byte_order_mark_and_crlf_line_ends_are_read(tmp_path):
    rows = [{"question": "1 + 1 ?", "steps": ["2"], "answer": "2"}, {"question": "q", "answer": "a"}]
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\r\n" for r in rows).encode())
    records = read_records(path)
    assert [r.question for r in records] == ["1 + 1 ?", "q"] and records[0].steps == ("2",)
