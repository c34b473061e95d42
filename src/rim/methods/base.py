"""What every method shares: the special tokens and the method interface (its settings type:
`rim.methods.settings`).

A method is one file: a class that lays out training batches, scores them and answers; its
settings class (a `MethodConfig` whose `name` is a literal) is in `rim.methods.settings`.
Callers learn all they need from the interface: `stages`, `blocks` (K, or 0 without memory
blocks), `writes_chain` (a text chain precedes the answer), `answer_text` (the answer part of a
generation).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
from transformers import PreTrainedModel

from rim.core.encoding import Example
from rim.core.generation import Generation, greedy_generate
from rim.core.losses import weighted_readout_loss
from rim.core.segments import Segment, SpecialIds, collate, pack, pack_rows
from rim.data.answers import answer_part
from rim.methods.settings import MethodConfig
from rim.methods.stepping import StageSchedule


class Method(Protocol):
    """A training method: its stages, how a batch is laid out and scored, how it answers."""

    Config: ClassVar[type[MethodConfig]]
    config: MethodConfig
    special: SpecialIds

    @property
    def name(self) -> str: ...

    @property
    def stages(self) -> tuple[str, ...]:
        """Names of the training stages, in order."""
        ...

    @property
    def blocks(self) -> int:
        """K, the memory blocks of the prompt (0 for methods without blocks)."""
        ...

    @property
    def writes_chain(self) -> bool:
        """True if the model writes a text chain (steps, separator) before the answer."""
        ...

    def settings(self, stage: str) -> str:
        """Which trainer section (`trainer.stage1`, `trainer.baseline`, ...) holds the settings
        of `stage`."""
        ...

    def budget(self, stage: str) -> tuple[str, ...]:
        """The trainer sections whose steps `stage` trains, together (its own section, or
        RiM's stage 1 and stage 2 for pause tokens)."""
        ...

    @property
    def supports_packing(self) -> bool:
        """True if `collate` takes `pack_length` (several examples per row)."""
        ...

    @property
    def raises_dropout(self) -> tuple[str, ...]:
        """Stages whose recipe asks for more dropout than the stage before (RiM's stage 2)."""
        ...

    def selectable(self, stage: str) -> bool:
        """True if an evaluation during `stage` may be kept as the best model
        (`trainer.select: best`): the stage trains the layout the method is reported in."""
        ...

    def answer_budget(self, examples: list[Example]) -> int:
        """Tokens to generate for the longest answer (or chain and answer) of `examples`."""
        ...

    def collate(self, batch: list[Example], stage: str, fraction: float) -> dict[str, torch.Tensor]:
        """Tensors of one training batch for `stage`, `fraction` of the way through the stage."""
        ...

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of a collated batch."""
        ...

    def tokens(self, batch: dict[str, torch.Tensor]) -> int:
        """The real (not padding) tokens of a collated batch: what throughput counts."""
        ...

    def sequence_length(self, ex: Example, stage: str) -> int:
        """Positions the longest training sequence of `ex` at `stage` takes."""
        ...

    def prompt(self, question: tuple[int, ...]) -> list[int]:
        """Inference prompt ids for a question."""
        ...

    def prompt_length(self, question: tuple[int, ...]) -> int:
        """Positions the inference input takes before the first generated token."""
        ...

    def generate(
        self,
        model: PreTrainedModel,
        questions: list[tuple[int, ...]],
        max_new_tokens: int,
        ignore_eos: bool = False,
    ) -> Generation:
        """Greedy answers (token ids) to tokenised questions, batched; `ignore_eos` generates
        exactly `max_new_tokens` (benchmarks)."""
        ...

    def answer_text(self, text: str) -> str:
        """The answer in a decoded generation, by the one scoring rule (`answers.answer_part`):
        after the last `####` for a method that writes one, else the whole generation."""
        ...

    def for_stage(self, stage: str, steps: int, steps_per_epoch: int, seed: int) -> Method:
        """The method as it trains `stage` (see `rim.methods.stepping`)."""
        ...

    def resets_optimizer(self, stage: str, step: int) -> bool:
        """True if step `step` of `stage` starts with a fresh AdamW (curriculum change)."""
        ...

    def attach(self, model: PreTrainedModel) -> None:
        """Add the method's own modules to the model (`StageSchedule.attach`)."""
        ...

    def curriculum(self, stage: str) -> str:
        """How `stage`'s layout changes over its steps, for the dry run."""
        ...


class SegmentMethod(StageSchedule):
    """Base of the methods whose every training sequence is a list of segments (all but Coconut):
    one forward pass with the packed mask, the weighted readout loss, prompt + greedy decoding."""

    special: SpecialIds
    config: MethodConfig
    stages: tuple[str, ...] = ("baseline",)
    raises_dropout: tuple[str, ...] = ()
    writes_chain: ClassVar[bool] = False
    supports_packing: bool = True
    serves_plain: bool = True
    """A plain `generate` on the prompt answers as trained (not so for Coconut's thoughts)."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def blocks(self) -> int:
        return 0

    def layout(self, ex: Example, stage: str, fraction: float) -> list[Segment]:
        """Segments of one training sequence for `stage`, `fraction` of the way through it."""
        raise NotImplementedError

    def prompt(self, question: tuple[int, ...]) -> list[int]:
        raise NotImplementedError

    def settings(self, stage: str) -> str:
        if stage not in self.stages:
            raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(self.stages)})")
        return stage

    def budget(self, stage: str) -> tuple[str, ...]:
        return (self.settings(stage),)

    def selectable(self, stage: str) -> bool:
        """Every stage: each answers in the layout of inference."""
        return stage in self.stages

    def answer_budget(self, examples: list[Example]) -> int:
        return max(len(self.target(ex)) for ex in examples) + 1  # + the end token

    def target(self, ex: Example) -> tuple[int, ...]:
        """What the model generates after the prompt."""
        return ex.answer

    def sequence_length(self, ex: Example, stage: str) -> int:
        return max(pack(self.layout(ex, stage, 0.0)).position_ids) + 1

    def prompt_length(self, question: tuple[int, ...]) -> int:
        return len(self.prompt(question))

    def collate(
        self,
        batch: list[Example],
        stage: str,
        fraction: float,
        pack_length: int | None = None,
        sparse: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The batch, one example per row; with `pack_length`, examples packed into rows of at
        most that many tokens (`segments.pack_rows`), and `examples` their number; with
        `sparse`, the attention rule for FlexAttention instead of a dense mask."""
        packed = [pack(self.layout(ex, stage, fraction)) for ex in batch]
        if pack_length is None:
            return collate(packed, self.special.pad, sparse=sparse)
        out = collate(pack_rows(packed, pack_length), self.special.pad, sparse=sparse)
        out["examples"] = torch.tensor(len(batch))
        return out

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        examples = int(batch["examples"]) if "examples" in batch else None
        return weighted_readout_loss(model, model_inputs(batch), batch["labels"], batch["weights"], examples)

    def tokens(self, batch: dict[str, torch.Tensor]) -> int:
        return int(batch["tokens"])

    def generate(
        self,
        model: PreTrainedModel,
        questions: list[tuple[int, ...]],
        max_new_tokens: int,
        ignore_eos: bool = False,
    ) -> Generation:
        prompts = [self.prompt(q) for q in questions]
        return greedy_generate(model, prompts, self.special.pad, self.special.eos, max_new_tokens, ignore_eos)

    def answer_text(self, text: str) -> str:
        return answer_part(text, chain=self.writes_chain)


def chain_answer(text: str) -> str:
    """The answer part of a generated chain: the text after the last separator; no separator,
    no answer (an unfinished chain gets no credit). The scoring rule: `answers.answer_part`."""
    return answer_part(text, chain=True)


def readout(ids: tuple[int, ...], n_blocks: int, weight: float, eos: int, kind: str) -> Segment:
    """A readout after `n_blocks` blocks: sees the question (segment 0) and blocks 1..n_blocks."""
    return Segment(ids, sees=tuple(range(n_blocks + 1)), weight=weight, end_id=eos, kind=kind, block=n_blocks)


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The model's keyword arguments for a collated segment batch: ids, the attention rule (a
    dense mask, or FlexAttention's block mask for a sparse batch) and position ids."""
    if "segment_ids" in batch:  # FlexAttention
        from rim.core.flex import block_mask

        mask: Any = block_mask(batch)
    else:
        mask = batch["attention_mask"]
    return {"input_ids": batch["input_ids"], "attention_mask": mask, "position_ids": batch["position_ids"]}
