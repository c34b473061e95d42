"""A training run end to end: validate, create the run directory, train, evaluate."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path

import torch
import yaml
from accelerate import PartialState

from rim.config import Config, first_difference
from rim.errors import RimInputError
from rim.evaluate import evaluate
from rim.infer import load_run
from rim.prepare import prepare
from rim.progress import Reporter
from rim.train import launch_asks_for, train

PACKAGES = ("reasoning-in-memory", "torch", "transformers", "accelerate", "peft", "tokenizers")


def run_training(cfg: Config, out: str | Path, reporter: Reporter | None = None,
                 resume: bool = False) -> dict:
    """Train `cfg` into the run directory `out` and evaluate on `cfg.data.eval` if given.

    Every input is validated before `out` is created; `out` must not exist or be empty, unless
    `resume` continues the run there from its newest checkpoint (same config). Returns the
    evaluation result (empty dict without eval data).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RimInputError("is a file, not a run directory", source=str(out))
    _check_sharding(cfg)
    if resume:
        _check_resumable(cfg, out)
    elif out.exists() and any(out.iterdir()):
        raise RimInputError("run directory exists and is not empty (continue it with --resume)",
                            source=str(out))
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    torch.manual_seed(cfg.trainer.seed)
    prep = prepare(cfg)
    # under `accelerate launch` or torchrun, one writer; on CPUs the processes talk over gloo
    main_process = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        (out / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
    reporter = reporter or Reporter()
    final = train(prep, out, reporter, resume=resume)
    reporter.close()
    if not prep.eval_records or not main_process:
        return {}
    result = evaluate(load_run(final), prep.eval_records, cfg.data.checker,
                      batch_size=cfg.trainer.eval_batch_size)
    saved = {k: v for k, v in result.items() if k not in ("correct", "block_predictions")}
    (out / "eval.json").write_text(json.dumps(saved, indent=2) + "\n")
    return result


def _check_sharding(cfg: Config) -> None:
    """Evaluation during training runs on the main process alone, which a model whose weights
    are sharded over several GPUs (FSDP, DeepSpeed ZeRO-3) cannot do: refused before anything
    runs, not hung."""
    sharded = [name for name, on in (
        ("FSDP", launch_asks_for("FSDP")),
        ("DeepSpeed ZeRO-3", launch_asks_for("DEEPSPEED")
         and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3")) if on]
    if (sharded and cfg.trainer.eval_every and torch.cuda.is_available()
            and int(os.environ.get("WORLD_SIZE", "1")) > 1):
        raise RimInputError(f"evaluation during training cannot run under {sharded[0]} with "
                            "several processes (the main process would evaluate a sharded model "
                            "alone); drop it and evaluate the saved model",
                            source="trainer.eval_every")


def _check_resumable(cfg: Config, out: Path) -> None:
    """`out` is an unfinished run of the same config."""
    saved = out / "config.yaml"
    if not saved.is_file():
        raise RimInputError("not a run directory to resume (no config.yaml)", source=str(out))
    if (out / "model" / "rim.json").is_file():
        raise RimInputError("the run has finished (its model/ is written)", source=str(out))
    old = yaml.safe_load(saved.read_text()) or {}
    if old != cfg.to_dict():
        key = first_difference(old, cfg.to_dict())
        raise RimInputError(f"the run was started with another config ({key}); resume it with "
                            "the same config and overrides", source=str(out))


def versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
