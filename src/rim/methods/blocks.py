"""What the memory-block methods (RiM, pause) share: the prompt is the question and K blocks
`<b> <m>..<m> </b>`, and an answer can be read after any block k from one prefill."""

from __future__ import annotations

from transformers import PreTrainedModel

from rim.core.generation import Generation, greedy_after_prefixes, greedy_generate
from rim.core.segments import Segment
from rim.methods.base import SegmentMethod, SpecialIds
from rim.methods.settings import BlockConfig


class BlockMethod(SegmentMethod):
    """A segment method whose prompt is the question and K memory blocks; prompts and answers
    can use fewer blocks (`blocks=k`) to read the answer after block k."""

    config: BlockConfig

    @property
    def blocks(self) -> int:
        return self.config.blocks

    def prompt(self, question: tuple[int, ...], blocks: int | None = None) -> list[int]:
        n = self.config.blocks if blocks is None else blocks
        return list(question) + list(self.special.block(self.config.block_size)) * n

    def generate(
        self,
        model: PreTrainedModel,
        questions: list[tuple[int, ...]],
        max_new_tokens: int,
        ignore_eos: bool = False,
        blocks: int | None = None,
    ) -> Generation:
        prompts = [self.prompt(q, blocks) for q in questions]
        return greedy_generate(model, prompts, self.special.pad, self.special.eos, max_new_tokens, ignore_eos)

    def generate_every_block(
        self, model: PreTrainedModel, questions: list[tuple[int, ...]], max_new_tokens: int
    ) -> list[Generation]:
        """The answers after block 1, 2, .., K, from one prefill of question + K blocks."""
        size = len(self.special.block(self.config.block_size))
        k_max = self.config.blocks
        return greedy_after_prefixes(
            model,
            [self.prompt(q) for q in questions],
            [(k_max - k) * size for k in range(1, k_max + 1)],
            self.special.pad,
            self.special.eos,
            max_new_tokens,
        )


def question_and_blocks(
    question: tuple[int, ...], n_blocks: int, special: SpecialIds, block_size: int
) -> list[Segment]:
    """Question segment then `n_blocks` memory blocks, each seeing the question and earlier blocks."""
    segs = [Segment(question, kind="question")]
    block = special.block(block_size)
    for k in range(1, n_blocks + 1):
        segs.append(Segment(block, sees=tuple(range(k)), kind="block", block=k))
    return segs
