"""What a method may ask of the trainer beyond `fraction`: the stage's plan (its steps, steps
per epoch and the run's seed), fresh optimizers at chosen steps, a line for the dry run, and
modules of its own on the model. The defaults here ask for nothing; iCoT-SI
(`rim.methods.icot`) uses the first three, CODI (`rim.methods.codi`) the last."""

from __future__ import annotations

from typing import Any


class StageSchedule:
    """The trainer's hooks for a method's within-stage schedule, doing nothing by default."""

    def for_stage(self, stage: str, steps: int, steps_per_epoch: int, seed: int) -> Any:
        """The method as it trains `stage` (`steps` optimizer steps, `steps_per_epoch` each
        epoch, the run's `seed`): itself, unless its layouts need more than `fraction`."""
        return self

    def resets_optimizer(self, stage: str, step: int) -> bool:
        """True if optimizer step `step` (0-based, > 0) of `stage` starts with a fresh AdamW
        because the curriculum changes there (on a method from `for_stage`)."""
        return False

    def curriculum(self, stage: str) -> str:
        """How the layout of `stage` changes over its steps, for `rim train --dry-run` ('' if it
        does not beyond `fraction`)."""
        return ""

    def attach(self, model: Any) -> None:
        """Add the method's own modules to the model (submodules named `rim_*` of the causal LM,
        `rim.models.attached`), unless it has them: called on a new model before training and
        on a loaded one before its weights are restored. Nothing by default."""
