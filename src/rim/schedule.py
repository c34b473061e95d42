"""The training plan as plain functions of the step: how long each stage is, its learning rate at
every optimizer step, and what it trains with. `rim train --dry-run` prints this plan; the
trainer follows it.

Steps are optimizer steps: one step consumes the effective batch (batch per device x gradient
accumulation x processes), so the schedule does not depend on the number of processes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from rim.config import Config, StageConfig
from rim.methods import Method


def stage_steps(stage: StageConfig, n_examples: int, effective_batch: int) -> int:
    """Optimizer steps of a stage: `steps`, or `epochs` passes over the data."""
    if stage.steps is not None:
        return stage.steps
    return math.ceil(stage.epochs * n_examples / effective_batch)


def steps_per_epoch(n_examples: int, effective_batch: int) -> int:
    """Optimizer steps in one pass over the data (the loader drops an incomplete last batch)."""
    return max(1, n_examples // effective_batch)


def warmup_steps(stage: StageConfig, steps: int) -> int:
    """Steps of the linear warm-up."""
    return int(stage.warmup * steps)


def lr_at(step: int, steps: int, stage: StageConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up to `stage.lr`, then
    constant (the paper's schedule)."""
    warm = warmup_steps(stage, steps)
    return stage.lr * min(1.0, (step + 1) / warm) if warm else stage.lr


@dataclass
class StagePlan:
    """What one stage trains with."""

    name: str
    settings: str
    """The trainer section (`trainer.<settings>`) of the stage."""
    steps: int
    steps_per_epoch: int
    lr: float
    warmup_steps: int
    optimizer_reset: str
    batch_per_device: int
    grad_accum: int
    processes: int
    effective_batch: int
    dropout: dict[str, float] = field(default_factory=dict)
    """Effective dropout per module kind during the stage (see `rim.modeling.dropout_by_kind`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_stages(cfg: Config, method: Method, n_examples: int, processes: int = 1,
                dropout: dict[str, float] | None = None) -> list[StagePlan]:
    """The plan of every stage of `method` on `n_examples` examples; `dropout` is the model's
    dropout per module kind before training (a stage's `dropout` sets every kind)."""
    batch = cfg.trainer.batch_size * cfg.trainer.grad_accum * processes
    plans, current = [], dict(dropout or {})
    for stage in method.stages:
        key = method.settings(stage)
        settings: StageConfig = getattr(cfg.trainer, key)
        steps = stage_steps(settings, n_examples, batch)
        if settings.dropout is not None:
            current = {kind: settings.dropout for kind in current} or {"all": settings.dropout}
        plans.append(StagePlan(stage, key, steps, steps_per_epoch(n_examples, batch),
                               settings.lr, warmup_steps(settings, steps),
                               settings.optimizer_reset, cfg.trainer.batch_size,
                               cfg.trainer.grad_accum, processes, batch, dict(current)))
    return plans
