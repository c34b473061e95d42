"""Benchmarks on tiny settings: the structure of what they write, never their timings."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rim.bench.accuracy import load_sweep, run_sweep
from rim.bench.common import default_methods, load_settings
from rim.bench.latency import LatencySettings
from rim.bench.step import StepSettings, run_step
from rim.cli import main
from rim.common.errors import RimInputError
from rim.data.generators.lookup import generate_lookup
from rim.data.readers import read_records
from rim.data.stats import seen_fraction
from rim.methods import METHODS

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = {
    "scratch": {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2},
    "vocab_size": 48,
    "max_length": 96,
}

try:
    import matplotlib  # noqa: F401

    HAS_PLOT = True
except ImportError:
    HAS_PLOT = False


@pytest.fixture
def tiny_model(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({"model": TINY_MODEL}))
    return path


def written(out: Path, name: str) -> dict:
    assert (out / f"{name}.json").is_file() and (out / f"{name}.md").is_file()
    assert (out / f"{name}.png").is_file() == HAS_PLOT
    return json.loads((out / f"{name}.json").read_text())


# --- latency -----------------------------------------------------------------------------------


def test_latency_rows_per_method_and_batch(tiny_model, tmp_path):
    out = tmp_path / "latency"
    assert (
        main(
            [
                "bench",
                "latency",
                "--model",
                str(tiny_model),
                "--out",
                str(out),
                "--batches",
                "1",
                "3",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--question-tokens",
                "6",
                "--answer-tokens",
                "2",
                "--chain-tokens",
                "3",
                "--blocks",
                "2",
            ]
        )
        == 0
    )
    result = written(out, "latency")
    assert {"device", "rows", "model", "settings"} <= set(result)
    methods = default_methods()
    assert set(methods) == set(METHODS)
    assert [(r["method"], r["batch"]) for r in result["rows"]] == [(m, b) for b in (1, 3) for m in methods]
    for row in result["rows"]:
        for key in (
            "ttft_ms",
            "latency_ms",
            "answers_per_s",
            "forward_passes",
            "generated_tokens",
            "prompt_tokens",
        ):
            assert key in row, key
        cot = row["method"] == "cot"
        assert row["generated_tokens"] == (5 if cot else 2)
        if row["method"] in ("nocot", "cot", "pause", "rim"):
            assert row["forward_passes"] == row["generated_tokens"]
    rows = {r["method"]: r for r in result["rows"] if r["batch"] == 1}
    assert rows["rim"]["prompt_tokens"] == rows["nocot"]["prompt_tokens"] + 2 * 4
    if "coconut" in rows:  # c x L = 2 thoughts and `</b>`: the prefill's pass and one more
        assert rows["coconut"]["passes_without_token"] == 2
    assert "| rim |" in (out / "latency.md").read_text()


def saved_run(path: Path) -> Path:
    """A run's model directory as `rim train` writes it, with an untrained tiny model."""
    from helpers import tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    tiny_model("gpt2", tok).save_pretrained(path)
    tok.save_pretrained(path)
    (path / "rim.json").write_text(json.dumps({"method": "rim", "blocks": 3, "block_size": 2}))
    return path


def test_latency_on_a_trained_run(tmp_path):
    from rim.bench.latency import run_latency

    run = saved_run(tmp_path / "run")
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "3 +1 ?", "steps": [], "answer": "4"}) + "\n")
    settings = LatencySettings(
        run=str(run),
        data=str(data),
        methods=["nocot", "rim"],
        batches=[2],
        repeats=1,
        warmup=0,
        answer_tokens=1,
        chain_tokens=1,
    )
    result = run_latency(settings, tmp_path / "out")
    assert result["settings"]["blocks"] == 3  # the run's K
    assert [r["method"] for r in result["rows"]] == ["nocot", "rim"]


def test_bench_settings_files_are_valid():
    for path in sorted((REPO / "configs" / "bench").glob("latency-*.yaml")):
        settings = load_settings(LatencySettings, path, ("model", "run", "data"))
        assert Path(settings.model).is_file(), path
    for path in sorted((REPO / "configs" / "bench").glob("step-*.yaml")):
        load_settings(StepSettings, path, ("model",))
    for path in sorted((REPO / "configs" / "bench").glob("accuracy-*.yaml")):
        sweep = load_sweep(path)
        assert len(sweep.seeds) >= 3 and sweep.task is not None, path
    with pytest.raises(RimInputError, match="unknown config key"):
        from rim.bench.common import settings_from_dict

        settings_from_dict(LatencySettings, {"batch": [1]})


# --- step --------------------------------------------------------------------------------------


def test_step_rows_and_ratio(tiny_model, tmp_path):
    settings = StepSettings(model=str(tiny_model), batch_size=4, ops=2, blocks=2, repeats=1, warmup=0)
    result = run_step(settings, tmp_path / "step")
    assert written(tmp_path / "step", "step") == json.loads(json.dumps(result))
    assert [r["stage"] for r in result["rows"]] == ["stage1", "stage2"]
    for row in result["rows"]:
        assert row["tokens"] == row["batch"] * row["seq_len"] and row["batch"] == 4
        assert row["ratio"] == pytest.approx(row["rim_ms"] / row["sft_ms"])
        assert {"collate_ms", "ratio_with_collate", "meets_target"} <= set(row)
        if Path("/proc/self/clear_refs").exists():  # the step's peak memory, read on Linux
            assert row["rim_peak_mib"] >= 0 and row["sft_peak_mib"] >= 0
    assert result["target_ratio"] == 1.3


def test_step_times_no_cot_with_a_padded_vocabulary_before_and_after(tiny_model, tmp_path):
    results = {}
    for full in (False, True):
        settings = StepSettings(
            model=str(tiny_model),
            batch_size=4,
            ops=2,
            blocks=2,
            repeats=1,
            warmup=0,
            vocab_size=3000,
            nocot=True,
            full_logits=full,
        )
        results[full] = run_step(settings, tmp_path / f"step-{full}")
        assert [r["stage"] for r in results[full]["rows"]] == ["stage1", "stage2", "nocot"]
        assert results[full]["model"]["vocab_size"] == 3000
        assert results[full]["settings"]["full_logits"] is full
    for after, before in zip(results[False]["rows"], results[True]["rows"]):
        assert (after["batch"], after["seq_len"]) == (before["batch"], before["seq_len"])


# --- memory ------------------------------------------------------------------------------------


def test_memory_at_the_stage_switch_grows_by_the_kept_optimizer_only(tmp_path):
    """The real trainer in two processes: with the previous stage's AdamW kept alive, stage 2
    peaks about one AdamW state higher than with it released (8 bytes per parameter; on CPU
    the process's resident set, so to a loose tolerance)."""
    from rim.bench.memory import MemorySettings, run_memory

    model = tmp_path / "model.yaml"
    model.write_text(
        yaml.safe_dump(
            {
                "model": {
                    "scratch": {"model_type": "gpt2", "n_layer": 2, "n_embd": 512, "n_head": 4},
                    "vocab_size": 64,
                    "max_length": 64,
                }
            }
        )
    )
    result = run_memory(
        MemorySettings(model=str(model), steps=2, batch_size=4, blocks=2, threads=1), tmp_path / "memory"
    )
    assert written(tmp_path / "memory", "memory") == json.loads(json.dumps(result))
    released, kept = result["rows"]
    assert (released["variant"], kept["variant"]) == ("released", "kept")
    state = released["adam_state_mib"]
    assert state == kept["adam_state_mib"] > 40  # 8 bytes x ~6.3M parameters
    assert kept["switch_growth_mib"] > 0.7 * state
    assert released["switch_growth_mib"] < 0.3 * state
    assert kept["stage2_peak_mib"] - released["stage2_peak_mib"] > 0.7 * state


def test_runs_side_by_side_read_what_the_runs_wrote(tmp_path):
    """`rim bench runs`: per run and stage, examples/s from metrics.jsonl, the attention and
    packing from config.yaml; a directory that is not a run is named in one line."""
    from rim.bench.runs import compare_runs

    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": TINY_MODEL,
                "data": {"train": "gen:chain?n=32&seed=0&ops=2"},
                "method": {"name": "rim", "blocks": 2},
                "trainer": {
                    "batch_size": 8,
                    "threads": 1,
                    "log_every": 2,
                    "report_to": [],
                    "stage1": {"steps": 4},
                    "stage2": {"steps": 2},
                },
            }
        )
    )
    for name, extra in (("padded", []), ("packed", ["trainer.packing=true"])):
        assert main(["train", str(config), "--out", str(tmp_path / name), "--no-progress", *extra]) == 0
    result = compare_runs([tmp_path / "padded", tmp_path / "packed"], tmp_path / "cmp")
    assert written(tmp_path / "cmp", "runs") == json.loads(json.dumps(result))
    assert [(r["run"], r["stage"], r["packing"]) for r in result["rows"]] == [
        ("padded", "stage1", False),
        ("padded", "stage2", False),
        ("packed", "stage1", True),
        ("packed", "stage2", True),
    ]
    for row in result["rows"]:
        assert row["examples_per_s"] == pytest.approx(row["steps"] * 8 / row["seconds"])
    assert result["rows"][0]["steady_examples_per_s"] > 0  # stage 1 logged two windows
    assert all(r["max_memory_mib"] is None for r in result["rows"])  # CPU: not logged
    metrics = tmp_path / "padded" / "metrics.jsonl"  # as the trainer logs it on CUDA
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    for i, row in enumerate(rows):
        if "loss" in row:
            row["max_memory_mib"] = 100.0 + i
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    peaks = [r["max_memory_mib"] for r in compare_runs([tmp_path / "padded"], tmp_path / "m")["rows"]]
    assert peaks == [
        max(100.0 + i for i, r in enumerate(rows) if r.get("stage") == stage and "loss" in r)
        for stage in ("stage1", "stage2")
    ]
    assert main(["bench", "runs", str(tmp_path), "--out", str(tmp_path / "x")]) == 2


# --- accuracy ----------------------------------------------------------------------------------


def sweep_file(tmp_path: Path, methods, seeds, concurrent=1) -> Path:
    sweep = {
        "config": {
            "model": TINY_MODEL,
            "method": {"blocks": 2, "latent_stages": 1},
            "trainer": {
                "batch_size": 16,
                "log_every": 5,
                "threads": 1,
                "eval_batch_size": 32,
                "max_new_tokens": 8,
                "stage1": {"steps": 3},
                "stage2": {"steps": 3},
                "baseline": {"steps": 3},
                "coconut": {"steps": 3},
            },
        },
        "task": {
            "name": "lookup",
            "train": 48,
            "test": 8,
            "options": {"symbols": 4, "min_hops": 1, "max_hops": 2},
        },
        "methods": methods,
        "seeds": seeds,
        "concurrent": concurrent,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_accuracy_sweep_summarises_and_resumes(tmp_path, monkeypatch):
    import rim.training.run

    methods = {"nocot": {"trainer.baseline.steps": 6, "trainer.save_every": 4}, "rim": {}}
    out = tmp_path / "out"
    summary = run_sweep(load_sweep(sweep_file(tmp_path, methods, [0, 1, 2])), out)
    assert summary["finished_runs"] == 6 and summary["failed"] == []
    written(out, "accuracy")
    rows = {r["method"]: r for r in summary["rows"]}
    assert set(rows) == {"nocot", "rim"}
    for row in rows.values():
        assert row["seeds"] == 3 and len(row["seed_accuracies"]) == 3
        assert 0 <= row["accuracy"] <= 1 and row["stderr"] is not None
    assert rows["nocot"]["steps"] == 6 and rows["rim"]["steps"] == 6
    assert len(rows["rim"]["per_block"]) == 2 and rows["nocot"]["per_block"] is None
    assert rows["rim"]["digit_accuracy"] is None  # only with the digits checker
    assert all(0 <= row["unparsable"] <= 1 for row in rows.values())
    config = yaml.safe_load((out / "runs" / "rim" / "seed2" / "config.yaml").read_text())
    assert config["trainer"]["seed"] == 2 and config["method"]["name"] == "rim"

    # resume: finished runs are skipped; an interrupted one (no eval.json) continues from its
    # newest checkpoint, or is trained again from scratch without one
    stopped = out / "runs" / "nocot" / "seed1"  # as if stopped after step 4's checkpoint
    for path in (stopped / "eval.json", stopped / "model", *stopped.glob("checkpoints/step-*6")):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert [p.name for p in stopped.glob("checkpoints/step-*")] == ["step-00000004"]
    (out / "runs" / "rim" / "seed2" / "eval.json").unlink()  # finished, not evaluated: no checkpoint
    trained = []
    real = rim.training.run.run_training
    monkeypatch.setattr(
        rim.training.run,
        "run_training",
        lambda cfg, path, reporter=None, resume=False: (
            trained.append((path, resume)) or real(cfg, path, reporter, resume=resume)
        ),
    )
    summary = run_sweep(load_sweep(sweep_file(tmp_path, methods, [0, 1, 2])), out)
    assert trained == [(out / "runs" / "nocot" / "seed1", True), (out / "runs" / "rim" / "seed2", False)]
    assert summary["skipped"] == 4 and summary["finished_runs"] == 6
    assert (out / "runs" / "nocot" / "seed1" / "eval.json").is_file()

    # a run saved before a setting existed counts as trained with that setting's default
    saved = out / "runs" / "rim" / "seed0" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    del config["method"]["fade_end"]
    saved.write_text(yaml.safe_dump(config))
    assert run_sweep(load_sweep(sweep_file(tmp_path, methods, [0])), out)["skipped"] == 2

    # a finished run trained with another config is not silently mixed in
    changed = {"nocot": {"trainer.baseline.steps": 7, "trainer.save_every": 4}, "rim": {}}
    with pytest.raises(RimInputError, match=r"another config .*\(trainer\.baseline\.steps\)"):
        run_sweep(load_sweep(sweep_file(tmp_path, changed, [0])), out)


def test_accuracy_sweep_runs_concurrent_subprocesses(tmp_path):
    out = tmp_path / "out"
    assert (
        main(
            [
                "bench",
                "accuracy",
                str(sweep_file(tmp_path, ["pause"], [0, 1], concurrent=2)),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = written(out, "accuracy")
    assert summary["finished_runs"] == 2
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["pause-seed0.log", "pause-seed1.log"]


def test_sweep_task_generates_training_data_and_data_eval_names_the_test_file(tmp_path):
    from rim.data.generators.lookup import generate_lookup
    from rim.data.writers import write_records

    test = write_records(
        generate_lookup(5, 7, symbols=4, min_hops=1, max_hops=2), tmp_path / "given" / "test.jsonl"
    )
    path = sweep_file(tmp_path, ["nocot"], [0])
    raw = yaml.safe_load(path.read_text())
    raw["data"] = {"eval": "given/test.jsonl"}
    raw["config"]["data"] = {"checker": "digits"}  # per-digit credit is reported with it
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    summary = run_sweep(load_sweep(path), out)
    assert summary["data"] == {
        "eval": str(test.resolve()),
        "train": str((out / "data" / "train.jsonl").resolve()),
    }
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train.jsonl"]
    assert summary["eval_file"] == str(test.resolve())
    assert 0 <= summary["test_seen_in_train"] <= 1
    assert "Test questions also in the training data" in (out / "accuracy.md").read_text()
    assert "evaluated on" in (out / "accuracy.md").read_text()
    result = json.loads((out / "runs" / "nocot" / "seed0" / "eval.json").read_text())
    assert result["n"] == 5
    assert summary["rows"][0]["digit_accuracy"] == result["digit_accuracy"]
    del result["digit_accuracy"]  # a run evaluated before digit accuracy existed: from predictions
    (out / "runs" / "nocot" / "seed0" / "eval.json").write_text(json.dumps(result))
    again = run_sweep(load_sweep(path), out, train=False)
    assert again["rows"][0]["digit_accuracy"] == pytest.approx(summary["rows"][0]["digit_accuracy"])
    del raw["task"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RimInputError, match="needs at least 'train'"):
        load_sweep(path)


def test_disjoint_task_holds_the_test_questions_out_of_training(tmp_path):
    from rim.bench.sweep_data import sweep_data as _data

    path = sweep_file(tmp_path, ["nocot"], [0])  # lookup with 4 symbols: few distinct questions
    overlapping = _data(load_sweep(path), tmp_path / "a")
    raw = yaml.safe_load(path.read_text())
    raw["task"]["disjoint"] = True
    path.write_text(yaml.safe_dump(raw))
    disjoint = _data(load_sweep(path), tmp_path / "b")
    full, kept, test = (read_records(p) for p in (overlapping["train"], disjoint["train"], disjoint["eval"]))
    assert read_records(overlapping["eval"]) == test
    assert seen_fraction(test, full) > 0 and seen_fraction(test, kept) == 0
    held_out = {r.question for r in test}
    assert kept == [r for r in full if r.question not in held_out]


def test_stopping_a_sweep_stops_its_training_subprocesses(tmp_path):
    path = sweep_file(tmp_path, ["nocot"], [0, 1], concurrent=2)
    raw = yaml.safe_load(path.read_text())
    raw["config"]["trainer"]["baseline"]["steps"] = 100000  # runs that would not end by themselves
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "rim.cli", "bench", "accuracy", str(path), "--out", str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = []
    while len(pids) < 2:
        line = sweep.stdout.readline()
        assert line, "the sweep ended before starting its runs"
        pids += [int(p) for p in re.findall(r"\(pid (\d+)\)", line)]
    time.sleep(1)
    sweep.send_signal(signal.SIGTERM)  # what `timeout` sends
    sweep.communicate(timeout=60)  # reads what is left on stdout, so the pipe cannot block it
    assert sweep.returncode != 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (out / "runs" / "nocot" / "seed0" / "eval.json").exists()


def test_sweep_errors_name_the_problem(tmp_path):
    with pytest.raises(RimInputError, match="unknown method"):
        load_sweep(sweep_file(tmp_path, ["nope"], [0]))
    with pytest.raises(RimInputError, match="seeds"):
        load_sweep(sweep_file(tmp_path, ["rim"], []))


# --- the lookup task ---------------------------------------------------------------------------


def test_lookup_records_follow_the_map():
    records = generate_lookup(200, seed=3)
    assert records == generate_lookup(200, seed=3)
    for r in records:
        table, query = r.question.split(" | ")
        pairs = [tuple(p.split(">")) for p in table.replace(" > ", ">").split(" ")]
        assert [k for k, _ in pairs] == list("abcdefghij")  # fixed key order
        mapping = dict(pairs)
        assert sorted(mapping.values()) == list("abcdefghij")
        assert all(k != v for k, v in mapping.items())
        start, hops = query.split()
        assert 2 <= int(hops) <= 4 and len(r.steps) == int(hops)
        x = start
        for step in r.steps:
            x = mapping[x]
            assert step == x
        assert r.answer == r.steps[-1]


def test_lookup_variants():
    shuffled = generate_lookup(20, seed=0, order="shuffled")
    assert any(not r.question.startswith("a > ") for r in shuffled)
    learned = generate_lookup(50, seed=0, table="learned", symbols=5, min_hops=1, max_hops=1)
    answers = {}
    for r in learned:
        assert len(r.question.split()) == 2
        answers.setdefault(r.question, r.answer)
        assert answers[r.question] == r.answer  # one map for every example
    with pytest.raises(RimInputError):
        generate_lookup(5, seed=0, min_hops=3, max_hops=2)


def test_step_times_the_packed_layout_on_records_of_a_file(tiny_model, tmp_path):
    data = tmp_path / "records.jsonl"
    data.write_text(
        "".join(
            json.dumps(r.to_dict()) + "\n" for r in generate_lookup(12, 0, symbols=4, min_hops=1, max_hops=3)
        )
    )
    settings = StepSettings(
        model=str(tiny_model), batch_size=8, blocks=2, repeats=1, warmup=0, data=str(data), pack_length=96
    )
    result = run_step(settings, tmp_path / "step")
    for row in result["rows"]:
        assert row["packed_rows"] < row["batch"] and row["packed_len"] <= 96
        assert row["packing_speedup"] == pytest.approx(row["rim_ms"] / row["packed_ms"])


def test_smoke_sweep_file_is_valid():
    sweep = load_sweep(REPO / "configs" / "bench" / "smoke-lookup.yaml")
    assert set(sweep.methods) == set(METHODS) and sweep.seeds == [0]


def test_a_stopped_run_stops_an_in_process_sweep(tmp_path, monkeypatch):
    import rim.training.run
    from rim.common.errors import RimStopped
    from rim.config import config_from_dict
    from rim.training.jobs import Job, run_jobs

    def stopped(cfg, path, reporter=None, resume=False):
        raise RimStopped("SIGINT: stopped", code=130)

    monkeypatch.setattr(rim.training.run, "run_training", stopped)
    jobs = [Job(f"j{i}", config_from_dict({}), tmp_path / f"j{i}") for i in range(2)]
    with pytest.raises(RimStopped):
        run_jobs(jobs, tmp_path)
    assert not (tmp_path / "logs").exists()  # not recorded as a failed run, and j1 never ran


def test_latency_on_a_short_context_run_fits_its_default_lengths(tmp_path):
    """A trained run's context (here 64 positions) holds the default question and chain cut to
    fit; a length given explicitly is kept, and one that does not fit names the flags."""
    from helpers import ARCHS, tiny_tokenizer

    from rim.bench.latency import run_latency
    from rim.models.modeling import build_model

    run = tmp_path / "run"
    tok = tiny_tokenizer()
    build_model(ARCHS["gpt2"], tok, max_length=64).save_pretrained(run)
    tok.save_pretrained(run)
    (run / "rim.json").write_text(json.dumps({"method": "rim", "blocks": 3, "block_size": 2}))
    quick = {"run": str(run), "methods": ["nocot", "cot", "rim"], "batches": [1], "repeats": 1, "warmup": 0}
    result = run_latency(LatencySettings(**quick), tmp_path / "out")
    s = result["settings"]
    assert s["question_tokens"] + 3 * 4 + s["answer_tokens"] + 1 <= 64  # RiM's prompt fits
    assert 1 <= s["chain_tokens"] < 25 and {r["method"] for r in result["rows"]} == {"nocot", "cot", "rim"}
    cot = next(r for r in result["rows"] if r["method"] == "cot")
    assert cot["prompt_tokens"] + s["chain_tokens"] + s["answer_tokens"] <= 64
    with pytest.raises(
        RimInputError, match="cot needs .* context of 64: pass shorter --question-tokens, --chain-tokens"
    ):
        run_latency(LatencySettings(**quick, chain_tokens=60), tmp_path / "out2")
