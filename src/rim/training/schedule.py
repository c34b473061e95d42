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
    """Optimizer steps of a stage: `steps`, or `epochs` passes over the data of
    `steps_per_epoch` steps each (a fraction of an epoch rounded up)."""
    if stage.steps is not None:
        return stage.steps
    return math.ceil(round(stage.epochs * steps_per_epoch(n_examples, effective_batch), 9))


def steps_per_epoch(n_examples: int, effective_batch: int) -> int:
    """Optimizer steps in one pass over the data: `ceil(n / batch)`, the incomplete last batch
    included, as Coconut's official loader (no `drop_last`) and its accumulation, which steps
    at the loader's end, count them."""
    return max(1, math.ceil(n_examples / effective_batch))


def warmup_steps(stage: StageConfig, steps: int) -> int:
    """Steps of the linear warm-up."""
    return int(stage.warmup * steps)


def lr_at(step: int, steps: int, stage: StageConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up to `stage.lr`, then
    constant (the paper's schedule) or, with `schedule: cosine`, a half cosine from `stage.lr`
    down to 0 at the end of the stage (Hugging Face's `cosine`, CODI's recipe)."""
    warm = warmup_steps(stage, steps)
    if warm and step < warm:
        return stage.lr * (step + 1) / warm
    if stage.schedule == "constant":
        return stage.lr
    progress = (step - warm) / max(1, steps - warm)
    return stage.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


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
    """Effective dropout per module kind during the stage (see `rim.models.dropout.dropout_by_kind`)."""
    curriculum: str = ""
    """How the method's layout changes over the stage, beyond `fraction` (`Method.curriculum`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_stages(
    cfg: Config, method: Method, n_examples: int, processes: int = 1, dropout: dict[str, float] | None = None
) -> list[StagePlan]:
    """The plan of every stage of `method` on `n_examples` examples; `dropout` is the model's
    dropout per module kind before training (a stage's `dropout` sets every kind)."""
    batch = cfg.trainer.batch_size * cfg.trainer.grad_accum * processes
    plans, current = [], dict(dropout or {})
    for stage, steps in zip(method.stages, budgeted_steps(cfg, method, n_examples, batch)):
        key = method.settings(stage)
        settings: StageConfig = getattr(cfg.trainer, key)
        if settings.dropout is not None:
            current = {kind: settings.dropout for kind in current} or {"all": settings.dropout}
        plans.append(
            StagePlan(
                stage,
                key,
                steps,
                steps_per_epoch(n_examples, batch),
                settings.lr,
                warmup_steps(settings, steps),
                settings.optimizer_reset,
                cfg.trainer.batch_size,
                cfg.trainer.grad_accum,
                processes,
                batch,
                dict(current),
            )
        )
        plans[-1].curriculum = method.for_stage(
            stage, steps, plans[-1].steps_per_epoch, cfg.trainer.seed
        ).curriculum(stage)
    return plans


def next_reset(plan: StagePlan, method: Method, start: int) -> int | None:
    """The first step after `start` (where the current AdamW began) that gets a fresh one:
    the next epoch with `optimizer_reset: epoch`, or where the method's curriculum asks
    (`method.resets_optimizer`, on the method bound to the stage); None: none before the end."""
    epoch = start + plan.steps_per_epoch if plan.optimizer_reset == "epoch" else None
    asked = next((s for s in range(start + 1, plan.steps) if method.resets_optimizer(plan.name, s)), None)
    found = [s for s in (epoch, asked) if s is not None]
    return min(found) if found else None


def budgeted_steps(cfg: Config, method: Method, n_examples: int, effective_batch: int) -> list[int]:
    """Optimizer steps of each stage of `method`: the steps of the trainer sections it trains
    (`method.budget`); with `trainer.budget: baseline`, `trainer.baseline`'s steps split between
    the stages in proportion to those (rounded so that they add up exactly)."""
    own = [
        sum(
            stage_steps(getattr(cfg.trainer, key), n_examples, effective_batch)
            for key in method.budget(stage)
        )
        for stage in method.stages
    ]
    uses_baseline = any("baseline" in method.budget(stage) for stage in method.stages)
    if cfg.trainer.budget != "baseline" or uses_baseline:
        return own
    total = stage_steps(cfg.trainer.baseline, n_examples, effective_batch)
    weight = sum(own)
    if weight == 0:
        return [total] + [0] * (len(own) - 1)
    ends = [round(total * sum(own[: i + 1]) / weight) for i in range(len(own))]
    return [end - start for start, end in zip([0, *ends], ends)]


def counted_steps(cfg: Config, method: Method) -> int | None:
    """Optimizer steps of all stages when the config counts them in steps (None when some are
    counted in epochs, which need the data)."""
    keys = {key for stage in method.stages for key in method.budget(stage)}
    if cfg.trainer.budget == "baseline" and "baseline" not in keys:
        keys = {"baseline"}
    counts = [getattr(cfg.trainer, key).steps for key in keys]
    return sum(c for c in counts if c is not None) if None not in counts else None
