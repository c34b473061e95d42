"""`rim train CONFIG --dry-run`: validate a config and show its plan without training.

It reads the training data (to count examples) and the model's architecture (built on the meta
device: a config file is enough, no weights are loaded), then gives, for each stage, its steps,
learning rate, warm-up, effective dropout per module kind, batch per device, accumulation,
processes and effective batch.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from rich.table import Table
from transformers import AutoConfig, AutoModelForCausalLM

from rim.config import Config
from rim.data.sources import load_records
from rim.errors import RimInputError
from rim.methods import method_plan
from rim.modeling import dropout_by_kind
from rim.runinfo import model_directory
from rim.schedule import plan_stages


def dry_run(cfg: Config) -> dict[str, Any]:
    """The plan of `cfg`: `method`, `examples`, `processes` and `stages` (one dict per stage
    with `name`, `settings`, `steps`, `lr`, `warmup_steps`, `dropout`, `effective_batch`, ...)."""
    if not cfg.data.train:
        raise RimInputError("field 'data.train' is required", source="config")
    n = len(load_records(cfg.data.train))
    method = method_plan(cfg.method)
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch and torchrun
    plans = plan_stages(cfg, method, n, processes, architecture_dropout(cfg))
    return {"method": cfg.method.name, "examples": n, "processes": processes,
            "stages": [p.to_dict() for p in plans]}


def architecture_dropout(cfg: Config) -> dict[str, float]:
    """Dropout per module kind of the configured model before training (LoRA's included)."""
    source = cfg.model.name_or_path
    if cfg.model.init_from is not None:
        source = str(model_directory(cfg.model.init_from))
    try:
        if source is None:
            options = dict(cfg.model.scratch)
            config = AutoConfig.for_model(options.pop("model_type"), vocab_size=cfg.model.vocab_size,
                                          bos_token_id=0, eos_token_id=0, **options)
        else:
            config = AutoConfig.from_pretrained(source, gguf_file=cfg.model.gguf_file)
    except (OSError, ValueError) as err:
        raise RimInputError(f"cannot read the model's config: {str(err).splitlines()[0]}",
                            source=source or "model.scratch") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    found = dropout_by_kind(model)
    if cfg.model.lora is not None:
        found["lora"] = float(cfg.model.lora.get("dropout", 0.0))
    return dict(sorted(found.items()))


def plan_table(plan: dict[str, Any]) -> Table:
    """The plan as a table, a row per stage."""
    table = Table(title=f"{plan['method']}: {plan['examples']} training examples, "
                        f"{plan['processes']} process(es)")
    for column in ("stage (settings)", "steps", "lr (warm-up)", "new AdamW", "dropout",
                   "batch"):
        table.add_column(column, justify="right" if column == "steps" else "left")
    for s in plan["stages"]:
        values = set(s["dropout"].values())
        dropout = (f"{values.pop():g} all" if len(values) == 1 else
                   ", ".join(f"{k} {v:g}" for k, v in s["dropout"].items()) or "-")
        table.add_row(f"{s['name']} (trainer.{s['settings']})",
                      f"{s['steps']} ({s['steps_per_epoch']}/epoch)",
                      f"{s['lr']:g} ({s['warmup_steps']} steps)", f"every {s['optimizer_reset']}",
                      dropout, f"{s['batch_per_device']}x{s['grad_accum']}x{s['processes']} = "
                               f"{s['effective_batch']}")
    return table
