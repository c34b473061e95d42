"""A correctness probe on the memory blocks, and what it buys: picking among the K answers, and
answering after fewer blocks (adaptive compute).

The probe is a logistic regression on the hidden state at the end of each block (`</b>`, one
layer of the model; the same weights for every block) that predicts whether the answer read
out after that block is right. `fit_probe` fits it on half of a labelled file (seeded) and
reports, on the other half, the AUROC per block and how the probe's choice compares with the
last block and with an oracle. The probe is saved in the run (`probe.safetensors`, `probe.json`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from safetensors.torch import load_file, save_file

from rim.common.errors import RimInputError
from rim.common.outputs import follow_umask
from rim.core.generation import left_pad
from rim.data.answers import check_answer
from rim.data.records import Record
from rim.inference.infer import LoadedRun
from rim.methods import BlockConfig
from rim.models.runinfo import model_directory


@torch.inference_mode()
def block_states(run: LoadedRun, questions: list[str], layer: int = -1, batch_size: int = 64) -> torch.Tensor:
    """The hidden state of `layer` at every block's last token, [N, K, H]."""
    if not run.blocks:
        raise RimInputError(f"method {run.method.name} has no memory blocks to probe")
    config = cast(BlockConfig, run.method.config)  # a method with memory blocks
    size = len(run.method.special.block(config.block_size))
    device = next(run.model.parameters()).device
    states = []
    for i in range(0, len(questions), batch_size):
        ids, mask = left_pad(
            [run.method.prompt(run.question_ids(q)) for q in questions[i : i + batch_size]],
            run.method.special.pad,
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = run.model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            output_hidden_states=True,
        )
        ends = [ids.shape[1] - 1 - (run.blocks - k) * size for k in range(1, run.blocks + 1)]
        states.append(out.hidden_states[layer][:, ends].float().cpu())
    return torch.cat(states)


def correctness(answers: list[list[str]], records: list[Record], checker: str) -> torch.Tensor:
    """[N, K] booleans: the answer after each block is right."""
    return torch.tensor(
        [[check_answer(a, r.answer, checker) for a in row] for row, r in zip(answers, records)]
    )


@dataclass
class Probe:
    """Logistic regression on standardised block states."""

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    layer: int

    def confidence(self, features: torch.Tensor) -> torch.Tensor:
        """P(the answer after each block is right), [N, K]."""
        return torch.sigmoid(((features - self.mean) / self.std) @ self.weight + self.bias)

    def save(self, run: str | Path, report: dict) -> None:
        directory = model_directory(run)
        save_file(
            {"weight": self.weight, "bias": self.bias, "mean": self.mean, "std": self.std},
            str(directory / "probe.safetensors"),
        )
        follow_umask(directory / "probe.safetensors")  # safetensors writes 0600
        (directory / "probe.json").write_text(json.dumps({"layer": self.layer, **report}, indent=2) + "\n")

    @classmethod
    def load(cls, run: str | Path) -> Probe:
        directory = model_directory(run)
        if not (directory / "probe.safetensors").is_file():
            raise RimInputError(
                "no probe in this run: fit one with `rim probe fit RUN --data FILE`", source=str(run)
            )
        tensors = load_file(str(directory / "probe.safetensors"))
        layer = json.loads((directory / "probe.json").read_text())["layer"]
        return cls(tensors["weight"], tensors["bias"], tensors["mean"], tensors["std"], layer)


def train_probe(
    features: torch.Tensor, labels: torch.Tensor, layer: int, l2: float = 1e-2, steps: int = 300
) -> Probe:
    """Fit the probe on states [N, K, H] and correctness labels [N, K] (full-batch L-BFGS)."""
    flat, y = features.reshape(-1, features.shape[-1]), labels.reshape(-1).float()
    mean, std = flat.mean(0), flat.std(0).clamp(min=1e-6)
    x = (flat - mean) / std
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weight + bias, y)
        loss = loss + l2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return Probe(weight.detach(), bias.detach(), mean, std, layer)


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Area under the ROC curve (ties count half); None when one class is missing."""
    pos, neg = scores[labels.bool()], scores[~labels.bool()]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).float().mean()
    ties = (pos[:, None] == neg[None, :]).float().mean()
    return float(greater + 0.5 * ties)


@dataclass
class ProbeReport:
    """How the probe does on the held-out half."""

    n_fit: int
    n_test: int
    auroc_per_block: list[float | None]
    last_block_accuracy: float
    selected_accuracy: float
    any_block_accuracy: float
    selected_right_where_some_block_is: float | None


def fit_probe(
    run: LoadedRun,
    records: list[Record],
    checker: str,
    layer: int = -1,
    seed: int = 0,
    source: str | None = None,
) -> tuple[Probe, ProbeReport]:
    """Fit on a seeded half of `records` (read from `source`), report on the other half.

    A fit half whose answers are all right or all wrong is refused: there is nothing to learn."""
    layers = run.model.config.get_text_config().num_hidden_layers  # hidden states 0..layers
    if not -(layers + 1) <= layer <= layers:
        raise RimInputError(
            f"the model has {layers} layer{'s' * (layers != 1)}: give a hidden "
            f"layer from 0 (the embeddings) to {layers}, or from -1 (the last) "
            f"to -{layers + 1}",
            source=f"--layer {layer}",
        )
    if len(records) < 4:
        raise RimInputError("the probe needs at least 4 labelled records")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    fit_idx, test_idx = order[: len(order) // 2], order[len(order) // 2 :]
    questions = [r.question for r in records]
    features = block_states(run, questions, layer)
    labels = correctness(run.answers_every_block(questions), records, checker)
    fit_labels = labels[fit_idx]
    if bool(fit_labels.all()) or not bool(fit_labels.any()):
        verdict, instead = ("right", "harder") if bool(fit_labels.all()) else ("wrong", "easier")
        raise RimInputError(
            f"all {fit_labels.numel()} answers the probe would fit on "
            f"({len(fit_idx)} records x {labels.shape[1]} blocks) are {verdict}: "
            f"it learns from right and wrong ones; use more or {instead} records",
            source=source,
        )
    probe = train_probe(features[fit_idx], labels[fit_idx], layer)
    confidence = probe.confidence(features[test_idx])
    right = labels[test_idx]
    chosen = right[torch.arange(len(test_idx)), confidence.argmax(1)]
    some = right.any(1)
    report = ProbeReport(
        len(fit_idx),
        len(test_idx),
        [auroc(confidence[:, k], right[:, k]) for k in range(right.shape[1])],
        float(right[:, -1].float().mean()),
        float(chosen.float().mean()),
        float(some.float().mean()),
        float(chosen[some].float().mean()) if some.any() else None,
    )
    return probe, report


def adaptive_table(confidence: torch.Tensor, right: torch.Tensor, thresholds: list[float]) -> list[dict]:
    """Accuracy against mean blocks used when answering after the first block whose probe
    confidence reaches the threshold (the last block if none does)."""
    rows = []
    k_max = right.shape[1]
    for t in thresholds:
        reached = confidence >= t
        first = torch.where(reached.any(1), reached.float().argmax(1), torch.full((len(right),), k_max - 1))
        rows.append(
            {
                "threshold": t,
                "mean_blocks": float((first + 1).float().mean()),
                "accuracy": float(right[torch.arange(len(right)), first].float().mean()),
            }
        )
    return rows
