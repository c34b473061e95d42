"""RiM: memory blocks after the question, trained in two stages with every readout in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, model_validator

from rim.curriculum import answer_weights, fading_progress, fading_weight
from rim.encoding import Example
from rim.methods.base import BlockConfig, BlockMethod, SpecialIds, question_and_blocks, readout
from rim.segments import Segment


class RiMConfig(BlockConfig):
    """RiM's settings: K blocks of M memory tokens, and when stage 1's step readouts fade."""

    name: Literal["rim"] = "rim"
    fade_start: float = Field(0.0, ge=0, le=1)
    """Stage-1 fading starts at this fraction of stage 1."""
    fade_end: float = Field(1.0, ge=0, le=1)
    """... and ends here (all step readouts at weight 0)."""

    @model_validator(mode="after")
    def _fading_window(self) -> RiMConfig:
        if self.fade_start > self.fade_end:
            raise ValueError("fade_start must not be after fade_end")
        return self


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
        k_max = self.config.blocks
        segs = question_and_blocks(ex.question, k_max, self.special, self.config.block_size)
        for k, w in enumerate(answer_weights(k_max), start=1):
            segs.append(readout(ex.answer, k, w, self.special.eos, "answer"))
        return segs
