"""Coconut (Hao et al. 2024): reasoning steps replaced by continuous thoughts.

A *continuous thought* is the model's last hidden state (`hidden_states[-1]`, after the final
norm) at the previous position, fed back as the input embedding of the next position instead
of a sampled token. A thought is therefore not a token: it only exists inside a forward pass.

Sequences. With c = `thoughts_per_step`, the training sequence of stage `coconut{k}` is

    question <b> [k*c thoughts] </b> steps k+1..T #### answer <eos>

`<b>` begins and `</b>` ends the thoughts; in `input_ids` a thought position holds the
placeholder `<m>`, whose embedding is never used (the fed-back hidden state replaces it). Only
the text after `</b>` is scored (the remaining steps, ` #### answer` and EOS, each predicted
from the position before it, the first one from `</b>`); the loss is the mean token NLL over
the batch, as Coconut's Hugging Face loss. Stage 0 keeps an empty `<b></b>`, so it is CoT in
the same text format as every later stage.

Curriculum. Stages `coconut0` .. `coconut{latent_stages}`; stage k replaces the first k steps by
k*c thoughts. Every example gets k*c thoughts at stage k even when it has fewer than k steps
(Coconut's `pad_latent_to_max`); all its steps are then removed and only ` #### answer` is left.
With `final_stage`, one more stage `coconut-final` follows: c*latent_stages thoughts and no
language step at all, also for examples with more than latent_stages steps (Coconut's training
after its last scheduled stage, `scheduled_stage > max_latent_stage`, as used for GSM8k; without
it, such examples keep their later steps as text and the model writes them at inference).
The curriculum stages take `trainer.coconut`'s settings, the final stage `trainer.coconut_final`'s
(lr, steps or epochs, warmup, dropout, and `optimizer_reset: epoch` for Coconut's fresh
optimizer every epoch); `first_stage` starts later, after a CoT run in `model.init_from`.

Training batch. Columns are aligned so that thought i is the same column in every row:

    [ pad.. question <b> | n thought columns | </b> text .. pad ]
      left-padded prefix   n = k*c            right-padded suffix

The attention mask is 2D (0 on padding) and position ids count only real tokens, so a row gets
the positions it would have alone. The forward runs one pass over the prefix, one pass per
thought but the last (input: the last hidden state of the previous position, through
`inputs_embeds`), and one pass over the last thought, `</b>` and the text, all sharing one KV
cache (n + 1 passes, as the official forward). Gradients flow through the whole thought
chain (nothing is detached), as in Coconut.

Inference. Prefill `question <b>` (left-padded batch), run the thoughts on the cache (the last
one in the pass of `</b>`), then decode greedily until EOS. The generated text is `steps #### answer`
like CoT, and `answer_text` keeps what follows the separator. `prompt()` is
the text prefix `question <b>` only, since thoughts are not tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel

from rim.core.encoding import Example, chain_after_steps
from rim.core.generation import Generation
from rim.core.losses import mean_readout_loss
from rim.core.thoughts import ThoughtSequence, collate_thoughts, generate_after_thoughts, think
from rim.methods.base import SpecialIds, chain_answer
from rim.methods.settings import CoconutConfig
from rim.methods.stepping import StageSchedule

STAGE_PREFIX = "coconut"
FINAL_STAGE = "coconut-final"


@dataclass(frozen=True)
class Coconut(StageSchedule):
    """Coconut: stage k replaces the first k reasoning steps by k*c continuous thoughts."""

    Config = CoconutConfig
    special: SpecialIds
    config: CoconutConfig = field(default_factory=CoconutConfig)
    blocks = 0
    writes_chain = False
    supports_packing = False
    serves_plain = False
    raises_dropout: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def thoughts_per_step(self) -> int:
        """c, the thoughts per replaced step."""
        return self.config.thoughts_per_step

    @property
    def latent_stages(self) -> int:
        """The curriculum's latent stages (c*latent_stages thoughts at inference)."""
        return self.config.latent_stages

    @property
    def stages(self) -> tuple[str, ...]:
        """`coconut0` (CoT with an empty `<b></b>`) .. `coconut{latent_stages}` [, `coconut-final`]."""
        latent = tuple(f"{STAGE_PREFIX}{k}" for k in range(self.config.first_stage, self.latent_stages + 1))
        return (*latent, FINAL_STAGE) if self.config.final_stage else latent

    def stage_index(self, stage: str) -> int:
        """k of the stage `coconut{k}`; `latent_stages` for `coconut-final`."""
        if stage not in self.stages:
            raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(self.stages)})")
        if stage == FINAL_STAGE:
            return self.latent_stages
        return int(stage.removeprefix(STAGE_PREFIX))

    def settings(self, stage: str) -> str:
        """`trainer.coconut` for every curriculum stage, `trainer.coconut_final` for the last."""
        self.stage_index(stage)
        return "coconut_final" if stage == FINAL_STAGE else "coconut"

    def budget(self, stage: str) -> tuple[str, ...]:
        """Its own section's steps."""
        return (self.settings(stage),)

    def selectable(self, stage: str) -> bool:
        """Only the all-latent stage (the final stage, or the last latent stage without one): an
        earlier stage still writes text steps after its thoughts, which is not Coconut."""
        self.stage_index(stage)
        return stage == self.stages[-1]

    def answer_budget(self, examples: list[Example]) -> int:
        """The longest chain (steps beyond the latent stages are written) and the answer."""
        return max(len(ex.cot) for ex in examples) + 1

    def sequence(self, ex: Example, stage: str) -> ThoughtSequence:
        """The training sequence of `ex` at `stage`."""
        k = self.stage_index(stage)
        removed = len(ex.steps) if stage == FINAL_STAGE else k
        return ThoughtSequence(
            prefix=(*ex.question, self.special.open),
            thoughts=k * self.thoughts_per_step,
            text=chain_after_steps(ex, removed),
        )

    def sequence_length(self, ex: Example, stage: str) -> int:
        """Positions the training sequence of `ex` at `stage` takes (thoughts included)."""
        seq = self.sequence(ex, stage)
        return len(seq.prefix) + seq.thoughts + 1 + len(seq.text)

    def prompt_length(self, question: tuple[int, ...]) -> int:
        """`question <b>`, the c*latent_stages thoughts of inference, and `</b>`."""
        return len(self.prompt(question)) + self.thoughts_per_step * self.latent_stages + 1

    def collate(self, batch: list[Example], stage: str, fraction: float = 0.0) -> dict[str, torch.Tensor]:
        """The aligned batch (see the module docstring); `fraction` is unused.

        Returns `input_ids` ([B, L], `<m>` at thought columns), `attention_mask` ([B, L], 0 on
        padding), `position_ids`, `labels` ([B, L], the token each position predicts, -100 where
        nothing is scored), and the 0-dim `prefix_len` and `thoughts` (column counts)."""
        return collate_thoughts([self.sequence(ex, stage) for ex in batch], self.special)

    def tokens(self, batch: dict[str, torch.Tensor]) -> int:
        return int(batch["attention_mask"].sum())

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean NLL of the text after `</b>`: prefix pass, thought passes, then the last thought,
        `</b>` and the text in one pass."""
        start = int(batch["prefix_len"]) + int(batch["thoughts"])
        mask, positions = batch["attention_mask"], batch["position_ids"]
        thinking = think(
            model, batch["input_ids"][:, : int(batch["prefix_len"])], mask, positions, int(batch["thoughts"])
        )
        inputs = thinking.then(model, batch["input_ids"][:, start:], mask, positions)
        return mean_readout_loss(model, inputs, batch["labels"][:, start - thinking.pending :])

    def prompt(self, question: tuple[int, ...]) -> list[int]:
        """The text prefix `question <b>` (the thoughts and `</b>` follow at inference)."""
        return [*question, self.special.open]

    def answer_text(self, text: str) -> str:
        """What follows the separator of the generated `steps #### answer`."""
        return chain_answer(text)

    @torch.inference_mode()
    def generate(
        self,
        model: PreTrainedModel,
        questions: list[tuple[int, ...]],
        max_new_tokens: int,
        ignore_eos: bool = False,
        latent_stages: int | None = None,
    ) -> Generation:
        """Greedy `steps #### answer` after c x `latent_stages` thoughts (default: the config's).

        `forward_passes` counts every pass (the prefill, each thought but the last, the last
        with `</b>`, each decoding step); `ttft_s` is the time to the first generated text token."""
        n = self.thoughts_per_step * (self.latent_stages if latent_stages is None else latent_stages)
        prompts = [self.prompt(q) for q in questions]
        return generate_after_thoughts(model, prompts, n, self.special, max_new_tokens, ignore_eos)
