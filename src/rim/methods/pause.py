"""Pause tokens: K fixed memory blocks trained on the answer only (RiM's stage 2 without stage 1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rim.encoding import Example
from rim.methods.base import BlockConfig, BlockMethod, SpecialIds, question_and_blocks, readout
from rim.segments import Segment


class PauseConfig(BlockConfig):
    """Pause tokens' settings: K blocks of M memory tokens."""

    name: Literal["pause"] = "pause"


@dataclass(frozen=True)
class Pause(BlockMethod):
    """Q, K blocks, the answer after the last block."""

    Config = PauseConfig
    special: SpecialIds
    config: PauseConfig = field(default_factory=PauseConfig)

    def layout(self, ex: Example, stage: str, fraction: float) -> list[Segment]:
        k = self.config.blocks
        segs = question_and_blocks(ex.question, k, self.special, self.config.block_size)
        segs.append(readout(ex.answer, k, 1.0, self.special.eos, "answer"))
        return segs
