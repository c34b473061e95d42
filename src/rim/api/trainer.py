"""The Python API in TRL's shape: `RiMTrainer(model, args=RiMConfig(...), train_dataset=...)`.

It drives the loop `rim train` runs (`rim.training.run.run_training` -> `rim.training.prepare`
-> `rim.training.train`): the same run directory, checkpoints, exact resume, evaluation while
training, packing and processes; what the caller already holds (a model instance, a tokenizer,
a `peft.LoraConfig`, a `datasets.Dataset`) goes in through `rim.training.prepare.PreparedInputs`
instead of being read.
Every method trains through it: `RiMConfig(method="nocot")`, `"cot"`, `"pause"`, `"coconut"`.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from transformers.trainer_utils import TrainOutput

from rim.api.config import RiMConfig
from rim.common.errors import RimInputError
from rim.common.rundir_lock import is_empty_run_dir
from rim.config import Config, config_from_dict
from rim.data.memory import records_in
from rim.data.records import Record
from rim.data.sources import load_records
from rim.inference.evaluate import evaluate
from rim.inference.infer import LoadedRun, load_run
from rim.models.modeling import DTYPES
from rim.training.callbacks import (
    CallbackReporter,
    check_callbacks,
    eval_metrics,
    final_metrics,
    training_arguments,
)
from rim.training.prepare import PreparedInputs
from rim.training.run import run_training


class RiMTrainer:
    """Train a causal LM with RiM (or a baseline) on data already in memory or on disk.

    `model`: a hub name or local directory, a `PreTrainedModel` (trained in place), a
    `peft.PeftModel` whose tokenizer already has the block tokens, or None to build the scratch
    model of `args.model.scratch`. `train_dataset` / `eval_dataset`: a `datasets.Dataset` or
    `IterableDataset`, a list of dicts or `Record`s, a file path, or a `gen:` / `hf:` source;
    their columns are `args.data.question_field`, `steps_field`, `answer_field`.
    `processing_class`: the tokenizer (default: the model's). `peft_config`: a
    `peft.LoraConfig` (the block tokens' embedding rows train as well). `callbacks`:
    `transformers.TrainerCallback`s (see `rim.training.callbacks` for the events).
    """

    def __init__(
        self,
        model: str | PreTrainedModel | None = None,
        args: RiMConfig | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        peft_config: Any = None,
        callbacks: Sequence[TrainerCallback] | None = None,
    ) -> None:
        if args is None:
            name = model if isinstance(model, str) else "rim"
            args = RiMConfig(output_dir=f"{name.rstrip('/').split('/')[-1]}-RiM")
        if not isinstance(args, RiMConfig):
            raise RimInputError(f"args must be a rim.RiMConfig, got {type(args).__name__}", source="args")
        if train_dataset is None and not args.data.train:
            raise RimInputError("train_dataset is required", source="RiMTrainer")
        self.args, self.model, self.processing_class = args, model, processing_class
        self.output_dir = Path(args.output_dir)
        raw = args.to_config().to_dict()
        fields = args.data.fields()
        train, evals = None, None
        if train_dataset is not None:  # else args.data.train, as in a config file
            train, raw["data"]["train"] = records_in(train_dataset, "train_dataset", fields)
        if eval_dataset is not None:
            evals, raw["data"]["eval"] = records_in(eval_dataset, "eval_dataset", fields)
        if isinstance(model, str):
            raw["model"]["name_or_path"] = model
        elif isinstance(model, PreTrainedModel) or hasattr(model, "peft_config"):
            raw["model"].update(_describe_model(model))
        elif model is not None:
            raise RimInputError(
                "must be a hub name or directory, a transformers "
                f"PreTrainedModel or a peft PeftModel, got {type(model).__name__}",
                source="model",
            )
        if peft_config is not None:
            if hasattr(model, "peft_config"):
                raise RimInputError(
                    "the model has adapters already (a PeftModel): pass its base "
                    "model with peft_config, or no peft_config",
                    source="peft_config",
                )
            raw["model"]["lora"] = _describe_lora(peft_config)
        self.cfg: Config = config_from_dict(raw, source="RiMTrainer")
        self.inputs = PreparedInputs(
            model=None if model is None or isinstance(model, str) else model,
            tokenizer=processing_class,
            peft_config=peft_config,
            train=train,
            eval=evals,
        )
        self.callbacks = check_callbacks(callbacks or [])
        self.events = CallbackReporter(
            self.callbacks,
            training_arguments(self.cfg, self.output_dir),
            self.output_dir / "metrics.jsonl",
            enabled=not args.disable_tqdm,
        )
        self.state = self.events.state
        self._loaded: LoadedRun | None = None
        self.events.fire("on_init_end")

    @property
    def model_dir(self) -> Path:
        """Where the trained model is (`output_dir/model`)."""
        return self.output_dir / "model"

    def train(self, resume_from_checkpoint: bool | str | None = None) -> TrainOutput:
        """Train through every stage of the method (`rim train`); with `resume_from_checkpoint`
        (True, or `output_dir`), continue `output_dir` from its newest checkpoint exactly, as
        `rim train --resume`. Scores the final model on `eval_dataset` (`eval_*` metrics)
        and on `args.data.test` (`test_*`), if given."""
        resume = bool(resume_from_checkpoint)
        if isinstance(resume_from_checkpoint, str) and Path(resume_from_checkpoint).resolve() not in (
            self.output_dir.resolve(),
            *self.output_dir.resolve().parents,
        ):
            raise RimInputError(
                "rim resumes the newest checkpoint of output_dir: pass True", source="resume_from_checkpoint"
            )
        self._loaded = None
        result = run_training(self.cfg, self.output_dir, self.events, resume=resume, inputs=self.inputs)
        metrics = final_metrics(result) if result else {}
        if metrics:
            self.events.evaluated(metrics)
        losses = [row["loss"] for row in self.state.log_history if "loss" in row]
        return TrainOutput(self.state.global_step, sum(losses) / max(len(losses), 1), metrics)

    def evaluate(self, eval_dataset: Any = None, metric_key_prefix: str = "eval") -> dict:
        """Accuracy of the trained model after its last block and after every block (`rim
        eval`): `eval_accuracy`, `eval_per_block`, `eval_any_block_accuracy`, latency...; on
        `eval_dataset`, else the trainer's."""
        records = self._eval_records(eval_dataset)
        if self._loaded is None:
            self._loaded = self.load()
        result = evaluate(
            self._loaded, records, self.cfg.data.checker, batch_size=self.cfg.trainer.eval_batch_size
        )
        metrics = eval_metrics(result, metric_key_prefix)
        self.events.evaluated(metrics)
        return metrics

    def load(self, device: str | None = None) -> LoadedRun:
        """The trained model, ready to answer (`rim.load` of `output_dir`)."""
        if not (self.model_dir / "rim.json").is_file():
            raise RimInputError("no trained model yet: call train() first", source=str(self.output_dir))
        return load_run(self.output_dir, device)

    def save_model(self, output_dir: str | Path | None = None) -> Path:
        """The trained model's directory (LoRA merged, tokenizer, rim.json): `output_dir/model`,
        or a copy of it in `output_dir`."""
        if not (self.model_dir / "rim.json").is_file():
            raise RimInputError("no trained model yet: call train() first", source=str(self.output_dir))
        if output_dir is None or Path(output_dir).resolve() == self.model_dir.resolve():
            return self.model_dir
        out = Path(output_dir)
        if out.exists() and not is_empty_run_dir(out):
            raise RimInputError("exists and is not an empty directory", source=str(out))
        shutil.copytree(self.model_dir, out, dirs_exist_ok=True)
        return out

    def export(self, out: str | Path) -> Path:
        """A model directory that plain transformers or any engine serves (`rim export`)."""
        from rim.inference.export import export

        return export(self.output_dir, out)

    def _eval_records(self, eval_dataset: Any) -> list[Record]:
        fields = self.cfg.data.fields()
        if eval_dataset is not None:
            records, source = records_in(eval_dataset, "eval_dataset", fields)
            return records if records is not None else load_records(str(source), fields=fields)
        if self.inputs.eval is not None:
            return self.inputs.eval
        if self.cfg.data.eval:
            return load_records(self.cfg.data.eval, fields=fields)[: self.cfg.data.eval_size]
        raise RimInputError("no eval_dataset (give one to RiMTrainer or evaluate)", source="evaluate")


def load(run_or_model_dir: str | Path, device: str | None = None) -> LoadedRun:
    """A trained run (its directory or `model/`) or an exported directory, on `device` (default
    cuda if available): `.answer(questions, every_block=False)` answers in batches."""
    return load_run(run_or_model_dir, device)


def _describe_model(model: Any) -> dict[str, Any]:
    """What the run's config records of a model instance: its name, dtype, and adapters."""
    name = getattr(model, "name_or_path", "") or f"python:{type(model).__name__}"
    found: dict[str, Any] = {"name_or_path": str(name), "init_from": None}
    dtype = str(getattr(model, "dtype", "")).removeprefix("torch.")
    if dtype in DTYPES:
        found["dtype"] = dtype
    if hasattr(model, "peft_config"):
        found["lora"] = _describe_lora(model.peft_config.get("default"))
    return found


def _describe_lora(config: Any) -> dict[str, Any]:
    """`model.lora` as the config records a `peft.LoraConfig` (the object itself is used)."""
    targets = getattr(config, "target_modules", None)
    return {
        "r": getattr(config, "r", None),
        "alpha": getattr(config, "lora_alpha", None),
        "dropout": getattr(config, "lora_dropout", None),
        "target_modules": sorted(targets) if isinstance(targets, set) else targets,
    }
