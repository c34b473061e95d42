"""Inference from a trained run: build the method's prompt, prefill once, decode the answer.

The trained model is an ordinary causal LM. A RiM prompt is the question followed by K memory
blocks (`<b><m><m></b>` ...); only the answer is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from rim.common.errors import RimInputError
from rim.common.fileio import check_model_files
from rim.core.encoding import decode_text, encode
from rim.core.generation import Generation
from rim.data.records import Record
from rim.methods import Method, make_method
from rim.models.attached import load_attached
from rim.models.modeling import context_length, special_ids
from rim.models.runinfo import RunInfo, model_directory

if TYPE_CHECKING:
    from rim.methods.blocks import BlockMethod


@dataclass
class LoadedRun:
    """A trained model with its tokenizer, the method that builds its prompts, and its info."""

    model: PreTrainedModel
    tok: PreTrainedTokenizerBase
    method: Method
    info: RunInfo

    @property
    def blocks(self) -> int:
        """K, the number of memory blocks of the prompt (0 for methods without blocks)."""
        return self.method.blocks

    def question_ids(self, question: str) -> tuple[int, ...]:
        """The question as the model reads it."""
        return encode(Record(question, (), "?"), self.tok).question

    def check_fits(self, question: str, source: str = "question") -> None:
        """Raise `RimInputError` (naming `source`) if the prompt of `question` plus the answer
        budget is longer than the model's context."""
        limit = context_length(self.model)
        if limit is None:
            return
        n = self.method.prompt_length(self.question_ids(question)) + self.info.max_new_tokens
        if n > limit:
            raise RimInputError(
                f"prompt plus answer budget is {n} tokens, longer than the model's context of {limit}",
                source=source,
            )

    def generate(self, questions: list[str], blocks: int | None = None) -> Generation:
        """Greedy answer ids for one batch of questions (after `blocks` memory blocks, for the
        methods that have them; default K)."""
        ids = [self.question_ids(q) for q in questions]
        depth: dict[str, Any] = {"blocks": blocks} if blocks is not None else {}  # memory-block methods
        return self.method.generate(self.model, ids, self.info.max_new_tokens, **depth)

    def generate_every_block(self, questions: list[str]) -> list[Generation]:
        """Greedy answer ids after block 1..K for one batch of questions, from one prefill."""
        ids = [self.question_ids(q) for q in questions]
        method = cast("BlockMethod", self.method)  # only the memory-block methods have it
        return method.generate_every_block(self.model, ids, self.info.max_new_tokens)

    def answers_every_block(self, questions: list[str], batch_size: int = 64) -> list[list[str]]:
        """For each question, its answers after block 1..K (one prefill per batch)."""
        rows: list[tuple[str, ...]] = []
        for i in range(0, len(questions), batch_size):
            gens = self.generate_every_block(questions[i : i + batch_size])
            rows.extend(zip(*([self.answer_text(ids) for ids in g.ids] for g in gens)))
        return [list(row) for row in rows]

    def answers(self, questions: list[str], blocks: int | None = None, batch_size: int = 64) -> list[str]:
        """Greedy answers to `questions` (chains are cut to their answer)."""
        texts: list[str] = []
        for i in range(0, len(questions), batch_size):
            gen = self.generate(questions[i : i + batch_size], blocks)
            texts.extend(self.answer_text(g) for g in gen.ids)
        return texts

    def answer(
        self, questions: str | list[str], every_block: bool = False, batch_size: int = 64
    ) -> str | list[str] | list[list[str]]:
        """Greedy answers, in batches: one question gives its answer, a list their answers;
        `every_block` gives, per question, the answers after block 1..K (one prefill)."""
        many = [questions] if isinstance(questions, str) else list(questions)
        found = (
            self.answers_every_block(many, batch_size)
            if every_block
            else self.answers(many, batch_size=batch_size)
        )
        return found[0] if isinstance(questions, str) else found

    def answer_text(self, ids: list[int]) -> str:
        """Decode generated ids into the answer text."""
        return self.method.answer_text(decode_text(self.tok, ids))


def load_run(path: str | Path, device: str | None = None) -> LoadedRun:
    """Load a run directory (its `model/`) or a model directory written by `rim train`."""
    model_dir = model_directory(path)
    info = RunInfo.load(model_dir)
    check_model_files(model_dir)  # a truncated file: one line naming it, not a traceback
    try:
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
    except (OSError, ValueError, RuntimeError) as err:  # a missing or damaged model file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RimInputError(f"cannot load the model: {first}", source=str(model_dir)) from None
    method = make_method(info.method, special_ids(tok))
    method.attach(model)  # the method's own modules (CODI's projection), then their weights
    load_attached(model, model_dir)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()  # type: ignore[arg-type]  # @wraps(Module.to) keeps `self`
    return LoadedRun(model, tok, method, info)
