"""The training loop: every stage of the method in turn, over Hugging Face Accelerate.

One process is simply world size 1; `accelerate launch` or torchrun runs the same code on many
GPUs (or CPUs, over gloo). The plan (`rim.training.schedule`) fixes each stage's steps and learning rate
as functions of the optimizer step. The loader yields examples; each step asks the method for
the batch laid out at that step's point of the stage (`fraction = step / steps`), so the
curriculum never lags. Each stage (or, with `optimizer_reset: epoch`, each epoch, or where
the method's curriculum asks, `rim.methods.stepping`) gets a fresh AdamW; the previous one is
released. With `trainer.save_every`, checkpoints let a killed run
resume exactly where it was (`rim.training.checkpoints`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader

from rim.common.outputs import follow_umask
from rim.common.progress import Reporter, log
from rim.config import StageConfig
from rim.core.encoding import Example
from rim.models.attached import attached_names, save_attached, split_attached
from rim.models.dropout import dropout_by_kind, set_dropout
from rim.training.checkpoints import Position, StopSignals, latest_checkpoint, save_checkpoint
from rim.training.optimizer import adamw
from rim.training.prepare import Prepared
from rim.training.schedule import StagePlan, next_reset, plan_stages
from rim.training.step import train_step
from rim.training.trainlog import Metrics, Window, banner
from rim.training.validation import Validator

if TYPE_CHECKING:
    from torch.utils.data import Dataset


class RunState:
    """One training run's shared state: accelerator, metrics, validation, checkpoints."""

    def __init__(self, prep: Prepared, run_dir: Path, reporter: Reporter, resume: bool) -> None:
        cfg = self.cfg = prep.cfg
        self.prep, self.run_dir, self.reporter = prep, run_dir, reporter
        # an earlier run in this process (a sweep, tests) may have fixed another mixed precision
        # in Accelerate's process-wide state; the distributed part (PartialState) is kept
        AcceleratorState._reset_state()
        self.accelerator = Accelerator(
            mixed_precision=cfg.trainer.mixed_precision,
            gradient_accumulation_steps=cfg.trainer.grad_accum,
            log_with=cfg.trainer.report_to or None,
            project_dir=str(run_dir),
            cpu=not torch.cuda.is_available(),
            # the order of examples is a function of the seed and the epoch, whatever the processes
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        )
        _warn_if_not_sharded(self.accelerator)
        self.accelerator.init_trackers(
            "tb", config=cfg.to_dict() if "wandb" in cfg.trainer.report_to else None
        )
        if not self.accelerator.is_main_process:
            self.reporter = Reporter(enabled=False)
        found = latest_checkpoint(run_dir) if resume else None
        self.checkpoint: Path | None
        self.checkpoint, self.position = found if found else (None, Position())
        self.metrics = Metrics(
            self.accelerator,
            run_dir / "metrics.jsonl",
            self.position.metrics_bytes if resume else None,
            reporter.logged,
        )
        self.validator = Validator.create(prep, run_dir) if cfg.trainer.eval_every else None
        if self.validator is not None:
            self.validator.best = self.position.best
        self.signals = StopSignals()
        self.method = prep.method  # bound to each stage by `_run_stage`

    def save(self, window: Window) -> Path:
        """A checkpoint of the current position."""
        self.position.window = window.state()
        self.position.best = self.validator.best if self.validator else None
        self.position.metrics_bytes = self.metrics.size()
        path = save_checkpoint(self.accelerator, self.run_dir, self.position, self.cfg.trainer.keep_last)
        self.reporter.saved(path, self.position.global_step)
        return path


def train(prep: Prepared, run_dir: Path, reporter: Reporter, resume: bool = False) -> Path:
    """Train `prep.model` through every stage of its method (from the newest checkpoint of
    `run_dir` with `resume`); return the final model directory."""
    cfg = prep.cfg
    set_seed(cfg.trainer.seed)
    run = RunState(prep, run_dir, reporter, resume)
    model = prep.model.to(run.accelerator.device)
    run.accelerator.wait_for_everyone()  # the main process has created run_dir
    plans = plan_stages(cfg, prep.method, len(prep.train), run.accelerator.num_processes)
    run.reporter.banner(banner(prep, plans, run.accelerator, run_dir))
    run.reporter.begin(plans, run.position.global_step)
    if run.checkpoint is not None and run.accelerator.is_main_process:
        at, plan = run.position, plans[min(run.position.stage_index, len(plans) - 1)]
        log.info(
            "resuming %s from checkpoint %s: %s step %d of %d (global step %d)",
            run_dir,
            run.checkpoint.name,
            plan.name,
            at.step,
            plan.steps,
            at.global_step,
        )
    try:
        with run.signals:
            previous = dropout_by_kind(model)
            for index, plan in enumerate(plans):
                if index < run.position.stage_index:  # finished before the resumed checkpoint
                    _set_stage_dropout(model, getattr(cfg.trainer, plan.settings))
                    continue
                previous = _run_stage(run, model, index, plan, previous)
                _save(run.accelerator, model, prep, run_dir / "checkpoints" / plan.name)
        if run.validator is not None and cfg.trainer.select == "best":
            run.validator.restore_best(model)
        final = run_dir / "model"
        _save(run.accelerator, model, prep, final, merge=True)
        run.accelerator.wait_for_everyone()
    finally:
        run.metrics.close()
        run.accelerator.end_training()
    return final


def launch_asks_for(name: str) -> bool:
    """Whether `accelerate launch` was told to shard with `name` (FSDP or DEEPSPEED): the
    environment variable it sets, read as Accelerate reads it."""
    return os.environ.get(f"ACCELERATE_USE_{name}", "").lower() == "true"


def _warn_if_not_sharded(accelerator: Accelerator) -> None:
    """Accelerate shards (FSDP, DeepSpeed) on GPUs only: launched with such a config on CPUs,
    the run is plain data parallel, which the user should know."""
    for name in ("FSDP", "DEEPSPEED"):
        if (
            launch_asks_for(name)
            and accelerator.distributed_type.name != name
            and accelerator.is_main_process
        ):
            log.warning(
                "the launch asked for %s, but Accelerate did not select it (it does on "
                "GPUs only, under accelerate launch or torchrun): this run is %s",
                name,
                accelerator.distributed_type.name,
            )


def _set_stage_dropout(model: torch.nn.Module, settings: StageConfig) -> None:
    if settings.dropout is not None:
        set_dropout(model, settings.dropout)


def _run_stage(
    run: RunState, model: torch.nn.Module, index: int, plan: StagePlan, previous: dict[str, float]
) -> dict[str, float]:
    """Train one stage (from the run's position); returns its dropout per module kind."""
    prep, cfg, pos, accelerator = run.prep, run.cfg, run.position, run.accelerator
    settings: StageConfig = getattr(cfg.trainer, plan.settings)
    run.method = prep.method.for_stage(
        plan.name, plan.steps, plan.steps_per_epoch, cfg.trainer.seed
    )  # its layouts at this stage's steps
    _set_stage_dropout(model, settings)
    plan.dropout = dropout_by_kind(model)
    resumed = pos.stage_index == index and (pos.step > 0 or run.checkpoint is not None)
    if not resumed:
        pos.stage_index, pos.step, pos.pass_start, pos.epoch, pos.batches = index, 0, 0, 0, 0
        unraised = max(plan.dropout.values(), default=0) <= max(previous.values(), default=0)
        if plan.name in prep.method.raises_dropout and settings.dropout is None and unraised:
            log.warning(
                "%s dropout %s is not above the previous stage's %s (the recipe asks "
                "for more): set trainer.%s.dropout (to any value, to keep it)",
                plan.name,
                plan.dropout,
                previous,
                plan.settings,
            )
        run.metrics.log(
            {
                "event": "stage",
                "step": pos.global_step,
                "stage": plan.name,
                "plan": plan.to_dict(),
                "settings": settings.model_dump(),
            }
        )
    loader = DataLoader(
        cast("Dataset[Example]", prep.train),  # a list serves as a map-style dataset
        batch_size=cfg.trainer.batch_size,
        shuffle=True,
        collate_fn=_examples,
    )  # the last, incomplete batch too (`rim.training.schedule`)
    saved: dict[str, Any] = pos.window  # loss_sum and loss_n (an int)
    window = Window(**saved) if resumed and saved else Window()
    task = run.reporter.start_stage(plan.name, plan.steps)
    if run.checkpoint is not None and pos.step >= plan.steps:  # resumed at the stage's end
        accelerator.prepare(model)
        accelerator.load_state(str(run.checkpoint))  # weights and generators; no optimizer
        run.checkpoint = None
        accelerator.unwrap_model(model, keep_fp32_wrapper=False)
        accelerator.free_memory()
    while pos.step < plan.steps:  # one pass per fresh optimizer: the stage, or an epoch
        trained, optimizer, batches = accelerator.prepare(
            model,
            adamw(
                [p for p in model.parameters() if p.requires_grad],
                lr=settings.lr,
                weight_decay=cfg.trainer.weight_decay,
            ),
            loader,
        )
        restore = run.checkpoint is not None
        if restore:  # the resumed pass: weights, optimizer, generators
            accelerator.load_state(str(run.checkpoint))
            run.checkpoint = None
        else:
            pos.pass_start = pos.step
        trained.train()
        reset_at = next_reset(plan, run.method, pos.pass_start)
        while pos.step < plan.steps and pos.step != reset_at:
            batches.set_epoch(pos.epoch)
            epoch = accelerator.skip_first_batches(batches, pos.batches) if pos.batches else batches
            for examples in _keeping_generators(epoch) if restore else epoch:
                pos.batches += 1
                if train_step(run, plan, settings, trained, optimizer, examples, window, task, reset_at):
                    break
            restore = False
            if pos.batches >= len(batches):  # the epoch is read
                pos.epoch, pos.batches = pos.epoch + 1, 0
        accelerator.unwrap_model(trained, keep_fp32_wrapper=False)  # prepared again next pass
        del trained, optimizer, batches
        accelerator.free_memory()  # this pass's optimizer state goes
    run.reporter.end_stage(task)
    return plan.dropout


def _save(accelerator: Accelerator, model, prep: Prepared, out: Path, merge: bool = False) -> None:
    """Save a Hugging Face model + tokenizer (+ rim.json); LoRA is merged into the final model.
    The method's own modules (`rim.models.attached`) go to files of their own. Every process
    calls it (under FSDP they gather the sharded weights); the main one writes."""
    if merge and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    sharded = accelerator.distributed_type.name == "FSDP"
    names = attached_names(model)
    full = accelerator.get_state_dict(model) if sharded or names else None
    plain, own = split_attached(full, names) if full is not None else (None, {})
    state = {} if plain is None or hasattr(model, "peft_config") else {"state_dict": plain}
    if not accelerator.is_main_process:
        return
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True, **state)
    save_attached(own, out)
    prep.tok.save_pretrained(out)
    prep.run_info().save(out)
    follow_umask(out)  # safetensors writes 0600


def _keeping_generators(batches):
    """Iterate `batches` as the interrupted run did: starting an iterator draws a seed from the
    global generator, which the interrupted run drew at the epoch's start, before the state a
    checkpoint restores; so the state is put back after that draw."""
    states = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    iterator = iter(batches)
    first = next(iterator, None)
    torch.set_rng_state(states[0])
    if states[1] is not None:
        torch.cuda.set_rng_state_all(states[1])
    if first is not None:
        yield first
        yield from iterator


def _examples(batch: list[Example]) -> list[Example]:
    """The loader's collate function: examples stay examples until the step lays them out."""
    return batch
