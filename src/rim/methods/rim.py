"""RiM: memory blocks after the question, trained in two stages with every readout in one pass."""

from __future__ import annotations

from dataclasses import dataclass

from rim.curriculum import answer_weights, fading_weight
from rim.methods.base import Example, SegmentMethod, SpecialIds, question_and_blocks, readout
from rim.segments import Segment


@dataclass(frozen=True)
class RiM(SegmentMethod):
    """Stage 1 (grounding) reads out step t+1 after t blocks, fading earliest-first; stage 2
    (refinement) reads out the answer after every one of K blocks with increasing weights."""

    special: SpecialIds
    blocks: int = 8
    block_size: int = 2
    name: str = "rim"
    stages: tuple[str, ...] = ("stage1", "stage2")

    def layout(self, ex: Example, stage: str, progress: float) -> list[Segment]:
        if stage == "stage1":
            return self.grounding(ex, progress)
        if stage == "stage2":
            return self.refinement(ex)
        raise ValueError(f"unknown stage {stage!r}")

    def grounding(self, ex: Example, progress: float) -> list[Segment]:
        """Q, blocks 1..T, then readout t (t = 0..T) of r_{t+1} (r_{T+1} = answer)."""
        n = len(ex.steps)
        segs = question_and_blocks(ex.question, n, self.special, self.block_size)
        for t, step in enumerate(ex.steps):
            w = fading_weight(t, n, progress)
            if w > 0:
                segs.append(readout(step, t, w, self.special.eos, "step"))
        segs.append(readout(ex.answer, n, 1.0, self.special.eos, "answer"))
        return segs

    def refinement(self, ex: Example) -> list[Segment]:
        """Q, blocks 1..K, then the answer after every block k with weight alpha_k."""
        segs = question_and_blocks(ex.question, self.blocks, self.special, self.block_size)
        for k, w in enumerate(answer_weights(self.blocks), start=1):
            segs.append(readout(ex.answer, k, w, self.special.eos, "answer"))
        return segs

    def prompt(self, question: tuple[int, ...], blocks: int | None = None) -> list[int]:
        n = self.blocks if blocks is None else blocks
        return list(question) + list(self.special.block(self.block_size)) * n
