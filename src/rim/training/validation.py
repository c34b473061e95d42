"""Evaluation while training: accuracy on the validation records (`data.eval`, never
`data.test`) every `trainer.eval_every` steps, and with `trainer.select: best` the weights of the
best evaluation, restored at the end (Coconut's selection of the checkpoint with the best
validation accuracy). Only evaluations in
a stage the method is reported in compete (`Method.selectable`: for Coconut, the all-latent
stage), so an earlier stage's model is never reported as the method."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from accelerate import Accelerator
from safetensors.torch import load_model, save_model

from rim.inference.evaluate import evaluate
from rim.inference.infer import LoadedRun
from rim.training.prepare import Prepared

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class Validator:
    """Evaluates the model in training (main process; the others wait) and keeps the best."""

    def __init__(self, prep: Prepared, best_file: Path) -> None:
        self.prep = prep
        self.best_file = best_file
        self.best: float | None = None

    @classmethod
    def create(cls, prep: Prepared, run_dir: Path) -> Validator:
        if not prep.eval_records:
            from rim.common.errors import RimInputError

            raise RimInputError("trainer.eval_every needs data.eval (the validation split)", source="config")
        return cls(prep, run_dir / "checkpoints" / "best" / "model.safetensors")

    def check(self, model: torch.nn.Module, accelerator: Accelerator, stage: str) -> dict | None:
        """Evaluate `model`, trained up to a point of `stage`; returns the accuracies and whether
        the evaluation competes for the best (`selectable`; None on the processes that wait)."""
        result = None
        if accelerator.is_main_process:
            prep = self.prep
            model.eval()
            run = LoadedRun(cast("PreTrainedModel", model), prep.tok, prep.method, prep.run_info())
            with torch.no_grad():
                accuracy = evaluate(
                    run,
                    prep.eval_records,
                    prep.cfg.data.checker,
                    batch_size=prep.cfg.trainer.eval_batch_size,
                    per_block=False,
                    latency_samples=0,
                )["accuracy"]
            selectable = prep.method.selectable(stage)
            improved = selectable and (self.best is None or accuracy > self.best)
            if improved:
                self.best = accuracy
                if prep.cfg.trainer.select == "best":
                    self.best_file.parent.mkdir(parents=True, exist_ok=True)
                    partial = self.best_file.with_name(f".{self.best_file.name}.tmp")
                    save_model(model, str(partial))
                    partial.replace(self.best_file)  # a kill mid-write leaves the old best
            result = {
                "accuracy": accuracy,
                "best_accuracy": self.best,
                "improved": improved,
                "selectable": selectable,
            }
        accelerator.wait_for_everyone()
        return result

    def restore_best(self, model: torch.nn.Module) -> None:
        """Load the weights of the best evaluation into `model` (every process)."""
        if self.best_file.is_file():
            load_model(model, str(self.best_file), device=str(next(model.parameters()).device))
