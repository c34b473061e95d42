"""Inference from a trained run: build the method's prompt, prefill once, decode the answer.

The trained model is an ordinary causal LM. A RiM prompt is the question followed by K memory
blocks (`<b><m><m></b>` ...); only the answer is decoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from rim.data.records import Record
from rim.decoding import Generation
from rim.encode import cot_answer, decode_answer, encode
from rim.errors import RimInputError
from rim.methods import BLOCK_METHODS, Method, make_method
from rim.modeling import special_ids

RUN_INFO = "rim.json"


@dataclass
class LoadedRun:
    """A trained model with its tokenizer and the method that builds its prompts."""

    model: PreTrainedModel
    tok: PreTrainedTokenizerBase
    method: Method
    info: dict

    @property
    def blocks(self) -> int:
        """K, the number of memory blocks of the prompt (0 for methods without blocks)."""
        return int(self.info["blocks"]) if self.info["method"] in BLOCK_METHODS else 0

    def question_ids(self, question: str) -> tuple[int, ...]:
        """The question as the model reads it."""
        return encode(Record(question, (), "?"), self.tok).question

    def generate(self, questions: list[str], blocks: int | None = None) -> Generation:
        """Greedy answer ids for one batch of questions (`blocks` memory blocks; default K)."""
        ids = [self.question_ids(q) for q in questions]
        return self.method.generate(self.model, ids, blocks, self.info.get("max_new_tokens", 32))

    def answers(self, questions: list[str], blocks: int | None = None,
                batch_size: int = 64) -> list[str]:
        """Greedy answers to `questions` (CoT chains are cut to their answer)."""
        texts: list[str] = []
        for i in range(0, len(questions), batch_size):
            gen = self.generate(questions[i:i + batch_size], blocks)
            texts.extend(self.answer_text(g) for g in gen.ids)
        return texts

    def answer_text(self, ids: list[int]) -> str:
        """Decode generated ids into the answer text."""
        text = decode_answer(self.tok, ids)
        return cot_answer(text) if self.info["method"] in ("cot", "coconut") else text


def load_run(path: str | Path, device: str | None = None) -> LoadedRun:
    """Load a run directory (its `model/`) or a model directory written by `rim train`."""
    path = Path(path)
    model_dir = path / "model" if (path / "model" / RUN_INFO).is_file() else path
    info_file = model_dir / RUN_INFO
    if not info_file.is_file():
        raise RimInputError(f"not a rim run or model directory (no {RUN_INFO})", source=str(path))
    info = json.loads(info_file.read_text())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
    method = make_method(info["method"], special_ids(tok), info.get("blocks", 1),
                         info.get("block_size", 2), **info.get("options", {}))
    return LoadedRun(model, tok, method, info)
