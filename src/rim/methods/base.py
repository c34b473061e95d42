"""What every method shares: tokenised examples, the special tokens, the method interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import PreTrainedModel

from rim.decoding import Generation, greedy_generate
from rim.segments import Segment, collate, pack, weighted_loss

COT_SEPARATOR = "####"


@dataclass(frozen=True)
class SpecialIds:
    """Token ids a layout needs: block open `<b>`, memory `<m>`, block close `</b>`, end, pad."""

    open: int
    memory: int
    close: int
    eos: int
    pad: int

    def block(self, size: int) -> tuple[int, ...]:
        """One memory block: `<b>` + size x `<m>` + `</b>`."""
        return (self.open, *([self.memory] * size), self.close)


@dataclass(frozen=True)
class Example:
    """A record after tokenisation. Readout texts (steps, answer, cot) carry a leading space."""

    question: tuple[int, ...]
    steps: tuple[tuple[int, ...], ...]
    answer: tuple[int, ...]
    cot: tuple[int, ...]


class Method(Protocol):
    """A training method: its stages, how a batch is laid out and scored, how it answers."""

    name: str
    stages: tuple[str, ...]
    special: SpecialIds

    def settings(self, stage: str) -> str:
        """Which trainer section (`stage1` or `stage2`) holds the settings of `stage`."""
        ...

    def collate(self, batch: list[Example], stage: str, progress: float) -> dict[str, torch.Tensor]:
        """Tensors of one training batch for `stage` at curriculum progress in [0, 1]."""
        ...

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of a collated batch."""
        ...

    def sequence_length(self, ex: Example, stage: str) -> int:
        """Positions the longest training sequence of `ex` at `stage` takes."""
        ...

    def prompt(self, question: tuple[int, ...], blocks: int | None = None) -> list[int]:
        """Inference prompt ids for a question (optionally with another number of blocks)."""
        ...

    def prompt_length(self, question: tuple[int, ...]) -> int:
        """Positions the inference input takes before the first generated token."""
        ...

    def generate(self, model: PreTrainedModel, questions: list[tuple[int, ...]],
                 blocks: int | None, max_new_tokens: int, ignore_eos: bool = False) -> Generation:
        """Greedy answers (token ids) to tokenised questions, batched; `ignore_eos` generates
        exactly `max_new_tokens` (benchmarks)."""
        ...


class SegmentMethod:
    """Base of the methods whose every training sequence is a list of segments (all but Coconut):
    one forward pass with the packed mask, the weighted readout loss, prompt + greedy decoding."""

    special: SpecialIds
    stages: tuple[str, ...] = ("stage2",)

    def layout(self, ex: Example, stage: str, progress: float) -> list[Segment]:
        """Segments of one training sequence for `stage` at curriculum progress in [0, 1]."""
        raise NotImplementedError

    def prompt(self, question: tuple[int, ...], blocks: int | None = None) -> list[int]:
        """Inference prompt ids for a question."""
        raise NotImplementedError

    def settings(self, stage: str) -> str:
        return "stage1" if stage == "stage1" else "stage2"

    def sequence_length(self, ex: Example, stage: str) -> int:
        return max(pack(self.layout(ex, stage, 0.0)).position_ids) + 1

    def prompt_length(self, question: tuple[int, ...]) -> int:
        return len(self.prompt(question))

    def collate(self, batch: list[Example], stage: str, progress: float) -> dict[str, torch.Tensor]:
        return collate([pack(self.layout(ex, stage, progress)) for ex in batch], self.special.pad)

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
        return weighted_loss(logits, batch["labels"], batch["weights"])

    def generate(self, model: PreTrainedModel, questions: list[tuple[int, ...]],
                 blocks: int | None, max_new_tokens: int, ignore_eos: bool = False) -> Generation:
        prompts = [self.prompt(q, blocks) for q in questions]
        return greedy_generate(model, prompts, self.special.pad, self.special.eos, max_new_tokens,
                               ignore_eos)


def question_and_blocks(
    question: tuple[int, ...], n_blocks: int, special: SpecialIds, block_size: int
) -> list[Segment]:
    """Question segment then `n_blocks` memory blocks, each seeing the question and earlier blocks."""
    segs = [Segment(question, kind="question")]
    block = special.block(block_size)
    for k in range(1, n_blocks + 1):
        segs.append(Segment(block, sees=tuple(range(k)), kind="block", block=k))
    return segs


def readout(ids: tuple[int, ...], n_blocks: int, weight: float, eos: int, kind: str) -> Segment:
    """A readout after `n_blocks` blocks: sees the question (segment 0) and blocks 1..n_blocks."""
    return Segment(ids, sees=tuple(range(n_blocks + 1)), weight=weight, end_id=eos, kind=kind,
                   block=n_blocks)
