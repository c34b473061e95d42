"""The iCoT-SI checks of `rim bench peers`: the official `train.main()` runs on an iCoT text file
(recorded by `peer_icot.py`), and rim's iCoT-SI is asked the same questions step by step.

- schedule: at every step of the official run and for every row, the chain tokens that remain
  after the official removal (its count and its own smoothing draw) against rim's
  `target_at(example, removal_count(step) + the same draw)`, with rim reading the same file
  through its own reader and tokenising it the way rim does (` #### answer` after the chain,
  where the official text has EOS separators); the optimizer resets; the offset distribution;
- loss: the official loss at every step (AdamW at learning rate 0, so every step sees the same
  weights) against rim's iCoT-SI loss on the same token ids and removals, and every parameter's
  gradient at the steps asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rim.bench import report
from rim.bench.peer_process import PeerProcess
from rim.bench.settings import PeersSettings
from rim.core.encoding import Example, chain_prefix, encode
from rim.core.segments import SpecialIds, collate, pack
from rim.data.readers import read_records
from rim.methods import make_method
from rim.methods.icot import ICoT

if TYPE_CHECKING:
    from rich.console import Console

TOLERANCE = 1e-5
"""Largest difference of loss and gradients counted as equal (fp32), relative to the largest
magnitude where that is above 1."""


def icot_method(special: SpecialIds, args: dict[str, Any], **extra: Any) -> ICoT:
    """rim's iCoT-SI with the official run's options (train.py's command-line names)."""
    beyond = args.get("remove_all_when_remove_beyond", "inf")
    method = make_method(
        "icot",
        special,
        remove_per_epoch=float(args.get("remove_per_epoch", 8)),
        remove_start_from=int(args.get("remove_start_from", 0)),
        remove_all_when_remove_beyond=None if str(beyond) == "inf" else int(beyond),
        removal_smoothing_lambda=float(args.get("removal_smoothing_lambda", "inf")),
        reset_optimizer=bool(args.get("reset_optimizer", False)),
        **extra,
    )
    assert isinstance(method, ICoT)
    return method


def eos_special(eos: int) -> SpecialIds:
    """The official iCoT-SI's one separator: EOS everywhere (it has no special tokens)."""
    return SpecialIds(open=eos, memory=eos, close=eos, eos=eos, pad=eos)


def split_row(row: list[int], eos: int) -> tuple[list[int], list[int], list[int]]:
    """An official row `question <eos> chain <eos> answer <eos>`: question with its EOS, the
    chain, and the rest from the second EOS to the end (without the last EOS)."""
    first = row.index(eos)
    second = row.index(eos, first + 1)
    third = row.index(eos, second + 1)
    return row[: first + 1], row[first + 1 : second], row[second:third]


@dataclass
class ICoTRun:
    """The official iCoT-SI run the settings describe, in rim's terms: its options (the file's
    path resolved), the file's rows as rim encodes them (the first `max_size`, as the official
    `--max_size`), the batch size, steps per epoch and in all, and rim's iCoT-SI bound to it."""

    args: dict[str, Any]
    special: SpecialIds
    examples: list[Example]
    batch: int
    per_epoch: int
    steps: int
    method: ICoT


def icot_run(settings: PeersSettings, tok: PreTrainedTokenizerBase) -> ICoTRun:
    """Read and encode `train_file` once (every check of the run reads it) and lay the run out."""
    if settings.train_file is None:
        raise ValueError("the iCoT checks need `train_file` (an iCoT text file)")
    args = {**settings.official_args, "train_path": str(Path(settings.train_file).resolve())}
    records = read_records(settings.train_file)
    if int(args.get("max_size", -1)) > 0:
        records = records[: int(args["max_size"])]  # the official `--max_size`: the first lines
    examples = [encode(record, tok) for record in records]
    batch = int(args.get("batch_size", 32))
    per_epoch = math.ceil(len(examples) / batch)
    steps = per_epoch * int(args.get("epochs", 1))
    special = eos_special(int(tok.eos_token_id))
    method = icot_method(special, args).for_stage("icot", steps, per_epoch, int(args.get("seed", 1234)))
    return ICoTRun(args, special, examples, batch, per_epoch, steps, method)


def run_icot(
    peer: PeerProcess,
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    run: ICoTRun,
    settings: PeersSettings,
    tmp: Path,
    console: Console | None,
) -> dict[str, Any]:
    """Run the official training of `run` and compare (see the module docstring)."""
    args, special, encoded = run.args, run.special, run.examples
    grad_steps = sorted(set(settings.icot_grad_steps))
    reply = peer.call("run", args=args, grad_steps=grad_steps, out=str(tmp / "icot-grads.pt"))
    their_grads = torch.load(tmp / "icot-grads.pt", weights_only=True)
    eos = special.eos
    rows = reply["rows"]
    if len(rows) != len(encoded):
        raise ValueError(f"the official reader kept {len(rows)} rows of {len(encoded)} records")
    index = {tuple(row): i for i, row in enumerate(rows)}
    spe = run.per_epoch
    total = len(reply["steps"])
    method = run.method.for_stage("icot", total, spe, int(args.get("seed", 1234)))  # the steps it took
    loaders = _loaders(rows, encoded, tok, eos)
    schedule = _schedule(reply, index, encoded, tok, method, spe, eos)
    losses = _losses(reply, model, special, method, their_grads, grad_steps, spe, eos)
    resets = _resets(reply, method, total, eos)
    distribution = method.offset_distribution()
    dist_diff = max(abs(a - b) for a, b in zip(distribution, reply["distribution"], strict=True))
    result = {
        "file": settings.train_file,
        "args": args,
        "steps": total,
        "steps_per_epoch": spe,
        "loaders": loaders,
        "schedule": schedule,
        "loss": losses,
        "resets": resets,
        "distribution_diff": dist_diff,
    }
    report.say(
        console,
        f"icot: {total} steps; chains {loaders['same']} same, {loaders['trailing_space']} with the "
        f"official trailing space, {loaders['different']} different; removals {schedule['equal']} of "
        f"{schedule['rows']} equal; loss diff {losses['loss_diff']:.1e} over {losses['steps']} steps, "
        f"ids equal {losses['ids_equal']}; resets {resets['official']} official, {resets['rim']} rim",
    )
    return result


def _loaders(
    rows: list[list[int]], encoded: list[Example], tok: PreTrainedTokenizerBase, eos: int
) -> dict[str, Any]:
    """Each official chain against rim's (the official one may end in a lone-space token)."""
    counts = {"same": 0, "trailing_space": 0, "different": 0}
    first_difference = None
    for i, (row, ex) in enumerate(zip(rows, encoded, strict=True)):
        theirs = split_row(row, eos)[1]
        ours = list(chain_prefix(ex, len(ex.steps)))
        if theirs == ours:
            counts["same"] += 1
        elif theirs[:-1] == ours and tok.decode(theirs[-1:]) == " ":
            counts["trailing_space"] += 1
        else:
            counts["different"] += 1
            first_difference = first_difference or {"line": i + 1, "official": theirs, "rim": ours}
    return {**counts, "first_difference": first_difference}


def _schedule(
    reply: dict,
    index: dict,
    encoded: list[Example],
    tok: PreTrainedTokenizerBase,
    method: ICoT,
    spe: int,
    eos: int,
) -> dict[str, Any]:
    """Per step and row: the chain tokens left by the official code against rim's."""
    checked = equal = offset_rows = 0
    first_difference = None
    for step, rec in enumerate(reply["steps"]):
        offsets = rec["offsets"] or [0] * len(rec["before"])
        for before, after, offset in zip(rec["before"], rec["after"], offsets, strict=True):
            i = index[tuple(before)]
            chain = split_row(before, eos)[1]
            left = split_row(after, eos)[1]
            if left and chain[-1:] == left[-1:] and tok.decode(chain[-1:]) == " ":
                left = left[:-1]  # the official chain's lone-space token (not in rim's)
            ex = encoded[i]
            removed = method.removal_count(step, spe) + offset
            target = method.target_at(ex, removed)
            ours = list(target[: len(target) - (len(ex.cot) - len(chain_prefix(ex, len(ex.steps))))])
            checked += 1
            offset_rows += offset > 0
            if ours == left:
                equal += 1
            elif first_difference is None:
                first_difference = {
                    "step": step,
                    "line": i + 1,
                    "official": left,
                    "rim": ours,
                    "offset": offset,
                }
    return {"rows": checked, "equal": equal, "with_offset": offset_rows, "first_difference": first_difference}


def _losses(
    reply: dict,
    model: PreTrainedModel,
    special: SpecialIds,
    method: ICoT,
    their_grads: dict,
    grad_steps: list[int],
    spe: int,
    eos: int,
) -> dict[str, Any]:
    """rim's loss on the official token ids, each row with the removal rim schedules for it."""
    model.eval()
    loss_diff = loss_max = grad_diff = grad_max = 0.0
    ids_equal = True
    for step, rec in enumerate(reply["steps"]):
        offsets = rec["offsets"] or [0] * len(rec["before"])
        layouts = []
        for before, offset in zip(rec["before"], offsets, strict=True):
            question, chain, rest = split_row(before, eos)
            ex = Example(tuple(question), (tuple(chain),), tuple(rest), tuple(chain + rest))
            removed = method.removal_count(step, spe) + offset
            layouts.append(pack(method.layout_at(ex, removed)))
        batch = collate(layouts, special.pad)
        theirs_ids = [split_row(after, eos) for after in rec["after"]]
        ids_equal &= all(
            [*packed.input_ids, eos] == [*q, *c, *r, eos]
            for packed, (q, c, r) in zip(layouts, theirs_ids, strict=True)
        )
        model.zero_grad(set_to_none=True)
        loss = method.loss(model, batch)
        loss.backward()
        value = float(loss.detach())
        loss_diff = max(loss_diff, abs(value - rec["loss"]))
        loss_max = max(loss_max, abs(value))
        if step in grad_steps:
            for name, param in model.named_parameters():
                if param.grad is not None:
                    grad_diff = max(grad_diff, float((param.grad - their_grads[step][name]).abs().max()))
                    grad_max = max(grad_max, float(param.grad.abs().max()))
    model.zero_grad(set_to_none=True)
    equal = ids_equal and loss_diff <= TOLERANCE * max(1.0, loss_max)
    equal = equal and grad_diff <= TOLERANCE * max(1.0, grad_max)
    return {
        "steps": len(reply["steps"]),
        "ids_equal": ids_equal,
        "loss_diff": loss_diff,
        "loss_max": loss_max,
        "grad_steps": grad_steps,
        "grad_diff": grad_diff,
        "grad_max": grad_max,
        "equal": equal,
    }


def _resets(reply: dict, method: ICoT, total: int, eos: int) -> dict[str, Any]:
    """The steps a new AdamW starts at: official against rim's; a step where only the official
    skips the reset because the batch before had every chain removed is the documented departure."""
    official = set(reply["resets"])
    ours = {s for s in range(total) if method.resets_optimizer("icot", s)}
    all_removed = set()
    for step, rec in enumerate(reply["steps"]):
        if all(not split_row(after, eos)[1] for after in rec["after"]):
            all_removed.add(step + 1)
    unexplained = sorted((official ^ ours) - (ours - official & all_removed))
    return {
        "official": sorted(official),
        "rim": sorted(ours),
        "skipped_after_all_removed": sorted(ours - official & all_removed),
        "unexplained": unexplained,
        "equal": not unexplained,
    }
