"""Selection apart from the test: `data.eval` is the validation split (evaluated during training,
selects with `trainer.select: best`), `data.test` the test split, scored once on the final model;
the selection rule as one setting a comparison sets for every method; a generated test split
disjoint from training and validation; the start of a run from another run's model; epochs of
`ceil(n / batch)` steps."""

import json

import pytest
import torch
from helpers import write_jsonl

import rim.training.run
import rim.training.validation
from rim.common.errors import RimInputError
from rim.common.progress import Reporter
from rim.config import config_from_dict
from rim.data.generators.chain import generate_chain
from rim.data.generators.prontoqa import generate_prontoqa
from rim.data.sources import load_records
from rim.training.run import run_training

TINY = {
    "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
    "vocab_size": 48,
    "max_length": 64,
}


@pytest.fixture
def splits(tmp_path):
    """Training, validation and test files; the test questions are in neither of the others."""
    train = [r.to_dict() for r in generate_chain(64, 0, ops=2)]
    valid = [r.to_dict() for r in generate_chain(8, 1, ops=2)]
    seen = {r["question"] for r in train + valid}
    test = [r.to_dict() for r in generate_chain(40, 2, ops=2) if r.question not in seen][:6]
    assert len(test) == 6
    return {
        "train": str(write_jsonl(tmp_path / "train.jsonl", train)),
        "eval": str(write_jsonl(tmp_path / "valid.jsonl", valid)),
        "test": str(write_jsonl(tmp_path / "test.jsonl", test)),
    }


def test_selection_reads_validation_and_the_test_is_scored_once_at_the_end(splits, tmp_path, monkeypatch):
    test_questions = {r.question for r in load_records(splits["test"])}
    events = []  # what was evaluated, in order, and whether training had ended
    real_train, real_evaluate = rim.training.run.train, rim.training.run.evaluate

    def training(*args, **kwargs):
        events.append("train")
        final = real_train(*args, **kwargs)
        events.append("trained")
        return final

    def during_training(run, records, *args, **kwargs):
        if test_questions & {r.question for r in records}:
            raise AssertionError("the test split was evaluated during training")
        events.append("validate")
        return real_evaluate(run, records, *args, **kwargs)

    def at_the_end(run, records, *args, **kwargs):
        events.append("test" if records[0].question in test_questions else "valid")
        return real_evaluate(run, records, *args, **kwargs)

    monkeypatch.setattr(rim.training.run, "train", training)
    monkeypatch.setattr(rim.training.validation, "evaluate", during_training)
    monkeypatch.setattr(rim.training.run, "evaluate", at_the_end)
    cfg = config_from_dict(
        {
            "model": TINY,
            "data": splits,
            "method": {"name": "nocot"},
            "trainer": {
                "batch_size": 16,
                "report_to": [],
                "eval_every": 2,
                "select": "best",
                "baseline": {"steps": 6, "lr": 3e-3},
            },
        }
    )
    result = run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    assert events == ["train", "validate", "validate", "validate", "trained", "valid", "test"]
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert saved["valid"]["n"] == 8 and saved["test"]["n"] == 6  # the splits, apart
    # the top-level keys, which one-number readers take, are the test split's
    assert saved["reported"] == "test" and saved["accuracy"] == saved["test"]["accuracy"]
    assert "correct" not in saved["test"] and len(result["test"]["correct"]) == 6
    # the model kept is the best on validation: scored again on it, it gives that accuracy
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("event") == "eval"]
    assert saved["valid"]["accuracy"] == max(r["accuracy"] for r in evals)


def test_select_last_keeps_the_last_model_and_no_test_reports_validation(splits, tmp_path):
    data = {k: v for k, v in splits.items() if k != "test"}
    cfg = config_from_dict(
        {
            "model": TINY,
            "data": data,
            "method": {"name": "nocot"},
            "trainer": {
                "batch_size": 16,
                "report_to": [],
                "eval_every": 2,
                "baseline": {"steps": 4, "lr": 3e-3},
            },
        }
    )
    assert cfg.trainer.select == "last"
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert saved["reported"] == "valid" and "test" not in saved
    assert saved["accuracy"] == saved["valid"]["accuracy"]
    assert not (tmp_path / "run" / "checkpoints" / "best").exists()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if r.get("event") == "eval"][-1]
    assert saved["valid"]["accuracy"] == last["accuracy"]


def test_old_selection_and_split_keys_are_refused_with_their_new_names():
    with pytest.raises(RimInputError, match="set trainer.select to best"):
        config_from_dict({"trainer": {"keep_best": True, "eval_every": 1}})
    with pytest.raises(RimInputError, match="data.eval is the validation split"):
        config_from_dict({"data": {"train": "t", "valid": "v"}})
    with pytest.raises(RimInputError, match="needs trainer.eval_every"):
        config_from_dict({"trainer": {"select": "best"}})


def test_a_sweep_sets_one_selection_rule_for_every_method():
    from rim.bench.sweep import SweepFile, make_sweep

    base = {"model": TINY, "trainer": {"batch_size": 4}}
    methods = {
        "nocot": {"trainer.select": "best", "trainer.eval_every": 3},
        "rim": {"trainer.select": "last"},
    }
    data = {"train": "t", "eval": "v", "test": "x"}
    for select, every in (("last", {"nocot": 3, "rim": None}), ("best", {"nocot": 3, "rim": "epoch"})):
        sweep = make_sweep(base, SweepFile(methods=methods, select=select), data, "<sweep>")
        for method in methods:
            cfg = sweep.run_config(method, 0, data)
            assert cfg.trainer.select == select and cfg.trainer.eval_every == every[method]
            assert (cfg.data.eval, cfg.data.test) == ("v", "x")
    own = make_sweep(base, SweepFile(methods=methods), data, "<sweep>")
    assert [own.run_config(m, 0, data).trainer.select for m in methods] == ["best", "last"]


def test_a_generated_test_split_holds_out_the_questions_of_other_files(tmp_path):
    overlap = generate_prontoqa(30, 2)
    # training and validation files that share questions with seed 2's first records
    train = write_jsonl(
        tmp_path / "train.jsonl", [r.to_dict() for r in generate_prontoqa(20, 0) + overlap[:5]]
    )
    valid = write_jsonl(
        tmp_path / "valid.jsonl", [r.to_dict() for r in generate_prontoqa(10, 1) + overlap[7:9]]
    )
    source = f"gen:prontoqa?n=30&seed=2&exclude=[{train},{valid}]"
    test = load_records(source)
    held = {r.question for r in load_records(train) + load_records(valid)}
    assert len(test) == 30 and not held & {r.question for r in test}
    assert len({r.question for r in test}) == 30
    assert [r.question for r in test] == [r.question for r in load_records(source)]  # seeded
    # without the files, seed 2 would have given those questions
    assert held & {r.question for r in load_records("gen:prontoqa?n=30&seed=2")}
    one = load_records(f"gen:prontoqa?n=3&seed=2&exclude={train}")
    assert [r.question for r in one] == [r.question for r in overlap[5:8]]


def test_epochs_count_the_incomplete_last_batch(tmp_path, monkeypatch):
    from rim.methods import SpecialIds, make_method
    from rim.methods.settings import NoCoTConfig
    from rim.methods.sft import NoCoT
    from rim.training.schedule import plan_stages

    cfg = config_from_dict(
        {"method": {"name": "nocot"}, "trainer": {"batch_size": 16, "baseline": {"epochs": 2}}}
    )
    (plan,) = plan_stages(cfg, make_method(NoCoTConfig(), SpecialIds(0, 1, 2, 3, 4)), 40)
    assert (plan.steps_per_epoch, plan.steps) == (3, 6)  # ceil(40 / 16) = 3 per epoch
    seen = []
    real = NoCoT.collate

    def counting(self, batch, *args, **kwargs):
        seen.append(len(batch))
        return real(self, batch, *args, **kwargs)

    monkeypatch.setattr(NoCoT, "collate", counting)
    rows = [r.to_dict() for r in generate_chain(40, 0, ops=2)]
    data = {"train": str(write_jsonl(tmp_path / "train.jsonl", rows))}
    cfg = config_from_dict(
        {
            "model": TINY,
            "data": data,
            "method": {"name": "nocot"},
            "trainer": {"batch_size": 16, "report_to": [], "baseline": {"epochs": 2}},
        }
    )
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    assert seen == [16, 16, 8, 16, 16, 8]  # every example, every epoch


def test_a_run_started_from_another_run_gets_its_own_token_init(tmp_path):
    from rim.models.modeling import special_ids
    from rim.training.prepare import prepare

    rows = [r.to_dict() for r in generate_chain(32, 0, ops=2)]
    data = {"train": str(write_jsonl(tmp_path / "train.jsonl", rows))}
    cot = config_from_dict(
        {
            "model": TINY,
            "data": data,
            "method": {"name": "cot"},
            "trainer": {"batch_size": 16, "report_to": [], "baseline": {"steps": 1}},
        }
    )
    run_training(cot, tmp_path / "cot", Reporter(enabled=False))
    for init in ("5", "mean"):
        cfg = config_from_dict(
            {
                "model": {"init_from": str(tmp_path / "cot"), "new_token_init": init},
                "data": data,
                "method": {"name": "coconut"},
                "trainer": {"report_to": []},
            }
        )
        prep = prepare(cfg)
        emb = prep.model.get_input_embeddings().weight
        ids = special_ids(prep.tok)
        source = prep.tok("5", add_special_tokens=False).input_ids
        rows_equal = [torch.equal(emb[i], emb[source[0]]) for i in (ids.open, ids.memory, ids.close)]
        assert rows_equal == ([True] * 3 if init == "5" else [False] * 3)
