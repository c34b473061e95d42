"""What every method shares: tokenised examples, the special tokens, the method interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rim.segments import Segment

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
    """A training method: how an example is laid out per stage, and its inference prompt."""

    name: str
    stages: tuple[str, ...]

    def layout(self, ex: Example, stage: str, progress: float) -> list[Segment]:
        """Segments of one training sequence for `stage` at curriculum progress in [0, 1]."""
        ...

    def prompt(self, question: tuple[int, ...], blocks: int | None = None) -> list[int]:
        """Inference prompt for a question, optionally with a different number of blocks."""
        ...


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
