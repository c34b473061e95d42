"""One optimizer step of the training loop (`rim.training.train`): lay the examples out at the
stage's point, forward, backward, step; then log, validate and checkpoint as the settings ask."""

from __future__ import annotations

import math
import signal
from typing import TYPE_CHECKING, cast

import torch

from rim.common.errors import RimRunError, RimStopped
from rim.config import StageConfig
from rim.core.encoding import Example
from rim.training.schedule import StagePlan, lr_at
from rim.training.trainlog import Window

if TYPE_CHECKING:
    from rim.training.train import RunState


def train_step(
    run: RunState,
    plan: StagePlan,
    settings: StageConfig,
    trained,
    optimizer,
    examples: list[Example],
    window: Window,
    task: int,
    reset_at: int | None,
) -> bool:
    """One micro-batch; after an optimizer step, log, validate, checkpoint. True when the pass
    is over (the stage's steps are done, or the step `reset_at` gets a fresh optimizer)."""
    prep, cfg, pos, accelerator = run.prep, run.cfg, run.position, run.accelerator
    fraction = pos.step / plan.steps  # how far the stage is at the step this batch trains
    laid_out = run.method.collate(examples, plan.name, fraction, **prep.collate_options)
    batch = {k: v.to(accelerator.device) for k, v in laid_out.items()}
    with accelerator.accumulate(trained):
        loss = prep.method.loss(trained, batch)
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(pos.step, plan.steps, settings)
            if cfg.trainer.grad_clip:
                accelerator.clip_grad_norm_(trained.parameters(), cfg.trainer.grad_clip)
        optimizer.step()
        optimizer.zero_grad()
    # the loss of the optimizer step's whole batch (the mean over the processes) and its real
    # tokens (the sum), in one reduction
    counts = torch.stack(
        [loss.detach().float(), torch.tensor(float(prep.method.tokens(laid_out)), device=loss.device)]
    )
    total_loss, tokens = accelerator.reduce(counts, "sum").tolist()
    value = total_loss / accelerator.num_processes
    if not math.isfinite(value):
        raise RimRunError(
            f"loss is not finite at {plan.name} step {pos.step + 1}; the last "
            f"checkpoint is kept (lower trainer.{plan.settings}.lr)"
        )
    window.add(value, int(tokens))
    if not accelerator.sync_gradients:
        return False
    pos.step, pos.global_step = pos.step + 1, pos.global_step + 1
    if pos.step % cfg.trainer.log_every == 0 or pos.step == plan.steps:
        row = {
            "step": pos.global_step,
            "stage": plan.name,
            "stage_step": pos.step,
            "loss": window.mean_loss(),
            "lr": optimizer.param_groups[0]["lr"],
            "fraction": fraction,
            **window.rates(),
        }
        if accelerator.device.type == "cuda":  # the peak so far, this process's GPU
            row["max_memory_mib"] = torch.cuda.max_memory_allocated(accelerator.device) / 2**20
        run.metrics.log(row)
        run.reporter.advance(task, pos.step, row)
        window.reset_loss()
    every = plan.steps_per_epoch if cfg.trainer.eval_every == "epoch" else cfg.trainer.eval_every
    # a validator exists only with `trainer.eval_every`, so `every` is then an int
    if run.validator is not None and (pos.step % cast(int, every) == 0 or pos.step == plan.steps):
        result = run.validator.check(accelerator.unwrap_model(trained), accelerator, plan.name)
        if result is not None:
            run.metrics.log({"event": "eval", "step": pos.global_step, "stage": plan.name, **result})
        trained.train()
    stop = run.signals.agreed(accelerator)
    every = cfg.trainer.save_every
    if stop or (every and pos.global_step % every == 0):
        saved = run.save(window)
        if stop:
            name = signal.Signals(stop).name
            raise RimStopped(
                f"{name}: stopped after {plan.name} step {pos.step} (global step "
                f"{pos.global_step}), checkpoint {saved}; continue with the same "
                "command and --resume",
                code=128 + stop,
            )
    return pos.step >= plan.steps or pos.step == reset_at
