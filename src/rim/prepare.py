"""Everything a run needs, built and validated before a single file is written."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rim.config import Config
from rim.data.readers import read_records
from rim.data.records import Record
from rim.encoding import Example, encode, texts_of
from rim.errors import RimInputError
from rim.methods import Method, make_method
from rim.modeling import (
    DTYPES,
    add_lora,
    build_model,
    context_length,
    load_model,
    load_tokenizer,
    scratch_tokenizer,
    special_ids,
)


@dataclass
class Prepared:
    """Tokenizer, model, method and tokenised data of a validated run."""

    cfg: Config
    tok: PreTrainedTokenizerBase
    model: PreTrainedModel
    method: Method
    train: list[Example]
    eval_records: list[Record]


def prepare(cfg: Config) -> Prepared:
    """Read the data, build tokenizer and model, check every sequence fits the context.

    Raises `RimInputError` on any bad input; writes nothing.
    """
    if not cfg.data.train:
        raise RimInputError("field 'data.train' is required", source="config")
    records = read_records(cfg.data.train)
    eval_records = read_records(cfg.data.eval) if cfg.data.eval else []
    if cfg.data.eval_size is not None:
        eval_records = eval_records[: cfg.data.eval_size]

    dtype = DTYPES[cfg.model.dtype]
    if cfg.model.name_or_path is None:
        texts = [t for r in records for t in texts_of(r)]
        tok = scratch_tokenizer(texts, cfg.model.vocab_size)
        model = build_model(cfg.model.scratch, tok, cfg.model.max_length, dtype)
    else:
        tok = load_tokenizer(cfg.model.name_or_path, cfg.model.gguf_file)
        model = load_model(cfg.model.name_or_path, tok, cfg.model.gguf_file, dtype)
    method = make_method(cfg.method, special_ids(tok))

    examples = [encode(r, tok) for r in records]
    limit = context_length(model)
    if limit is not None:
        for record, ex in zip(records, examples):
            _check_fits(record, ex, method, limit)
        for record in eval_records:
            n = method.prompt_length(encode(record, tok).question) + cfg.trainer.max_new_tokens
            if n > limit:
                raise RimInputError(f"prompt plus answer budget is {n} tokens, longer than the "
                                    f"model's context of {limit}", source=record.origin)
    if cfg.model.lora is not None:
        model = add_lora(model, tok, cfg.model.lora)
    return Prepared(cfg, tok, model, method, examples, eval_records)


def _check_fits(record: Record, ex: Example, method: Method, limit: int) -> None:
    """Every stage's training sequence of `ex` fits the model's context of `limit` positions."""
    for stage in method.stages:
        try:
            needed = method.sequence_length(ex, stage)
        except ValueError as err:
            raise RimInputError(f"{stage} layout: {err}", source=record.origin) from None
        if needed > limit:
            raise RimInputError(
                f"{stage} layout needs {needed} positions, more than the model's context of "
                f"{limit}", source=record.origin)
