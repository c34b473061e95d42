"""Pause tokens: K fixed memory blocks trained on the answer only (RiM's stage 2 without stage 1)."""

from __future__ import annotations

from dataclasses import dataclass

from rim.methods.base import Example, SegmentMethod, SpecialIds, question_and_blocks, readout
from rim.segments import Segment


@dataclass(frozen=True)
class Pause(SegmentMethod):
    """Q, K blocks, the answer after the last block."""

    special: SpecialIds
    blocks: int = 8
    block_size: int = 2
    name: str = "pause"
    stages: tuple[str, ...] = ("stage2",)

    def layout(self, ex: Example, stage: str, progress: float) -> list[Segment]:
        segs = question_and_blocks(ex.question, self.blocks, self.special, self.block_size)
        segs.append(readout(ex.answer, self.blocks, 1.0, self.special.eos, "answer"))
        return segs

    def prompt(self, question: tuple[int, ...], blocks: int | None = None) -> list[int]:
        n = self.blocks if blocks is None else blocks
        return list(question) + list(self.special.block(self.block_size)) * n
