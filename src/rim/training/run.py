"""A training run end to end: validate, create the run directory, train, evaluate."""

from __future__ import annotations

import copy
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import PartialState

from rim.common.errors import RimInputError
from rim.common.fileio import check_appendable, check_checkpoint
from rim.common.progress import Reporter
from rim.common.rundir_lock import is_empty_run_dir, run_dir_lock
from rim.config import Config, first_difference
from rim.inference.evaluate import evaluate
from rim.inference.infer import LoadedRun, load_run
from rim.training.checkpoints import Position, complete_checkpoints
from rim.training.prepare import Prepared, PreparedInputs, prepare
from rim.training.train import launch_asks_for, train

PACKAGES = ("reasoning-in-memory", "torch", "transformers", "accelerate", "peft", "tokenizers")
MAY_CHANGE_ON_RESUME = (
    "trainer.log_every",
    "trainer.save_every",
    "trainer.keep_last",
    "trainer.report_to",
    "trainer.eval_batch_size",
)
"""Settings that `--resume` lets change: they decide what is logged, saved, reported or how
large the evaluation batches are, not the arithmetic of training."""


def run_training(
    cfg: Config,
    out: str | Path,
    reporter: Reporter | None = None,
    resume: bool = False,
    inputs: PreparedInputs | None = None,
) -> dict:
    """Train `cfg` into the run directory `out`, then score the final model on the validation
    split `cfg.data.eval` and the test split `cfg.data.test`, those given (`final_scores`).

    Every input is validated before `out` is created; `out` must not exist or be empty, unless
    `resume` continues the run there from its newest checkpoint (same config, but for
    `MAY_CHANGE_ON_RESUME`). The process holds the lock of `out` (`rim.common.rundir_lock`) while it
    works. `inputs`: a model, tokenizer, LoRA config or records already in memory (`rim.api.trainer`).
    Returns what `eval.json` holds, with each example's `correct` (empty dict without
    evaluation data).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RimInputError("is a file, not a run directory", source=str(out))
    _check_sharding(cfg)
    with run_dir_lock(out, "rim train --resume" if resume else "rim train"):
        return _train_locked(cfg, out, reporter, resume, inputs)


def _train_locked(
    cfg: Config, out: Path, reporter: Reporter | None, resume: bool, inputs: PreparedInputs | None = None
) -> dict:
    """`run_training` once this process holds the run directory's lock."""
    if resume:
        _check_resumable(cfg, out)
    elif not is_empty_run_dir(out):
        raise RimInputError(
            "run directory exists and is not empty (continue it with --resume)", source=str(out)
        )
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    torch.manual_seed(cfg.trainer.seed)
    prep = prepare(cfg, inputs)
    # under `accelerate launch` or torchrun, one writer; on CPUs the processes talk over gloo
    main_process = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        (out / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
    reporter = reporter or Reporter()
    final = train(prep, out, reporter, resume=resume)
    reporter.close()
    if not (prep.eval_records or prep.test_records) or not main_process:
        return {}
    result = final_scores(load_run(final), prep)
    saved = _without_lists(result)
    saved.update({split: _without_lists(result[split]) for split in SPLITS if split in result})
    (out / "eval.json").write_text(json.dumps(saved, indent=2) + "\n")
    return result


SPLITS = ("valid", "test")
"""`eval.json`'s sections: the validation split (`data.eval`) and the test split (`data.test`)."""


def final_scores(run: LoadedRun, prep: Prepared) -> dict:
    """The final (selected) model scored once on each split it has: `valid` and `test`, apart;
    the top-level keys repeat the reported split's (the test split's when there is one, else
    the validation split's; `reported` names it), so readers of one accuracy get the test's."""
    cfg = prep.cfg
    scores = {
        split: evaluate(run, records, cfg.data.checker, batch_size=cfg.trainer.eval_batch_size)
        for split, records in zip(SPLITS, (prep.eval_records, prep.test_records))
        if records
    }
    reported = "test" if "test" in scores else "valid"
    return {**scores[reported], "reported": reported, **scores}


def _without_lists(result: dict) -> dict:
    """What eval.json keeps of an evaluation: not each example's `correct` and block answers."""
    return {k: v for k, v in result.items() if k not in ("correct", "block_predictions", *SPLITS)}


def _check_sharding(cfg: Config) -> None:
    """Evaluation during training runs on the main process alone, which a model whose weights
    are sharded over several GPUs (FSDP, DeepSpeed ZeRO-3) cannot do: refused before anything
    runs, not hung."""
    sharded = [
        name
        for name, on in (
            ("FSDP", launch_asks_for("FSDP")),
            (
                "DeepSpeed ZeRO-3",
                launch_asks_for("DEEPSPEED") and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3",
            ),
        )
        if on
    ]
    if (
        sharded
        and cfg.trainer.eval_every
        and torch.cuda.is_available()
        and int(os.environ.get("WORLD_SIZE", "1")) > 1
    ):
        raise RimInputError(
            f"evaluation during training cannot run under {sharded[0]} with "
            "several processes (the main process would evaluate a sharded model "
            "alone); drop it and evaluate the saved model",
            source="trainer.eval_every",
        )


def _check_resumable(cfg: Config, out: Path) -> None:
    """`out` is an unfinished run of the same config."""
    saved = out / "config.yaml"
    if not saved.is_file():
        raise RimInputError("not a run directory to resume (no config.yaml)", source=str(out))
    if (out / "model" / "rim.json").is_file():
        raise RimInputError("the run has finished (its model/ is written)", source=str(out))
    old = _arithmetic(yaml.safe_load(saved.read_text()) or {})
    if old != _arithmetic(cfg.to_dict()):
        key = first_difference(old, _arithmetic(cfg.to_dict()))
        raise RimInputError(
            f"the run was started with another config ({key}); resume it with "
            "the same config and overrides (only "
            f"{', '.join(MAY_CHANGE_ON_RESUME)} may change)",
            source=str(out),
        )
    if not complete_checkpoints(out):
        raise RimInputError(
            "no checkpoint to resume from (checkpoints/step-* is missing: they "
            "are written with trainer.save_every and on Ctrl-C or SIGTERM); "
            "train it again without --resume into another --out (or after "
            "deleting this one)",
            source=str(out),
        )
    newest = complete_checkpoints(out)[-1]  # what `train` resumes from: whole, before any write
    check_checkpoint(newest, Position)
    check_appendable(
        out / "metrics.jsonl", "the resumed run appends to it: make it a writable file (or move it away)"
    )


def _arithmetic(config: dict) -> dict:
    """A config dict without the settings in `MAY_CHANGE_ON_RESUME`."""
    kept = copy.deepcopy(config)
    for dotted in MAY_CHANGE_ON_RESUME:
        *parents, name = dotted.split(".")
        section: Any = kept
        for key in parents:
            section = section.get(key) if isinstance(section, dict) else None
        if isinstance(section, dict):
            section.pop(name, None)
    return kept


def versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
