"""RiM: memory blocks after the question, trained in two stages with every readout in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field

from rim.core.curriculum import answer_weights, fading_progress, fading_weight
from rim.core.encoding import Example
from rim.core.segments import Segment
from rim.methods.base import SpecialIds, readout
from rim.methods.blocks import BlockMethod, question_and_blocks
from rim.methods.settings import RiMConfig


@dataclass(frozen=True)
class RiM(BlockMethod):
    """Stage 1 (grounding) reads out step t+1 after t blocks, fading earliest-first; stage 2
    (refinement) reads out the answer after every one of K blocks with increasing weights."""

    Config = RiMConfig
    special: SpecialIds
    config: RiMConfig = field(default_factory=RiMConfig)
    stages: tuple[str, ...] = ("stage1", "stage2")
    raises_dropout: tuple[str, ...] = ("stage2",)

    def layout(self, ex: Example, stage: str, fraction: float) -> list[Segment]:
        if stage == "stage1":
            cfg = self.config
            return self.grounding(ex, fading_progress(fraction, cfg.fade_start, cfg.fade_end))
        if stage == "stage2":
            return self.refinement(ex)
        raise ValueError(f"unknown stage {stage!r}")

    def grounding(self, ex: Example, progress: float) -> list[Segment]:
        """Q, blocks 1..T, then readout t (t = 0..T) of r_{t+1} (r_{T+1} = answer), the step
        readouts faded at fading `progress` in [0, 1]."""
        n = len(ex.steps)
        segs = question_and_blocks(ex.question, n, self.special, self.config.block_size)
        for t, step in enumerate(ex.steps):
            w = fading_weight(t, n, progress)
            if w > 0:
                segs.append(readout(step, t, w, self.special.eos, "step"))
        segs.append(readout(ex.answer, n, 1.0, self.special.eos, "answer"))
        return segs

    def refinement(self, ex: Example) -> list[Segment]:
        """Q, blocks 1..K, then the answer after every block k with weight alpha_k."""
        return refinement(ex, self.config.blocks, self.config.block_size, self.special)


def refinement(ex: Example, k_max: int, block_size: int, special: SpecialIds) -> list[Segment]:
    """RiM's stage-2 layout (also pause tokens'): Q, K blocks, the answer after every block k
    with weight alpha_k."""
    segs = question_and_blocks(ex.question, k_max, special, block_size)
    for k, w in enumerate(answer_weights(k_max), start=1):
        segs.append(readout(ex.answer, k, w, special.eos, "answer"))
    return segs
