"""`transformers.TrainerCallback`s in rim's training loop: a `Reporter` that turns what the loop
reports (its start, every metrics.jsonl row, every checkpoint, its end) into the callbacks'
events, with a `transformers.TrainerState` (`global_step`, `epoch`, `max_steps`,
`log_history`) and a `transformers.TrainingArguments` that mirrors the run's settings.

Events: `on_init_end` (the trainer is built), `on_train_begin`, `on_log` (every logged step:
`loss`, `learning_rate`, `tokens_per_s`, `epoch`; and every evaluation), `on_evaluate`
(evaluation during training and `RiMTrainer.evaluate`, metrics prefixed `eval_`), `on_save`
(every checkpoint), `on_train_end`. Step-level events (`on_step_begin`, `on_step_end`) are not
sent, and `control` is passed along but not obeyed: the run stops on its plan or a signal.
Callbacks run on the main process only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rim.common.errors import RimInputError
from rim.common.progress import Reporter
from rim.config import Config

LOGGED = {"loss": "loss", "lr": "learning_rate", "tokens_per_s": "tokens_per_s"}
"""metrics.jsonl keys of a step row and their names in the logs callbacks receive."""


def training_arguments(cfg: Config, output_dir: str | Path) -> TrainingArguments:
    """`TrainingArguments` with the run's output directory, seed, batch, accumulation, logging
    and saving intervals (what callbacks commonly read); rim does not train through it."""
    return TrainingArguments(
        output_dir=str(output_dir),
        report_to="none",
        seed=cfg.trainer.seed,
        per_device_train_batch_size=cfg.trainer.batch_size,
        per_device_eval_batch_size=cfg.trainer.eval_batch_size,
        gradient_accumulation_steps=cfg.trainer.grad_accum,
        weight_decay=cfg.trainer.weight_decay,
        max_grad_norm=cfg.trainer.grad_clip,
        logging_steps=cfg.trainer.log_every,
        save_steps=cfg.trainer.save_every or 500,
        save_total_limit=cfg.trainer.keep_last,
    )


def check_callbacks(callbacks: Sequence[Any]) -> list[TrainerCallback]:
    """`callbacks` as instances: a `TrainerCallback` class is instantiated, as Trainer does."""
    found = []
    for callback in callbacks:
        if isinstance(callback, type) and issubclass(callback, TrainerCallback):
            callback = callback()
        if not isinstance(callback, TrainerCallback):
            raise RimInputError(
                f"{type(callback).__name__} is not a transformers.TrainerCallback", source="callbacks"
            )
        found.append(callback)
    return found


class CallbackReporter(Reporter):
    """A `Reporter` (the console as usual) that also sends the loop's events to `callbacks`."""

    def __init__(
        self,
        callbacks: Sequence[TrainerCallback],
        args: TrainingArguments,
        metrics_path: Path,
        **reporter: Any,
    ) -> None:
        super().__init__(**reporter)
        self.callbacks, self.args, self.metrics_path = list(callbacks), args, metrics_path
        self.state = TrainerState(  # `TrainingArguments` types both float (ratios); step counts are ints
            logging_steps=cast(int, args.logging_steps), save_steps=cast(int, args.save_steps)
        )
        self.control = TrainerControl()
        self.epochs: dict[str, tuple[float, int]] = {}
        """Stage name -> (epochs before the stage, steps per epoch of the stage)."""

    def fire(self, event: str, **kwargs: Any) -> None:
        """Call `event` of every callback with (args, state, control, **kwargs)."""
        for callback in self.callbacks:
            result = getattr(callback, event)(self.args, self.state, self.control, **kwargs)
            if isinstance(result, TrainerControl):
                self.control = result

    def begin(self, plans: list, global_step: int) -> None:
        done = 0.0
        for plan in plans:
            self.epochs[plan.name] = (done, plan.steps_per_epoch)
            done += plan.steps / plan.steps_per_epoch
        state = self.state
        state.max_steps = sum(p.steps for p in plans)
        state.num_train_epochs = done  # type: ignore[assignment]  # typed int; rim's stages end mid-epoch
        state.train_batch_size = plans[0].batch_per_device if plans else None
        state.global_step, state.log_history = global_step, []
        if self.metrics_path.is_file():  # a resumed run: the rows before its checkpoint
            for line in self.metrics_path.read_text().splitlines():
                self._record(json.loads(line))
        self.fire("on_train_begin")

    def logged(self, row: dict) -> None:
        logs = self._record(row)
        if logs is None:
            return
        self.fire("on_log", logs=logs)
        if row.get("event") == "eval":
            self.fire("on_evaluate", metrics=logs)

    def evaluated(self, metrics: dict[str, Any]) -> None:
        """An evaluation outside the loop (`RiMTrainer.evaluate`, the final evaluation)."""
        self.state.log_history.append({**metrics, "step": self.state.global_step})
        self.fire("on_log", logs=metrics)
        self.fire("on_evaluate", metrics=metrics)

    def saved(self, path: Path, global_step: int) -> None:
        self.state.global_step = global_step
        self.fire("on_save", checkpoint=str(path))

    def close(self) -> None:
        super().close()
        self.fire("on_train_end")

    def _record(self, row: dict) -> dict[str, Any] | None:
        """The logs of a metrics.jsonl row (None for a stage's start), added to the state."""
        if row.get("event") not in (None, "eval"):
            return None
        self.state.global_step = row["step"]
        before, per_epoch = self.epochs.get(row.get("stage", ""), (0.0, 1))
        if "stage_step" in row:
            self.state.epoch = before + row["stage_step"] / per_epoch
        if row.get("event") == "eval":
            logs = eval_metrics({k: v for k, v in row.items() if k not in ("event", "step")})
        else:
            logs = {name: row[key] for key, name in LOGGED.items() if key in row}
        logs["epoch"] = self.state.epoch
        self.state.log_history.append({**logs, "step": self.state.global_step})
        return logs


def eval_metrics(result: dict[str, Any], prefix: str = "eval") -> dict[str, Any]:
    """The metrics of an evaluation result (`rim.inference.evaluate`), without its per-question lists,
    prefixed as Trainer's (`eval_accuracy`, `eval_per_block`)."""
    left_out = ("predictions", "correct", "block_predictions", "stage", "reported")
    head = f"{prefix}_" if prefix else ""
    return {f"{head}{k}": v for k, v in result.items() if k not in left_out and not isinstance(v, dict)}


def final_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The metrics of `run_training`'s final evaluation: its validation split (`data.eval`) as
    `eval_*`, its test split (`data.test`) as `test_*`."""
    if not any(isinstance(result.get(split), dict) for split in ("valid", "test")):
        return eval_metrics(result)
    found: dict[str, Any] = {}
    for split, prefix in (("valid", "eval"), ("test", "test")):
        if isinstance(result.get(split), dict):
            found.update(eval_metrics(result[split], prefix))
    return found
