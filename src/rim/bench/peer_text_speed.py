"""The speed check of `rim bench peers` for the peers that read text (iCoT-SI, CODI): optimizer
steps of the official training loop beside rim's, on the same weights, examples and machine, in
rounds that alternate the two so that other load on the machine spreads over both.

- iCoT-SI: the official loop lives inside `train.main()`, so each round runs that `main()` whole
  on the settings' file and options, unrecorded (`peer_icot.py`'s `time`); a step is the time
  between the ends of two AdamW steps (the batch, the removal, forward, backward, clipping, the
  update; a reset's new AdamW included). rim's side runs the steps of its trainer on the same
  rows, batch size and epochs: each batch laid out at its step of the removal schedule
  (`ICoT.collate`), forward, backward, clipping, the trainer's AdamW (`rim.training.optimizer`),
  a new one where the schedule resets it; timed the same way. Not timed on rim's side: the
  trainer's bookkeeping around a step (Accelerate's wrappers, the learning rate, the logged
  loss), small beside these steps on a CPU.
- CODI: the inner step of the official Trainer (its collator, forward, backward, clipping, AdamW)
  on the official model and examples (`peer_codi.py`'s `train`), against rim's CODI step on the
  same weights and examples (`collate`, loss, backward, clipping, the trainer's AdamW).

Each side uses its own optimizer: the official iCoT-SI code a fused AdamW, the official CODI
Trainer torch's default (looped) one, rim its trainer's fused one; the report says so.
"""

from __future__ import annotations

import copy
import random
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedModel

from rim.bench import report
from rim.bench.peer_icot_checks import ICoTRun
from rim.bench.peer_process import PeerProcess
from rim.bench.settings import PeersSettings
from rim.common.errors import RimInputError
from rim.core.encoding import Example
from rim.methods.codi import CODI
from rim.methods.icot import ICoT
from rim.training.optimizer import adamw

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_MAX_GRAD_NORM = 1.0
"""The official scripts' default gradient clipping (iCoT's `--max_grad_norm`, the Trainer's)."""
OFFICIAL_ICOT_LR = 5e-5
"""The official iCoT-SI `--lr` default."""
TORCH_WEIGHT_DECAY = 0.01
"""torch's AdamW default, which the official iCoT-SI keeps."""


def check_timeable(run: ICoTRun) -> None:
    """Refuse, in one line and before any work, a run of fewer than two optimizer steps (a step
    is timed as the time between two)."""
    if run.steps < 2:
        raise RimInputError(
            f"the iCoT-SI speed check times the steps between optimizer steps: {len(run.examples)} "
            f"rows, batch {run.batch} and {run.args.get('epochs', 1)} epochs make {run.steps} (raise "
            "epochs or max_size)",
            source="official_args",
        )


def icot_training_speed(
    peer: PeerProcess,
    model: PreTrainedModel,
    run: ICoTRun,
    settings: PeersSettings,
    console: Console | None,
) -> dict[str, Any]:
    """Seconds per optimizer step of the official `train.main()` and of rim's steps on the same
    run (see the module docstring)."""
    peer_s, rim_s = _rounds(
        settings,
        lambda: (peer.call("time", args=run.args)["seconds"], _icot_steps(copy.deepcopy(model), run)),
        console,
    )
    loop = (
        f"iCoT-SI, the official `train.main()` (its fused AdamW) against rim's steps (collate, loss, "
        f"backward, clipping, the trainer's fused AdamW) on `{settings.train_file}` ({len(run.examples)} "
        f"rows, batch {run.batch}, {run.steps} steps a run, the removal schedule and resets of the "
        "official options); a step is the time between two optimizer steps' ends"
    )
    return _summary(loop, run.batch, peer_s, rim_s)


def _icot_steps(model: PreTrainedModel, run: ICoTRun) -> list[float]:
    """rim's iCoT-SI steps over the run (shuffled epochs); the seconds between optimizer steps' ends."""
    rng = random.Random(int(run.args.get("seed", 1234)))
    clip = float(run.args.get("max_grad_norm", DEFAULT_MAX_GRAD_NORM))
    lr = float(run.args.get("lr", OFFICIAL_ICOT_LR))
    model.train()
    optimizer = adamw(model.parameters(), lr, TORCH_WEIGHT_DECAY)
    order = list(range(len(run.examples)))
    stamps = [time.perf_counter()]
    for step in range(run.steps):
        if step % run.per_epoch == 0:
            rng.shuffle(order)
        if run.method.resets_optimizer("icot", step):
            optimizer = adamw(model.parameters(), lr, TORCH_WEIGHT_DECAY)
        start = (step % run.per_epoch) * run.batch
        rows = [run.examples[i] for i in order[start : start + run.batch]]
        _step(model, run.method.collate(rows, "icot", step / run.steps), run.method, clip, optimizer)
        stamps.append(time.perf_counter())
    return [b - a for a, b in zip(stamps[1:], stamps[2:])]  # as the official: from the first step's end


def codi_training_speed(
    peer: PeerProcess,
    model: PreTrainedModel,
    method: CODI,
    examples: list[Example],
    settings: PeersSettings,
    console: Console | None,
) -> dict[str, Any]:
    """Seconds per optimizer step, the official CODI's inner Trainer step against rim's, on the
    same batches of `examples` (the official rows, in rim's form) and the same weights (`model`
    holds the official CODI's). Changes the peer's weights: run after the equality check."""
    rng = random.Random(settings.seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    size = min(settings.batch_size, len(examples))
    batches = [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
    clip = float(settings.official_args.get("max_grad_norm", DEFAULT_MAX_GRAD_NORM))
    ours = copy.deepcopy(model)
    ours.train()
    optimizer = adamw([p for p in ours.parameters() if p.requires_grad], settings.lr, settings.weight_decay)

    def one_round() -> tuple[list[float], list[float]]:
        theirs = peer.call(
            "train",
            batches=batches,
            steps=settings.steps_per_round,
            lr=settings.lr,
            weight_decay=settings.weight_decay,
            max_grad_norm=clip,
        )["seconds"]
        seconds = []
        for step in range(settings.steps_per_round):
            start = time.perf_counter()
            group = [examples[i] for i in batches[step % len(batches)]]
            _step(ours, method.collate(group, "codi", 0.0), method, clip, optimizer)
            seconds.append(time.perf_counter() - start)
        return theirs, seconds

    peer_s, rim_s = _rounds(settings, one_round, console)
    loop = (
        f"CODI, the official Trainer's inner step (collator, forward, backward, clipping, the Trainer's "
        f"default AdamW: torch's, not fused) against rim's step (collate, loss, backward, clipping, the "
        f"trainer's fused AdamW), batch {size} of the first {len(examples)} problems"
    )
    return _summary(loop, size, peer_s, rim_s)


def _step(
    model: PreTrainedModel, batch: dict[str, torch.Tensor], method: ICoT | CODI, clip: float, optimizer
) -> None:
    """One rim training step on a laid-out batch: loss, backward, clipping, AdamW."""
    method.loss(model, batch).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _rounds(
    settings: PeersSettings,
    one_round: Callable[[], tuple[list[float], list[float]]],
    console: Console | None,
) -> tuple[list[float], list[float]]:
    """`warmup` + `repeats` rounds of `one_round` (the official steps' seconds, then rim's); the
    timed rounds' seconds of each side."""
    peer_s: list[float] = []
    rim_s: list[float] = []
    for r in range(settings.warmup + settings.repeats):
        theirs, ours = one_round()
        if r >= settings.warmup:
            peer_s += theirs
            rim_s += ours
        report.say(
            console,
            f"training round {r + 1}: official {statistics.median(theirs):.3f} s/step, "
            f"rim {statistics.median(ours):.3f} s/step",
        )
    return peer_s, rim_s


def _summary(loop: str, batch: int, peer_s: list[float], rim_s: list[float]) -> dict[str, Any]:
    """Medians over the timed rounds' steps."""
    peer_step, rim_step = statistics.median(peer_s), statistics.median(rim_s)
    return {
        "loop": loop,
        "batch": batch,
        "peer_s_per_step": peer_step,
        "rim_s_per_step": rim_step,
        "peer_examples_per_s": batch / peer_step,
        "rim_examples_per_s": batch / rim_step,
        "speedup": peer_step / rim_step,
        "peer_s_repeats": peer_s,
        "rim_s_repeats": rim_s,
    }
