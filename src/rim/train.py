"""The training loop: every stage of the method in turn, over Hugging Face Accelerate.

One process is simply world size 1; `accelerate launch` runs the same code on many GPUs.
The plan (`rim.schedule`) fixes each stage's steps and learning rate as functions of the
optimizer step. The loader yields examples; each step asks the method for the batch laid out at
that step's point of the stage (`fraction = step / steps`), so the curriculum never lags.
Each stage (or, with `optimizer_reset: epoch`, each epoch) gets a fresh AdamW; the previous one
is released, so old optimizer state does not stay in memory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader

from rim.config import StageConfig
from rim.encoding import Example
from rim.errors import RimRunError
from rim.modeling import dropout_by_kind, set_dropout
from rim.prepare import Prepared
from rim.progress import Reporter, log
from rim.schedule import StagePlan, lr_at, plan_stages
from rim.validation import Validator


@dataclass
class _Progress:
    """What the stages share: the global step, the metrics file, the validation tracker."""

    global_step: int
    metrics: object
    validator: Validator | None


def train(prep: Prepared, run_dir: Path, reporter: Reporter) -> Path:
    """Train `prep.model` through every stage of its method; return the final model directory."""
    cfg = prep.cfg
    accelerator = Accelerator(
        mixed_precision=cfg.trainer.mixed_precision,
        gradient_accumulation_steps=cfg.trainer.grad_accum,
        log_with="tensorboard",
        project_dir=str(run_dir),
        cpu=not torch.cuda.is_available(),
        # the order of examples is a function of the seed and the epoch, whatever the processes
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    accelerator.init_trackers("tb")
    if not accelerator.is_main_process:
        reporter = Reporter(enabled=False)
    set_seed(cfg.trainer.seed)
    model = prep.model.to(accelerator.device)
    accelerator.wait_for_everyone()  # the main process has created run_dir
    metrics = (run_dir / "metrics.jsonl").open("a", encoding="utf-8") if (
        accelerator.is_main_process) else None
    validator = Validator.create(prep, run_dir) if cfg.trainer.eval_every else None
    state = _Progress(0, metrics, validator)
    plans = plan_stages(cfg, prep.method, len(prep.train), accelerator.num_processes)
    reporter.banner(_banner(prep, plans, accelerator, run_dir))
    try:
        previous: dict[str, float] = dropout_by_kind(model)
        for plan in plans:
            previous = _run_stage(prep, model, plan, accelerator, state, reporter, previous)
            if accelerator.is_main_process:
                _save(model, prep, run_dir / "checkpoints" / plan.name)
        if validator is not None and cfg.trainer.keep_best:
            validator.restore_best(model)
        final = run_dir / "model"
        if accelerator.is_main_process:
            _save(model, prep, final, merge=True)
        accelerator.wait_for_everyone()
    finally:
        if metrics is not None:
            metrics.close()
        accelerator.end_training()
    return final


def _run_stage(prep: Prepared, model: torch.nn.Module, plan: StagePlan, accelerator: Accelerator,
               state: _Progress, reporter: Reporter, previous: dict[str, float]) -> dict[str, float]:
    """Train one stage; returns the model's dropout per module kind during it."""
    cfg = prep.cfg
    settings: StageConfig = getattr(cfg.trainer, plan.settings)
    if settings.dropout is not None:
        set_dropout(model, settings.dropout)
    plan.dropout = dropout_by_kind(model)
    if plan.name in prep.method.raises_dropout and max(plan.dropout.values(), default=0) <= max(
            previous.values(), default=0):
        log.warning("%s dropout %s is not above the previous stage's %s (the recipe asks for "
                    "more): set trainer.%s.dropout", plan.name, plan.dropout, previous,
                    plan.settings)
    _log(accelerator, state.metrics, {"event": "stage", "step": state.global_step,
                                      "stage": plan.name, "plan": plan.to_dict(),
                                      "settings": settings.model_dump()})
    if plan.steps == 0:
        return plan.dropout
    loader = DataLoader(prep.train, batch_size=cfg.trainer.batch_size, shuffle=True,
                        collate_fn=_examples, drop_last=len(prep.train) > cfg.trainer.batch_size)
    step, window = 0, _Window()
    task = reporter.start_stage(plan.name, plan.steps)
    while step < plan.steps:  # one pass per fresh optimizer: the stage, or an epoch
        trained, optimizer, batches = accelerator.prepare(
            model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                     lr=settings.lr, weight_decay=cfg.trainer.weight_decay),
            loader)
        trained.train()
        reset_at = step + plan.steps_per_epoch if settings.optimizer_reset == "epoch" else None
        while step < plan.steps and step != reset_at:
            for examples in batches:
                fraction = step / plan.steps  # how far the stage is at the step this batch trains
                batch = {k: v.to(accelerator.device)
                         for k, v in prep.method.collate(examples, plan.name, fraction).items()}
                with accelerator.accumulate(trained):
                    loss = prep.method.loss(trained, batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        for group in optimizer.param_groups:
                            group["lr"] = lr_at(step, plan.steps, settings)
                        if cfg.trainer.grad_clip:
                            accelerator.clip_grad_norm_(trained.parameters(), cfg.trainer.grad_clip)
                    optimizer.step()
                    optimizer.zero_grad()
                # the loss of the optimizer step's whole batch: the mean over the processes
                value = accelerator.reduce(loss.detach(), "mean").item()
                if not math.isfinite(value):
                    raise RimRunError(f"loss is not finite at {plan.name} step {step + 1}; the "
                                      "checkpoints of finished stages are kept (lower the "
                                      f"learning rate, trainer.{plan.settings}.lr)")
                window.add(value, batch["input_ids"].numel() * accelerator.num_processes)
                if not accelerator.sync_gradients:
                    continue
                step += 1
                state.global_step += 1
                _after_step(prep, plan, step, fraction, optimizer, window, accelerator, state,
                            reporter, task, trained)
                if step >= plan.steps or step == reset_at:
                    break
        accelerator.unwrap_model(trained, keep_fp32_wrapper=False)  # prepared again next pass
        del trained, optimizer, batches
        accelerator.free_memory()  # this pass's optimizer state goes
    reporter.end_stage(task)
    return plan.dropout


def _after_step(prep: Prepared, plan: StagePlan, step: int, fraction: float, optimizer,
                window: _Window, accelerator: Accelerator, state: _Progress, reporter: Reporter,
                task: int, trained: torch.nn.Module) -> None:
    """Log every `log_every` steps; validate every `eval_every` steps and at the stage's end."""
    cfg = prep.cfg
    if step % cfg.trainer.log_every == 0 or step == plan.steps:
        row = {"step": state.global_step, "stage": plan.name, "stage_step": step,
               "loss": window.mean_loss(), "lr": optimizer.param_groups[0]["lr"],
               "fraction": fraction, **window.rates()}
        _log(accelerator, state.metrics, row)
        reporter.advance(task, step, row)
        window.reset_loss()
    every = cfg.trainer.eval_every
    every = plan.steps_per_epoch if every == "epoch" else every
    if state.validator is not None and (step % every == 0 or step == plan.steps):
        result = state.validator.check(accelerator.unwrap_model(trained), accelerator)
        if result is not None:
            _log(accelerator, state.metrics, {"event": "eval", "step": state.global_step,
                                              "stage": plan.name, **result})
        trained.train()


class _Window:
    """Loss and throughput since the last log line."""

    def __init__(self) -> None:
        import time

        self.clock = time.perf_counter
        self.start = self.clock()
        self.tokens, self.loss_sum, self.loss_n = 0, 0.0, 0

    def add(self, loss: float, tokens: int) -> None:
        self.tokens += tokens
        self.loss_sum, self.loss_n = self.loss_sum + loss, self.loss_n + 1

    def mean_loss(self) -> float:
        return self.loss_sum / max(self.loss_n, 1)

    def rates(self) -> dict[str, float]:
        elapsed = self.clock() - self.start
        return {"tokens_per_s": self.tokens / elapsed, "elapsed_s": elapsed}

    def reset_loss(self) -> None:
        self.loss_sum, self.loss_n = 0.0, 0


def _log(accelerator: Accelerator, metrics, row: dict) -> None:
    if not accelerator.is_main_process:
        return
    metrics.write(json.dumps(row) + "\n")
    metrics.flush()
    scalars = {f"{row['stage']}/{k}": v for k, v in row.items()
               if k in ("loss", "lr", "tokens_per_s", "accuracy")}
    if scalars:
        accelerator.log(scalars, step=row["step"])


def _save(model, prep: Prepared, out: Path, merge: bool = False) -> None:
    """Save a Hugging Face model + tokenizer (+ rim.json). LoRA is merged into the final model."""
    if merge and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    prep.tok.save_pretrained(out)
    prep.run_info().save(out)


def _banner(prep: Prepared, plans: list[StagePlan], accelerator: Accelerator,
            run_dir: Path) -> str:
    """What the run is about to do, in one paragraph."""
    params = sum(p.numel() for p in prep.model.parameters())
    trainable = sum(p.numel() for p in prep.model.parameters() if p.requires_grad)
    plan = plans[0] if plans else None
    batch = (f"{plan.effective_batch} ({plan.batch_per_device} per device x {plan.grad_accum} "
             f"accumulation x {plan.processes} processes)") if plan else "-"
    stages = ", ".join(f"{p.name} {p.steps} steps" for p in plans)
    return (f"rim train: {prep.cfg.method.name} on {len(prep.train):,} examples; "
            f"{params:,} parameters ({trainable:,} trainable); device {accelerator.device}; "
            f"effective batch {batch}; {stages}; output {run_dir}")


def _examples(batch: list[Example]) -> list[Example]:
    """The loader's collate function: examples stay examples until the step lays them out."""
    return batch
