"""CODI (Shen et al. 2025): one model is both teacher and student. The teacher reads the question
and writes the chain of thought and the answer (cross-entropy); the student reads the question,
runs a fixed number of continuous thoughts fed back through a projection, then writes the answer
(cross-entropy); and the student's hidden states, at every layer, at the token just before the
answer are pulled to the teacher's there (the distillation loss). At inference only the student
runs: `question <b>`, the thoughts, `</b>`, then the answer, greedily.

Sequences, with T steps and ` #### answer` the chain's tail (rim's CoT separator marks the answer
where the official code writes `The answer is:`; the token before the answer is the last token
of the separator in both sequences):

    teacher:  question  steps 1..T-1  #### answer <eos>        (scored after the question)
    student:  question <b> [n thoughts] </b> #### answer <eos>  (scored from `</b>` on)

The teacher leaves out the last step (`teacher_last_step: false`, the official default: on
GSM8k-Aug the last step computes the answer). A thought is the last hidden state at the previous
position through the projection (dropout, linear d -> `projection_dim`, GELU, linear back to d,
LayerNorm), as in `rim.core.thoughts`. The projection is a submodule of the model
(`rim_thought_projection`), saved with its weights and trained with it (LoRA included).

Loss = student CE + `distill_factor` x distillation + `teacher_factor` x teacher CE, each CE the
mean over its scored tokens. The distillation is the mean over the hidden states (embeddings
and every layer) of the smooth-L1 (or L2) distance between the student's and the detached
teacher's states at the position before the answer, each divided by the std of the teacher's
states there (`distill_div_std`; twice for L2, as the official code).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, cast

import torch
from transformers import PreTrainedModel

from rim.core.encoding import Example, chain_after_steps, joined_steps
from rim.core.generation import Generation
from rim.core.losses import inner_model, supervised_forward
from rim.core.segments import IGNORE
from rim.core.thoughts import ThoughtSequence, collate_thoughts, generate_after_thoughts, think
from rim.methods.base import SpecialIds, chain_answer
from rim.methods.settings import CODIConfig
from rim.methods.stepping import StageSchedule

STAGE = "codi"
PROJECTION = "rim_thought_projection"
"""The name of the projection submodule on the causal LM (saved as `<name>.safetensors`)."""


def make_projection(config: CODIConfig, hidden: int) -> torch.nn.Module:
    """Dropout, linear d -> `projection_dim`, GELU, linear back to d [, LayerNorm(d)]."""
    width = config.projection_dim or hidden
    layers: list[torch.nn.Module] = [
        torch.nn.Dropout(config.projection_dropout),
        torch.nn.Linear(hidden, width),
        torch.nn.GELU(),
        torch.nn.Linear(width, hidden),
    ]
    if config.projection_norm:
        layers.append(torch.nn.LayerNorm(hidden))
    return torch.nn.Sequential(*layers)


def answer_tail(ex: Example) -> tuple[tuple[int, ...], int]:
    """The chain's tail ` #### answer` (tokens after the steps) and the length of its separator."""
    tail = chain_after_steps(ex, len(ex.steps))
    separator = len(tail) - len(ex.answer)
    if separator < 1 or tail[separator:] != ex.answer:
        raise ValueError("the tokenised chain does not end with ` #### ` and the answer's own tokens")
    return tail, separator


@dataclass(frozen=True)
class CODI(StageSchedule):
    """CODI: the student's thoughts distilled from the teacher's chain of thought, one model."""

    Config = CODIConfig
    special: SpecialIds
    config: CODIConfig = field(default_factory=CODIConfig)
    stages: tuple[str, ...] = (STAGE,)
    blocks: ClassVar[int] = 0
    writes_chain: ClassVar[bool] = False
    supports_packing: ClassVar[bool] = False
    serves_plain: ClassVar[bool] = False
    raises_dropout: ClassVar[tuple[str, ...]] = ()

    @property
    def name(self) -> str:
        return self.config.name

    def settings(self, stage: str) -> str:
        """`trainer.baseline`: one stage, trained like the SFT baselines."""
        if stage != STAGE:
            raise ValueError(f"unknown stage {stage!r} (stages: {STAGE})")
        return "baseline"

    def budget(self, stage: str) -> tuple[str, ...]:
        return (self.settings(stage),)

    def selectable(self, stage: str) -> bool:
        return self.settings(stage) == "baseline"

    def answer_budget(self, examples: list[Example]) -> int:
        """` #### answer` and EOS."""
        return max(len(answer_tail(ex)[0]) for ex in examples) + 1

    def teacher(self, ex: Example) -> tuple[tuple[int, ...], int]:
        """The teacher's scored text (steps, ` #### answer`) and where its separator ends in it."""
        tail, separator = answer_tail(ex)
        chain = joined_steps(ex, len(ex.steps) - (not self.config.teacher_last_step))
        return chain + tail, len(chain) + separator - 1

    def sequence(self, ex: Example) -> ThoughtSequence:
        """The student's sequence: `question <b>`, the thoughts, `</b> #### answer`."""
        return ThoughtSequence((*ex.question, self.special.open), self.config.thoughts, answer_tail(ex)[0])

    def sequence_length(self, ex: Example, stage: str) -> int:
        """The longer of the student's and the teacher's sequences."""
        seq = self.sequence(ex)
        student = len(seq.prefix) + seq.thoughts + 1 + len(seq.text)
        return max(student, len(ex.question) + len(self.teacher(ex)[0]))

    def prompt(self, question: tuple[int, ...]) -> list[int]:
        """The text prefix `question <b>` (the thoughts and `</b>` follow at inference)."""
        return [*question, self.special.open]

    def prompt_length(self, question: tuple[int, ...]) -> int:
        return len(self.prompt(question)) + self.config.thoughts + 1

    def answer_text(self, text: str) -> str:
        """What follows the separator of the generated ` #### answer`."""
        return chain_answer(text)

    def attach(self, model: PreTrainedModel) -> None:
        """Give the causal LM (inside any PEFT wrapper) its projection, unless it has one."""
        inner = cast(PreTrainedModel, inner_model(model))
        if self.config.projection and not hasattr(inner, PROJECTION):
            hidden = cast(torch.Tensor, inner.get_input_embeddings().weight).shape[1]
            device = next(inner.parameters()).device  # float32: it trains, whatever the base's dtype
            inner.add_module(PROJECTION, make_projection(self.config, hidden).to(device, torch.float32))

    def projection(self, model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The model's projection of a hidden state into the next input embedding, in the
        projection's dtype and back to the state's (None without `projection`)."""
        if not self.config.projection:
            return None
        module = getattr(inner_model(model), PROJECTION)
        dtype = next(module.parameters()).dtype
        return lambda state: module(state.to(dtype)).to(state.dtype)

    def collate(self, batch: list[Example], stage: str, fraction: float = 0.0) -> dict[str, torch.Tensor]:
        """The student's aligned batch (`rim.core.thoughts.collate_thoughts`) with `student_at`
        (the column before the answer) and the teacher's right-padded `teacher_ids`,
        `teacher_mask`, `teacher_labels` and `teacher_at` (per row); `fraction` is unused."""
        self.settings(stage)
        out = collate_thoughts([self.sequence(ex) for ex in batch], self.special)
        separators = {answer_tail(ex)[1] for ex in batch}
        if len(separators) != 1:
            raise ValueError("the separator ` ####` is tokenised differently across the batch")
        separator = separators.pop()
        out["student_at"] = out["prefix_len"] + out["thoughts"] + separator  # `</b>` is column 0
        teachers = [self.teacher(ex) for ex in batch]
        length = max(len(ex.question) + len(t) for ex, (t, _) in zip(batch, teachers))
        ids = torch.full((len(batch), length), self.special.pad, dtype=torch.long)
        labels = torch.full((len(batch), length), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        at = torch.zeros(len(batch), dtype=torch.long)
        for b, (ex, (text, end)) in enumerate(zip(batch, teachers)):
            q, n = len(ex.question), len(ex.question) + len(text)
            ids[b, :n] = torch.tensor((*ex.question, *text))
            labels[b, q - 1 : n] = torch.tensor((*text, self.special.eos))
            mask[b, :n] = 1
            at[b] = q + end
        out.update(teacher_ids=ids, teacher_mask=mask, teacher_labels=labels, teacher_at=at)
        return out

    def tokens(self, batch: dict[str, torch.Tensor]) -> int:
        return int(batch["attention_mask"].sum() + batch["teacher_mask"].sum())

    def loss(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Student CE + distill_factor x distillation + teacher_factor x teacher CE."""
        terms = self.weighted(self.loss_terms(model, batch))
        return terms["student"] + terms["distill"] + terms["teacher"]

    def weighted(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`loss_terms` as they enter the loss: distillation times `distill_factor`, teacher CE
        times `teacher_factor` (the official code logs them so too)."""
        c = self.config
        return {
            "student": terms["student"],
            "distill": c.distill_factor * terms["distill"],
            "teacher": c.teacher_factor * terms["teacher"],
        }

    def loss_terms(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The three terms, unweighted: `teacher` and `student` (mean token CE of each) and
        `distill` (the distance of the hidden states before the answer, averaged over layers)."""
        labels = batch["teacher_labels"]
        keep = labels != IGNORE
        teacher, logits = supervised_forward(
            model,
            keep,
            input_ids=batch["teacher_ids"],
            attention_mask=batch["teacher_mask"],
            output_hidden_states=True,
        )
        teacher_ce = torch.nn.functional.cross_entropy(logits.float(), labels[keep])
        width, n = int(batch["prefix_len"]), int(batch["thoughts"])
        mask, positions = batch["attention_mask"], batch["position_ids"]
        thinking = think(model, batch["input_ids"][:, :width], mask, positions, n, self.projection(model))
        start = width + n
        labels = batch["labels"][:, start - thinking.pending :]  # the last thought's column first
        keep = labels != IGNORE
        student, logits = supervised_forward(
            model,
            keep,
            **thinking.then(model, batch["input_ids"][:, start:], mask, positions),
            output_hidden_states=True,
        )
        student_ce = torch.nn.functional.cross_entropy(logits.float(), labels[keep])
        rows = torch.arange(labels.shape[0], device=labels.device)
        column = int(batch["student_at"]) - start + thinking.pending
        distances = []
        for s, t in zip(student.hidden_states, teacher.hidden_states):
            target = t[rows, batch["teacher_at"]].detach().float()
            d = self._distance(s[:, column].float(), target)
            distances.append(d)
        return {"teacher": teacher_ce, "student": student_ce, "distill": torch.stack(distances).mean()}

    def _distance(self, student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kind = self.config.distill_loss
        if kind == "smooth_l1":
            d = torch.nn.functional.smooth_l1_loss(student, target)
        else:
            d = torch.nn.functional.mse_loss(student, target)
        if self.config.distill_div_std:
            std = target.std()
            d = d / std / std if kind == "l2" else d / std
        return d

    @torch.inference_mode()
    def generate(
        self,
        model: PreTrainedModel,
        questions: list[tuple[int, ...]],
        max_new_tokens: int,
        ignore_eos: bool = False,
    ) -> Generation:
        """Greedy ` #### answer` after the thoughts. `forward_passes` counts every pass (the
        prefill, each thought but the last, the last with `</b>`, each decoding step); `ttft_s` is
        the time to the first text token."""
        prompts = [self.prompt(q) for q in questions]
        n = self.config.thoughts
        return generate_after_thoughts(
            model, prompts, n, self.special, max_new_tokens, ignore_eos, self.projection(model)
        )
