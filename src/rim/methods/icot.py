"""Stepwise internalization, iCoT-SI (Deng, Choi and Shieber 2024): train CoT, then remove the
chain's tokens from the left, a few more as training goes, until the model answers directly.

Sequence. At optimizer step s of the stage, an example trains `question` then the readout

    chain[n + o:] #### answer <eos>

where `chain` is the token ids of its reasoning steps (the CoT chain before ` #### answer`),
n = `removal_count(s)` and o a random extra offset (removal smoothing). Only the readout is
supervised: exactly the remaining chain tokens, the separator, the answer and EOS. The loss is
the official one: the mean NLL over the batch's supervised tokens.

Schedule (counted in optimizer steps; the official code counts batches, the same without
gradient accumulation). With E steps per epoch and every = round(E / remove_per_epoch),
n(s) = remove_start_from + s // every (+ s + 1 when every is 0: a token per step); once n
reaches `remove_all_when_remove_beyond`, the whole chain is removed from then on. With
`reset_optimizer`, a fresh AdamW starts at every step where n grows (the official code also
skips a reset right after a batch whose chains were all removed: a departure, since that
depends on the batch; ours depends on the step only).

Removal smoothing. o is drawn from P(o) = (1 - e^-lambda) e^(-lambda o) for o = 0..max_offset,
the probability left over going to max_offset (the official distribution, lambda 4, 0..99). The
draw for an example is a function of the run's seed, the epoch (s // E) and the example (a
CRC32 of its token ids, since the loader hands examples without their index), so a run, a
resumed run or another number of processes removes the same tokens. A departure: the official
code draws a batch's offsets from the global generator.

Inference is no-CoT's: the question as prompt, then ` #### answer` directly.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field, replace
from typing import ClassVar, cast

import torch
from transformers import PreTrainedModel

from rim.core.encoding import Example, chain_prefix
from rim.core.losses import mean_readout_loss
from rim.core.segments import Segment
from rim.methods.base import SegmentMethod, SpecialIds, chain_answer, model_inputs, readout
from rim.methods.settings import ICoTConfig

STAGE = "icot"


@dataclass(frozen=True)
class StagePlan:
    """What the removal schedule needs of the stage: its steps, steps per epoch, the seed."""

    steps: int
    steps_per_epoch: int
    seed: int


@dataclass(frozen=True)
class ICoT(SegmentMethod):
    """Q; the chain without its first n + o tokens, then ` #### answer`, sees Q."""

    Config = ICoTConfig
    special: SpecialIds
    config: ICoTConfig = field(default_factory=ICoTConfig)
    plan: StagePlan | None = None
    """The stage being trained (from `for_stage`); None: step 0 without an offset."""
    stages: tuple[str, ...] = (STAGE,)
    writes_chain: ClassVar[bool] = False

    def settings(self, stage: str) -> str:
        """`trainer.baseline`: the one stage trains like the SFT baselines."""
        super().settings(stage)
        return "baseline"

    def for_stage(self, stage: str, steps: int, steps_per_epoch: int, seed: int) -> ICoT:
        """This method bound to the stage's plan (the schedule needs the step, not a fraction)."""
        self.settings(stage)
        return replace(self, plan=StagePlan(steps, max(1, steps_per_epoch), seed))

    def _every(self, steps_per_epoch: int) -> int:
        """Steps between removals (0: one more token every step)."""
        return round(steps_per_epoch / self.config.remove_per_epoch)

    def _scheduled(self, step: int, steps_per_epoch: int) -> int:
        """Tokens scheduled for removal at `step` before the remove-all threshold."""
        every = self._every(steps_per_epoch)
        return self.config.remove_start_from + (step + 1 if every == 0 else step // every)

    def removal_count(self, step: int, steps_per_epoch: int) -> float:
        """n(step): the CoT tokens removed at optimizer step `step`; `math.inf` once the count
        reaches `remove_all_when_remove_beyond` (the whole chain)."""
        n = self._scheduled(step, steps_per_epoch)
        beyond = self.config.remove_all_when_remove_beyond
        return math.inf if beyond is not None and n >= beyond else n

    def resets_optimizer(self, stage: str, step: int) -> bool:
        """With `reset_optimizer`: True where the (finite) removal count grows."""
        if self.plan is None or step <= 0 or not self.config.reset_optimizer:
            return False
        spe = self.plan.steps_per_epoch
        before = self.removal_count(step - 1, spe)
        return before != math.inf and self._scheduled(step, spe) > before

    def offset_distribution(self) -> list[float]:
        """P(o) for o = 0..max_offset (see the module docstring)."""
        lam, top = self.config.removal_smoothing_lambda, self.config.max_offset
        if math.isinf(lam):
            return [1.0] + [0.0] * top
        probs = [(1 - math.exp(-lam)) * math.exp(-lam * o) for o in range(top + 1)]
        probs[-1] += max(0.0, 1 - sum(probs))
        return probs

    def offset(self, ex: Example, epoch: int, seed: int) -> int:
        """The smoothing offset of `ex` in `epoch` of a run seeded `seed`."""
        probs = self.offset_distribution()
        if probs[0] == 1.0:
            return 0
        key = zlib.crc32(repr((ex.question, ex.cot)).encode())
        rng = random.Random(f"icot:{seed}:{epoch}:{key}")
        return rng.choices(range(len(probs)), weights=probs)[0]

    def removed(self, ex: Example, fraction: float) -> float:
        """The chain tokens removed from `ex` at `fraction` of the bound stage (n + o; without
        a plan, `remove_start_from` and no offset)."""
        if self.plan is None:
            return self.config.remove_start_from
        step = round(fraction * self.plan.steps)
        n = self.removal_count(step, self.plan.steps_per_epoch)
        return n + self.offset(ex, step // self.plan.steps_per_epoch, self.plan.seed)

    def target_at(self, ex: Example, removed: float) -> tuple[int, ...]:
        """The readout with the first `removed` chain tokens gone (all of them for inf)."""
        chain = chain_prefix(ex, len(ex.steps))
        if removed == math.inf:
            return ex.cot[len(chain) :]
        return ex.cot[min(len(chain), cast(int, removed)) :]  # a finite count is an int

    def layout(self, ex: Example, stage: str, fraction: float) -> list[Segment]:
        return self.layout_at(ex, self.removed(ex, fraction))

    def layout_at(self, ex: Example, removed: float) -> list[Segment]:
        """The question, then the readout with the first `removed` chain tokens gone."""
        target = self.target_at(ex, removed)
        return [Segment(ex.question, kind="question"), readout(target, 0, 1.0, self.special.eos, "answer")]

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The official loss: the mean NLL over the batch's supervised tokens (RiM's and the
        SFT baselines' is a sum per example)."""
        return mean_readout_loss(model, model_inputs(batch), batch["labels"])

    def prompt(self, question: tuple[int, ...]) -> list[int]:
        return list(question)

    def answer_budget(self, examples: list[Example]) -> int:
        """The longest chain and answer: a model evaluated mid-curriculum still writes part of
        its chain (a fully internalized one stops after ` #### answer`)."""
        return max(len(ex.cot) for ex in examples) + 1

    def answer_text(self, text: str) -> str:
        return chain_answer(text)

    def curriculum(self, stage: str) -> str:
        """The removal schedule in words, with the counts of the first epochs."""
        c = self.config
        beyond = c.remove_all_when_remove_beyond
        text = (
            f"CoT tokens removed from the left: {c.remove_start_from} + {c.remove_per_epoch:g}"
            f"/epoch, all from {beyond if beyond is not None else 'never'}; offset "
            f"lambda {c.removal_smoothing_lambda:g} (0..{c.max_offset}); new AdamW "
            f"{'when the count grows' if c.reset_optimizer else 'per stage'}"
        )
        if self.plan is None:
            return text
        spe = self.plan.steps_per_epoch
        epochs = math.ceil(self.plan.steps / spe)
        counts = [self.removal_count(e * spe, spe) for e in range(min(epochs, 6))]
        shown = ", ".join("all" if n == math.inf else str(n) for n in counts)
        return f"{text}; at epoch starts: {shown}{', ..' if epochs > 6 else ''}"
