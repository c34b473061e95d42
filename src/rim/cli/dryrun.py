"""`rim train CONFIG --dry-run`: validate a config and show its plan without training.

It reads the training data (to count examples) and the model's architecture (built on the meta
device: a config file is enough, no weights are loaded), then gives, for each stage, its steps,
learning rate, warm-up, effective dropout per module kind, batch per device, accumulation,
processes and effective batch, and the dtypes of the trained weights, of the frozen base (LoRA),
of the computation and of AdamW's state (`rim.training.precision`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from rich.table import Table
from transformers import AutoConfig, AutoModelForCausalLM

from rim.common.errors import RimInputError
from rim.config import Config
from rim.data.sources import load_records
from rim.methods import method_plan
from rim.models.dropout import dropout_by_kind
from rim.models.hub import pretrained_config
from rim.models.runinfo import model_directory
from rim.training.precision import precision_plan
from rim.training.schedule import plan_stages


def dry_run(cfg: Config) -> dict[str, Any]:
    """The plan of `cfg`: `method`, `examples`, `processes`, `data` (the training,
    validation and test splits), `select` (the selection rule) and `stages` (one dict per stage
    with `name`, `settings`, `steps`, `lr`, `warmup_steps`, `dropout`, `effective_batch`,
    `weights_dtype`, `frozen_dtype`, `compute_dtype`, `optimizer_state_dtype`, ...)."""
    if not cfg.data.train:
        raise RimInputError("field 'data.train' is required", source="config")
    n = len(load_records(cfg.data.train))
    method = method_plan(cfg.method)
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch and torchrun
    plans = plan_stages(cfg, method, n, processes, architecture_dropout(cfg))
    precision = precision_plan(cfg)
    return {
        "method": cfg.method.name,
        "examples": n,
        "processes": processes,
        "data": {"train": cfg.data.train, "eval": cfg.data.eval, "test": cfg.data.test},
        "select": cfg.trainer.select,
        "stages": [{**p.to_dict(), **precision} for p in plans],
    }


def architecture_dropout(cfg: Config) -> dict[str, float]:
    """Dropout per module kind of the configured model before training (LoRA's included)."""
    source = cfg.model.name_or_path
    if cfg.model.init_from is not None:
        source = str(model_directory(cfg.model.init_from))
    try:
        if source is None:
            options = dict(cfg.model.scratch)
            config = AutoConfig.for_model(
                options.pop("model_type"),
                vocab_size=cfg.model.vocab_size,
                bos_token_id=0,
                eos_token_id=0,
                **options,
            )
        else:
            config = pretrained_config(source, cfg.model.gguf_file)  # offline: cache or one line
    except (OSError, ValueError) as err:
        raise RimInputError(
            f"cannot read the model's config: {str(err).splitlines()[0]}", source=source or "model.scratch"
        ) from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    found = dropout_by_kind(model)
    if cfg.model.lora is not None:
        found["lora"] = float(cfg.model.lora.get("dropout", 0.0))
    return dict(sorted(found.items()))


def plan_table(plan: dict[str, Any]) -> Table:
    """The plan as a table, a row per stage."""
    data = plan.get("data") or {}
    curricula = "".join(f"\n{s['name']}: {s['curriculum']}" for s in plan["stages"] if s.get("curriculum"))
    table = Table(
        title=f"{plan['method']}: {plan['examples']} training examples, {plan['processes']} process(es)",
        caption=f"model kept: {plan.get('select')} (on validation {data.get('eval')}); "
        f"scored once on test {data.get('test')}{curricula}",
    )
    for column in (
        "stage (settings)",
        "steps",
        "lr (warm-up)",
        "new AdamW",
        "dropout",
        "batch",
        "weights / compute / AdamW",
    ):
        table.add_column(column, justify="right" if column == "steps" else "left")
    for s in plan["stages"]:
        values = set(s["dropout"].values())
        dropout = (
            f"{values.pop():g} all"
            if len(values) == 1
            else ", ".join(f"{k} {v:g}" for k, v in s["dropout"].items()) or "-"
        )
        table.add_row(
            f"{s['name']} (trainer.{s['settings']})",
            f"{s['steps']} ({s['steps_per_epoch']}/epoch)",
            f"{s['lr']:g} ({s['warmup_steps']} steps)",
            f"every {s['optimizer_reset']}",
            dropout,
            f"{s['batch_per_device']}x{s['grad_accum']}x{s['processes']} = {s['effective_batch']}",
            _precision(s),
        )
    return table


def _precision(stage: dict[str, Any]) -> str:
    """`weights / compute / AdamW` dtypes, short (`bf16`), with the frozen base under LoRA."""

    def short(dtype: str) -> str:
        return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(dtype, dtype)

    text = " / ".join(short(stage[k]) for k in ("weights_dtype", "compute_dtype", "optimizer_state_dtype"))
    frozen = stage.get("frozen_dtype")
    return f"{text} (frozen base {short(frozen)})" if frozen else text
