"""The training loop: every stage of the method in turn, over Hugging Face Accelerate.

One process is simply world size 1; `accelerate launch` runs the same code on many GPUs.
Each stage gets a fresh optimizer and a constant-with-warmup schedule. The loader yields
examples; each step asks the method for the batch laid out at that step's point of the stage
(`fraction = step / steps`), so the curriculum is a plain function of the step.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import get_constant_schedule_with_warmup

from rim.config import StageConfig
from rim.encoding import Example
from rim.modeling import set_dropout
from rim.prepare import Prepared
from rim.progress import Reporter
from rim.runinfo import RunInfo


def stage_steps(stage: StageConfig, n_examples: int, batch_size: int) -> int:
    """Optimizer steps of a stage: `steps`, or `epochs` passes over the data."""
    if stage.steps is not None:
        return stage.steps
    return math.ceil(stage.epochs * n_examples / batch_size)


def train(prep: Prepared, run_dir: Path, reporter: Reporter) -> Path:
    """Train `prep.model` through every stage of its method; return the final model directory."""
    cfg = prep.cfg
    accelerator = Accelerator(
        mixed_precision=cfg.trainer.mixed_precision,
        gradient_accumulation_steps=cfg.trainer.grad_accum,
        log_with="tensorboard",
        project_dir=str(run_dir),
    )
    accelerator.init_trackers("tb")
    if not accelerator.is_main_process:
        reporter = Reporter(enabled=False)
    set_seed(cfg.trainer.seed)
    model = accelerator.prepare(prep.model)
    accelerator.wait_for_everyone()  # the main process has created run_dir
    metrics = (run_dir / "metrics.jsonl").open("a", encoding="utf-8") if (
        accelerator.is_main_process) else None
    global_step = 0
    try:
        for stage in prep.method.stages:
            global_step = _run_stage(prep, model, stage, accelerator, metrics, reporter,
                                     global_step)
            if accelerator.is_main_process:
                _save(accelerator.unwrap_model(model), prep, run_dir / "checkpoints" / stage)
        final = run_dir / "model"
        if accelerator.is_main_process:
            _save(accelerator.unwrap_model(model), prep, final, merge=True)
        accelerator.wait_for_everyone()
    finally:
        if metrics is not None:
            metrics.close()
        accelerator.end_training()
    return final


def _run_stage(prep: Prepared, model: torch.nn.Module, stage: str, accelerator: Accelerator,
               metrics, reporter: Reporter, global_step: int) -> int:
    """Train one stage with a fresh optimizer and schedule; returns the global step count."""
    cfg = prep.cfg
    settings: StageConfig = getattr(cfg.trainer, prep.method.settings(stage))
    effective_batch = cfg.trainer.batch_size * cfg.trainer.grad_accum * accelerator.num_processes
    steps = stage_steps(settings, len(prep.train), effective_batch)
    if steps == 0:
        return global_step
    if settings.dropout is not None:
        set_dropout(prep.model, settings.dropout)
    loader = DataLoader(prep.train, batch_size=cfg.trainer.batch_size, shuffle=True,
                        collate_fn=_examples, drop_last=len(prep.train) > cfg.trainer.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=cfg.trainer.weight_decay)
    scheduler = get_constant_schedule_with_warmup(optimizer, int(settings.warmup * steps))
    optimizer, loader, scheduler = accelerator.prepare(optimizer, loader, scheduler)
    model.train()
    step, tokens, loss_sum, loss_n = 0, 0, 0.0, 0
    start = time.perf_counter()
    task = reporter.start_stage(stage, steps)
    while step < steps:
        for examples in loader:
            fraction = step / steps  # how far the stage is at the step this batch trains
            batch = {k: v.to(accelerator.device)
                     for k, v in prep.method.collate(examples, stage, fraction).items()}
            with accelerator.accumulate(model):
                loss = prep.method.loss(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.trainer.grad_clip:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.trainer.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            tokens += int(batch["input_ids"].numel())
            loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
            if not accelerator.sync_gradients:
                continue
            step += 1
            global_step += 1
            if step % cfg.trainer.log_every == 0 or step == steps:
                elapsed = time.perf_counter() - start
                row = {"step": global_step, "stage": stage, "stage_step": step,
                       "loss": loss_sum / loss_n, "lr": scheduler.get_last_lr()[0],
                       "fraction": fraction, "tokens_per_s": tokens / elapsed,
                       "elapsed_s": elapsed}
                _log(accelerator, metrics, row)
                reporter.advance(task, step, loss=row["loss"])
                loss_sum, loss_n = 0.0, 0
            if step >= steps:
                break
    reporter.end_stage(task)
    return global_step


def _log(accelerator: Accelerator, metrics, row: dict) -> None:
    if not accelerator.is_main_process:
        return
    metrics.write(json.dumps(row) + "\n")
    metrics.flush()
    scalars = {f"{row['stage']}/{k}": v for k, v in row.items() if k in ("loss", "lr",
                                                                         "tokens_per_s")}
    accelerator.log(scalars, step=row["step"])


def _save(model, prep: Prepared, out: Path, merge: bool = False) -> None:
    """Save a Hugging Face model + tokenizer (+ rim.json). LoRA is merged into the final model."""
    if merge and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    prep.tok.save_pretrained(out)
    cfg = prep.cfg
    suffix = "".join(prep.tok.convert_ids_to_tokens(prep.method.prompt(())))
    RunInfo(method=cfg.method, checker=cfg.data.checker, max_new_tokens=cfg.trainer.max_new_tokens,
            prompt_suffix=suffix).save(out)


def _examples(batch: list[Example]) -> list[Example]:
    """The loader's collate function: examples stay examples until the step lays them out."""
    return batch
