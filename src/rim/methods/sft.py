"""Plain supervised fine-tuning: no-CoT (question -> answer) and CoT (question -> steps, answer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rim.core.encoding import Example
from rim.core.segments import Segment
from rim.methods.base import SegmentMethod, SpecialIds, chain_answer, readout
from rim.methods.settings import CoTConfig, MethodConfig, NoCoTConfig


@dataclass(frozen=True)
class NoCoT(SegmentMethod):
    """Q; A sees Q."""

    Config: ClassVar[type[MethodConfig]] = NoCoTConfig
    special: SpecialIds
    config: MethodConfig = field(default_factory=NoCoTConfig)

    def layout(self, ex: Example, stage: str, fraction: float) -> list[Segment]:
        return [
            Segment(ex.question, kind="question"),
            readout(self.target(ex), 0, 1.0, self.special.eos, "answer"),
        ]

    def prompt(self, question: tuple[int, ...]) -> list[int]:
        return list(question)


@dataclass(frozen=True)
class CoT(NoCoT):
    """Q; C sees Q, where C is the steps and the answer as one generated chain."""

    Config = CoTConfig
    config: MethodConfig = field(default_factory=CoTConfig)
    writes_chain: ClassVar[bool] = True

    def target(self, ex: Example) -> tuple[int, ...]:
        return ex.cot

    def answer_text(self, text: str) -> str:
        return chain_answer(text)
