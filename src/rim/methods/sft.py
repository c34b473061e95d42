"""Plain supervised fine-tuning: no-CoT (question -> answer) and CoT (question -> steps, answer)."""

from __future__ import annotations

from dataclasses import dataclass

from rim.methods.base import Example, SegmentMethod, SpecialIds, readout
from rim.segments import Segment


@dataclass(frozen=True)
class NoCoT(SegmentMethod):
    """Q; A sees Q."""

    special: SpecialIds
    name: str = "nocot"
    stages: tuple[str, ...] = ("stage2",)

    def target(self, ex: Example) -> tuple[int, ...]:
        """What the model learns to generate after the question."""
        return ex.answer

    def layout(self, ex: Example, stage: str, progress: float) -> list[Segment]:
        return [Segment(ex.question, kind="question"),
                readout(self.target(ex), 0, 1.0, self.special.eos, "answer")]

    def prompt(self, question: tuple[int, ...], blocks: int | None = None) -> list[int]:
        return list(question)


@dataclass(frozen=True)
class CoT(NoCoT):
    """Q; C sees Q, where C is the steps and the answer as one generated chain."""

    name: str = "cot"

    def target(self, ex: Example) -> tuple[int, ...]:
        return ex.cot
