"""The Python API (`rim.RiMTrainer`, `rim.RiMConfig`, `rim.load`) on tiny models: the README's
example, a TRL-style script with a `datasets.Dataset` and a `peft.LoraConfig` for RiM and a
baseline, `transformers.TrainerCallback` events, resume from Python equal to resume from the
CLI, and the one-line errors of files for a dataset's missing column or bad value."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from datasets import Dataset
from helpers import ARCHS, write_jsonl
from peft import LoraConfig
from safetensors.torch import load_file
from transformers import TrainerCallback, TrainingArguments

import rim
from rim.cli import main
from rim.data.generators.chain import generate_chain
from rim.data.memory import records_in
from rim.data.readers import read_records
from rim.models.modeling import build_model, scratch_tokenizer

SMALL = {
    "model": {
        "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
        "vocab_size": 48,
        "max_length": 64,
    },
    "trainer": {
        "batch_size": 8,
        "log_every": 1,
        "threads": 1,
        "report_to": [],
        "eval_batch_size": 16,
        "stage1": {"steps": 4, "lr": 3e-3},
        "stage2": {"steps": 2, "lr": 1e-3},
        "baseline": {"steps": 4, "lr": 3e-3},
    },
}


def rows(n=48, seed=0):
    return [r.to_dict() for r in generate_chain(n, seed, ops=2)]


@pytest.fixture(scope="module")
def tiny_pretrained(tmp_path_factory):
    """A tiny GPT-2 with its tokenizer saved like a hub model (the stand-in for gpt2)."""
    out = tmp_path_factory.mktemp("pretrained") / "tiny-gpt2"
    texts = [t for r in rows(200) for t in (r["question"], *r["steps"], r["answer"])]
    tok = scratch_tokenizer(texts, vocab_size=48)
    torch.manual_seed(0)
    build_model(ARCHS["gpt2"], tok, max_length=64).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_the_readme_example_trains_evaluates_per_block_saves_and_exports(tiny_pretrained, tmp_path):
    ds, valid = Dataset.from_list(rows()), rows(16, seed=1)
    trainer = rim.RiMTrainer(
        model=str(tiny_pretrained),
        args=rim.RiMConfig(
            output_dir=str(tmp_path / "run"), blocks=2, block_size=2, disable_tqdm=True, **SMALL["trainer"]
        ),
        train_dataset=ds,
        eval_dataset=valid,
        peft_config=LoraConfig(r=4, target_modules="all-linear"),
    )
    out = trainer.train()
    assert out.global_step == 6 and out.training_loss > 0
    assert out.metrics["eval_n"] == 16 and len(out.metrics["eval_per_block"]) == 2
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] == out.metrics["eval_accuracy"]
    assert len(metrics["eval_per_block"]) == 2 and "eval_predictions" not in metrics
    assert trainer.save_model() == tmp_path / "run" / "model"
    exported = trainer.export(tmp_path / "exported")
    answers = rim.load(exported, device="cpu").answer([r["question"] for r in valid[:3]])
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    per_block = rim.load(tmp_path / "run").answer(valid[0]["question"], every_block=True)
    assert len(per_block) == 2
    saved = json.loads(
        json.dumps(__import__("yaml").safe_load((tmp_path / "run" / "config.yaml").read_text()))
    )
    assert saved["model"]["name_or_path"] == str(tiny_pretrained)
    assert saved["model"]["lora"]["r"] == 4
    assert saved["data"]["train"].startswith("python:train_dataset (48 records, sha256 ")


@pytest.mark.parametrize("method", ["rim", "nocot"])
def test_a_trl_style_script_trains_with_a_dataset_and_lora(tiny_pretrained, tmp_path, method):
    renamed = [{"problem": r["question"], "rationale": r["steps"], "solution": r["answer"]} for r in rows()]
    train = Dataset.from_list(renamed)
    model = __import__("transformers").AutoModelForCausalLM.from_pretrained(tiny_pretrained)
    args = rim.RiMConfig(
        output_dir=str(tmp_path / method),
        method=method,
        question_field="problem",
        steps_field="rationale",
        answer_field="solution",
        disable_tqdm=True,
        **SMALL["trainer"],
    )
    trainer = rim.RiMTrainer(
        model=model,
        args=args,
        train_dataset=train,
        processing_class=__import__("transformers").AutoTokenizer.from_pretrained(tiny_pretrained),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"),
    )
    trainer.train()
    info = json.loads((tmp_path / method / "model" / "rim.json").read_text())
    assert info["method"]["name"] == method
    losses = [
        json.loads(line)["loss"]
        for line in (tmp_path / method / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    assert len(losses) == 4 if method == "nocot" else 6
    answer = rim.load(tmp_path / method).answer(renamed[0]["problem"])
    assert isinstance(answer, str)


class Recorder(TrainerCallback):
    def __init__(self):
        self.events = []

    def _note(self, name, args, state, **kwargs):
        assert isinstance(args, TrainingArguments)
        self.events.append(
            (name, state.global_step, round(state.epoch or 0, 3), len(state.log_history), kwargs)
        )

    def on_init_end(self, args, state, control, **kwargs):
        self._note("init_end", args, state)

    def on_train_begin(self, args, state, control, **kwargs):
        self._note("train_begin", args, state, max_steps=state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._note("log", args, state, logs=logs)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._note("evaluate", args, state, metrics=metrics)

    def on_save(self, args, state, control, **kwargs):
        self._note("save", args, state)

    def on_train_end(self, args, state, control, **kwargs):
        self._note("train_end", args, state)


def test_a_trainer_callback_receives_the_loops_events(tmp_path):
    recorder = Recorder()
    args = rim.RiMConfig(
        output_dir=str(tmp_path / "run"),
        blocks=2,
        disable_tqdm=True,
        model=SMALL["model"],
        **{**SMALL["trainer"], "save_every": 3, "eval_every": 4},
    )
    trainer = rim.RiMTrainer(
        args=args, train_dataset=rows(), eval_dataset=rows(8, seed=1), callbacks=[recorder]
    )
    trainer.train()
    names = [e[0] for e in recorder.events]
    assert names[:2] == ["init_end", "train_begin"] and recorder.events[1][4]["max_steps"] == 6
    assert names.index("train_end") > max(i for i, n in enumerate(names) if n == "save")
    steps = [(e[1], e[4]["logs"]) for e in recorder.events if e[0] == "log" and "loss" in e[4]["logs"]]
    assert [s for s, _ in steps] == [1, 2, 3, 4, 5, 6]
    assert all({"loss", "learning_rate", "epoch"} <= logs.keys() for _, logs in steps)
    assert [e[1] for e in recorder.events if e[0] == "save"] == [3, 6]
    evaluations = [e for e in recorder.events if e[0] == "evaluate"]
    assert [e[1] for e in evaluations] == [4, 6, 6]  # eval_every 4 (stage 1 ends), stage 2 ends, final
    assert "eval_accuracy" in evaluations[-1][4]["metrics"]
    assert trainer.state.global_step == 6 and len(trainer.state.log_history) >= 6


class StopAfter(TrainerCallback):
    """Raises once the checkpoint of `step` is written: a run killed there."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def step_losses(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [(r["stage"], r["step"], r["loss"]) for r in map(json.loads, lines) if "loss" in r]


def test_resume_from_python_equals_resume_from_the_cli(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", rows(64))
    config = {
        **SMALL,
        "data": {"train": str(tmp_path / "train.jsonl")},
        "method": {"name": "rim", "blocks": 2},
        "trainer": {
            **SMALL["trainer"],
            "save_every": 1,
            "keep_last": 2,
            "stage1": {"steps": 4, "lr": 3e-3, "dropout": 0.1},
        },
    }
    (tmp_path / "run.yaml").write_text(json.dumps(config))
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "whole")]) == 0

    def trainer(out, callbacks=()):
        args = rim.RiMConfig(
            output_dir=str(out), disable_tqdm=True, **{k: v for k, v in config.items() if k != "data"}
        )
        return rim.RiMTrainer(args=args, train_dataset=config["data"]["train"], callbacks=list(callbacks))

    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path / "python", [StopAfter(3)]).train()
    shutil.copytree(tmp_path / "python", tmp_path / "cli")
    trainer(tmp_path / "python").train(resume_from_checkpoint=True)
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "cli"), "--resume"]) == 0
    reference = step_losses(tmp_path / "whole")
    assert step_losses(tmp_path / "python") == reference == step_losses(tmp_path / "cli")
    whole = load_file(str(tmp_path / "whole" / "model" / "model.safetensors"))
    for name in ("python", "cli"):
        resumed = load_file(str(tmp_path / name / "model" / "model.safetensors"))
        assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_missing_column_or_a_bad_value_is_the_one_line_error_of_a_file(tmp_path, capsys):
    good = rows(4)
    data = Dataset.from_list([{"question": r["question"], "answer": r["answer"]} for r in good])
    args = rim.RiMConfig(output_dir=str(tmp_path / "run"), question_field="problem")
    with pytest.raises(rim.RimInputError) as err:
        rim.RiMTrainer(args=args, train_dataset=data)
    assert str(err.value) == "train_dataset: record 0: record has no 'problem' field"
    (tmp_path / "rows.json").write_text(json.dumps(list(data)))
    with pytest.raises(rim.RimInputError) as from_file:
        read_records(tmp_path / "rows.json", fields=("problem", "steps", "answer"))
    assert str(from_file.value) == f"{tmp_path / 'rows.json'}: record 0: record has no 'problem' field"

    write_jsonl(tmp_path / "rows.jsonl", list(data))  # the CLI: the same setting, one line
    (tmp_path / "run.yaml").write_text(
        json.dumps({**SMALL, "data": {"train": str(tmp_path / "rows.jsonl"), "question_field": "problem"}})
    )
    assert main(["train", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "cli")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"{tmp_path / 'rows.jsonl'}:1: record has no 'problem' field")
    )

    records, label = records_in(data.to_iterable_dataset(), "train_dataset")  # streamed rows
    assert [r.question for r in records] == [r["question"] for r in good]
    assert label.startswith("python:train_dataset (4 records, sha256 ")

    bad = [*good[:2], {**good[2], "steps": "not a list"}]
    with pytest.raises(rim.RimInputError) as err:
        rim.RiMTrainer(args=rim.RiMConfig(output_dir=str(tmp_path / "run")), train_dataset=bad)
    assert str(err.value) == "train_dataset: record 2: field 'steps' must be a list of strings"
    assert "\n" not in str(err.value) and not (tmp_path / "run").exists()


def test_import_rim_and_its_config_stay_light_and_flat_keys_find_their_sections():
    probe = (
        "import sys, rim; args = rim.RiMConfig(output_dir='x', method='pause', blocks=3, "
        "batch_size=4, question_field='problem', stage1={'steps': 2}); "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'datasets') "
        "if m in sys.modules), args.method.blocks, args.trainer.batch_size, "
        "args.data.question_field, args.trainer.stage1.steps, sorted(rim.__all__) == rim.__all__)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["[]", "3", "4", "problem", "2", "True"], proc.stderr
    with pytest.raises(
        rim.RimInputError,
        match=r"^RiMConfig: unknown setting 'blocks' \(not a "
        r"setting of model, data, trainer or method nocot\)$",
    ):
        rim.RiMConfig(output_dir="x", method="nocot", blocks=2)
    with pytest.raises(
        rim.RimInputError, match=r"^RiMConfig: field 'trainer.batch_size' must be at least 1, got 0$"
    ):
        rim.RiMConfig(output_dir="x", batch_size=0)
    assert rim.RiMConfig.model_fields["output_dir"].description.startswith("The run directory")
