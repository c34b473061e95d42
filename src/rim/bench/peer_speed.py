"""The speed half of `rim bench peers`: optimizer steps on the same batches in rounds that
alternate the peer and rim, and time to the first answer token and answers per second (the
peer's Coconut at batch 1, rim's Coconut, RiM and no-CoT at each batch size)."""

from __future__ import annotations

import random
import statistics
import time
from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedModel

from rim.bench import report
from rim.bench.common import build_method
from rim.bench.peer_batch import peer_rows, random_examples, rim_coconut
from rim.bench.peer_checks import official_answers
from rim.bench.peer_process import PeerProcess
from rim.bench.settings import PeersSettings
from rim.core.losses import mean_readout_loss
from rim.core.segments import SpecialIds
from rim.training.optimizer import adamw

if TYPE_CHECKING:
    from rich.console import Console


def training_speed(
    peer: PeerProcess,
    model: PreTrainedModel,
    special: SpecialIds,
    s: PeersSettings,
    plain: tuple[int, int],
    rng: random.Random,
    console: Console | None,
) -> dict[str, Any]:
    """Seconds per optimizer step on the same batches, rounds alternating peer and rim. A timed
    rim step lays its rows out (`collate`: the curriculum stage's sequences, then padding), as
    rim's training loop does every step; a timed official step only pads (`MyCollator`), its rows
    laid out before the clock starts, as `run.py` lays them out once an epoch. Both then run
    forward, backward and an AdamW step (each its own: `run.py`'s torch default, the fused one
    of rim's trainer).

    Where rim's step goes: its collate, forward + backward and optimizer parts, and beside each
    timed step (untimed in it, and without an update) the one-pass floor: forward + backward of
    the same token ids (`<m>` where the thoughts go) in one causal pass, head at the same
    supervised positions. No Coconut can do less work; what rim spends above it is the cost of
    running the thoughts as sequential passes."""
    method = rim_coconut(special, s, s.speed_c)
    k = min(s.speed_stage, s.latent_stages)
    stage = f"coconut{k}"
    batches = [random_examples(s.batch_size, s, plain, rng) for _ in range(s.steps_per_round)]
    optimizer = adamw(model.parameters(), s.lr, s.weight_decay)  # as rim's trainer builds it
    model.train()
    peer_s: list[float] = []
    rim_s: list[float] = []
    parts: dict[str, list[float]] = {"collate": [], "forward_backward": [], "optimizer": []}
    floors: list[float] = []
    peer_losses: list[float] = []
    rim_losses: list[float] = []
    for r in range(s.warmup + s.repeats):
        reply = peer.call(
            "train",
            batches=[peer_rows(b, special) for b in batches],
            stage=k,
            c=s.speed_c,
            max_latent_stage=s.latent_stages,
            pad_latent_to_max=True,
            steps=s.steps_per_round,
            lr=s.lr,
            weight_decay=s.weight_decay,
        )
        seconds, losses = [], []
        for step in range(s.steps_per_round):
            start = time.perf_counter()
            batch = method.collate(batches[step], stage, 0.0)
            collated = time.perf_counter()
            loss = method.loss(model, batch)
            loss.backward()
            backward = time.perf_counter()
            optimizer.step()
            optimizer.zero_grad()
            end = time.perf_counter()
            seconds.append(end - start)
            losses.append(float(loss.detach()))
            floor = _one_pass_floor(model, batch)
            if r >= s.warmup:
                parts["collate"].append(collated - start)
                parts["forward_backward"].append(backward - collated)
                parts["optimizer"].append(end - backward)
                floors.append(floor)
        peer_losses += reply["losses"]
        rim_losses += losses
        if r >= s.warmup:
            peer_s += reply["seconds"]
            rim_s += seconds
        report.say(
            console,
            f"training round {r + 1}: official {statistics.median(reply['seconds']):.3f} s/step, "
            f"rim {statistics.median(seconds):.3f} s/step",
        )
    peer_step, rim_step = statistics.median(peer_s), statistics.median(rim_s)
    return {
        "stage": stage,
        "batch": s.batch_size,
        "thoughts": k * s.speed_c,
        "peer_s_per_step": peer_step,
        "rim_s_per_step": rim_step,
        "peer_examples_per_s": s.batch_size / peer_step,
        "rim_examples_per_s": s.batch_size / rim_step,
        "speedup": peer_step / rim_step,
        "first_loss_diff": abs(peer_losses[0] - rim_losses[0]),
        "loss_diff_max": max(abs(a - b) for a, b in zip(peer_losses, rim_losses, strict=True)),
        "peer_s_repeats": peer_s,
        "rim_s_repeats": rim_s,
        "rim_parts_s": {name: statistics.median(v) for name, v in parts.items()},
        "floor_forward_backward_s": statistics.median(floors),
        "rim_over_floor": statistics.median(parts["forward_backward"]) / statistics.median(floors),
    }


def _one_pass_floor(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> float:
    """Seconds of forward + backward of the batch's token ids in one causal pass (the thought
    columns hold `<m>` ids), head at the supervised positions; the gradients are dropped."""
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
    start = time.perf_counter()
    mean_readout_loss(model, inputs, batch["labels"]).backward()
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return seconds


def inference_speed(
    peer: PeerProcess,
    model: PreTrainedModel,
    special: SpecialIds,
    questions: list[tuple[int, ...]],
    s: PeersSettings,
) -> list[dict[str, Any]]:
    """Time to the first answer token and answers per second: the peer's Coconut at batch 1;
    rim's Coconut, RiM and no-CoT at each of `batches`. The questions are split into
    `warmup + repeats` rounds; each round runs the official code on its questions, then every
    rim method at batch 1 on the same questions and once at each larger batch, so that other
    load on the machine spreads over both. Medians over the timed rounds' answers (batch 1) or
    rounds (larger batches)."""
    model.eval()
    methods = {
        "coconut": rim_coconut(special, s, s.speed_c),
        "rim": build_method("rim", special),
        "nocot": build_method("nocot", special),
    }
    rounds = s.warmup + s.repeats
    chunks = [questions[i::rounds] for i in range(rounds)]
    official: dict[str, list[float]] = {"ttft": [], "total": [], "tokens": []}
    timings: dict[tuple[str, int], dict[str, list[float]]] = {
        (name, batch): {"ttft": [], "total": [], "tokens": []} for name in methods for batch in s.batches
    }
    for r, chunk in enumerate(c for c in chunks if c):
        timed = official_answers(peer, chunk, s, ignore_eos=True)
        if r >= s.warmup:
            official["ttft"] += timed["ttft_s"]
            official["total"] += timed["total_s"]
            official["tokens"] += [len(a) for a in timed["answers"]]
        for name, method in methods.items():
            for batch in s.batches:
                groups = [[q] for q in chunk] if batch == 1 else [_cycle(questions, batch)]
                for group in groups:
                    gen = method.generate(model, group, s.max_new_tokens, ignore_eos=True)
                    if r >= s.warmup:
                        t = timings[(name, batch)]
                        t["ttft"].append(gen.ttft_s)
                        t["total"].append(gen.total_s)
                        t["tokens"].append(statistics.mean(len(row) for row in gen.ids))
    rows = [
        {
            "implementation": f"official {s.peer}",
            "method": "coconut",
            "batch": 1,
            "ttft_ms": 1000 * statistics.median(official["ttft"]),
            "answers_per_s": 1 / statistics.median(official["total"]),
            "tokens": statistics.mean(official["tokens"]),
        }
    ]
    for (name, batch), t in timings.items():
        rows.append(
            {
                "implementation": "rim",
                "method": name,
                "batch": batch,
                "ttft_ms": 1000 * statistics.median(t["ttft"]),
                "answers_per_s": batch / statistics.median(t["total"]),
                "tokens": statistics.mean(t["tokens"]),
            }
        )
    return rows


def _cycle(questions: list[tuple[int, ...]], n: int) -> list[tuple[int, ...]]:
    return [questions[i % len(questions)] for i in range(n)]
