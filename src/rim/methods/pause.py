"""Pause tokens: RiM's stage 2 without stage 1, the baseline that isolates what grounding adds.

K fixed memory blocks after the question; the answer is read out after every block with RiM's
stage-2 weights (`method.readout: every_block`, the default) or once after block K (`last`).
The one stage trains with RiM's stage-2 settings (`trainer.stage2`: RiM's fine-tuning, learning
rate, warm-up, dropout) for RiM's whole budget: the steps of `trainer.stage1` and
`trainer.stage2` together. So a pause run and a RiM run of one config differ only in RiM's
grounding stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rim.core.encoding import Example
from rim.core.segments import Segment
from rim.methods.base import SpecialIds, readout
from rim.methods.blocks import BlockMethod, question_and_blocks
from rim.methods.rim import refinement
from rim.methods.settings import PauseConfig


@dataclass(frozen=True)
class Pause(BlockMethod):
    """Q, K blocks, the answer after every block (or after the last)."""

    Config = PauseConfig
    special: SpecialIds
    config: PauseConfig = field(default_factory=PauseConfig)
    stages: tuple[str, ...] = ("stage2",)

    def budget(self, stage: str) -> tuple[str, ...]:
        """RiM's whole budget: the steps of stage 1 and stage 2."""
        self.settings(stage)
        return ("stage1", "stage2")

    def layout(self, ex: Example, stage: str, fraction: float) -> list[Segment]:
        k = self.config.blocks
        if self.config.readout == "every_block":
            return refinement(ex, k, self.config.block_size, self.special)
        segs = question_and_blocks(ex.question, k, self.special, self.config.block_size)
        segs.append(readout(ex.answer, k, 1.0, self.special.eos, "answer"))
        return segs
