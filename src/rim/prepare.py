"""Everything a run needs, built and validated before a single file is written."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rim.config import Config
from rim.data.records import Record
from rim.data.sources import load_records
from rim.encoding import Example, encode, texts_of
from rim.errors import RimInputError
from rim.methods import Method, make_method
from rim.modeling import (
    DTYPES,
    add_lora,
    build_model,
    context_length,
    enable_checkpointing,
    load_model,
    load_tokenizer,
    scratch_tokenizer,
    special_ids,
)
from rim.runinfo import RunInfo, model_directory

ANSWER_SLACK = 4
"""Tokens generated beyond the longest answer (or chain) of the training data."""


@dataclass
class Prepared:
    """Tokenizer, model, method and tokenised data of a validated run."""

    cfg: Config
    tok: PreTrainedTokenizerBase
    model: PreTrainedModel
    method: Method
    train: list[Example]
    eval_records: list[Record]
    valid_records: list[Record]
    """Evaluated during training (`trainer.eval_every`): `data.valid`, else the eval records."""
    max_new_tokens: int
    """`trainer.max_new_tokens`, or what the method needs on the training data."""
    collate_options: dict[str, int | bool]
    """Keyword arguments of `method.collate`: `pack_length` with `trainer.packing`, `sparse`
    with FlexAttention."""

    def run_info(self) -> RunInfo:
        """The `rim.json` of the run's models."""
        suffix = "".join(self.tok.convert_ids_to_tokens(self.method.prompt(())))
        return RunInfo(method=self.cfg.method, checker=self.cfg.data.checker,
                       max_new_tokens=self.max_new_tokens, prompt_suffix=suffix)


def prepare(cfg: Config) -> Prepared:
    """Read the data, build tokenizer and model, check every sequence fits the context.

    Raises `RimInputError` on any bad input; writes nothing.
    """
    if not cfg.data.train:
        raise RimInputError("field 'data.train' is required", source="config")
    for tracker in cfg.trainer.report_to:
        if importlib.util.find_spec(tracker) is None:
            raise RimInputError(f"{tracker} is not installed (pip install {tracker})",
                                source="trainer.report_to")
    records = load_records(cfg.data.train)
    eval_records = load_records(cfg.data.eval) if cfg.data.eval else []
    if cfg.data.eval_size is not None:
        eval_records = eval_records[: cfg.data.eval_size]

    valid_records = load_records(cfg.data.valid) if cfg.data.valid else eval_records

    if cfg.model.attn_implementation == "flex_attention" and not torch.cuda.is_available():
        raise RimInputError("FlexAttention trains on a GPU only (this torch has no backward for "
                            "it on CPU)", source="model.attn_implementation")
    tok, model = _tokenizer_and_model(cfg, records)
    method = make_method(cfg.method, special_ids(tok))
    examples = [encode(r, tok) for r in records]
    budget = cfg.trainer.max_new_tokens or method.answer_budget(examples) + ANSWER_SLACK
    limit = context_length(model)
    if limit is not None:
        for record, ex in zip(records, examples):
            _check_fits(record, ex, method, limit)
        for record in [*eval_records, *valid_records]:
            n = method.prompt_length(encode(record, tok).question) + budget
            if n > limit:
                raise RimInputError(f"prompt plus answer budget is {n} tokens, longer than the "
                                    f"model's context of {limit}", source=record.origin)
    collate_options: dict[str, int | bool] = {}
    if cfg.trainer.packing:
        if not getattr(method, "supports_packing", False):
            raise RimInputError(f"method {method.name} cannot pack examples into rows",
                                source="trainer.packing")
        collate_options["pack_length"] = cfg.trainer.pack_length or limit or max(
            method.sequence_length(ex, s) for ex in examples for s in method.stages)
    if cfg.model.attn_implementation == "flex_attention":
        collate_options["sparse"] = True
        _check_flex(model, method)
    if cfg.trainer.gradient_checkpointing:
        enable_checkpointing(model)
    if cfg.model.lora is not None:
        model = add_lora(model, tok, cfg.model.lora)
    return Prepared(cfg, tok, model, method, examples, eval_records, valid_records, budget,
                    collate_options)


def _tokenizer_and_model(cfg: Config, records: list[Record]):
    """A scratch model with a tokenizer trained on `records`, or a pretrained one (or a run's)."""
    dtype = DTYPES[cfg.model.dtype]
    source = cfg.model.name_or_path
    if cfg.model.init_from is not None:
        source = str(model_directory(cfg.model.init_from))
    if source is None:
        tok = scratch_tokenizer([t for r in records for t in texts_of(r)], cfg.model.vocab_size)
        return tok, build_model(cfg.model.scratch, tok, cfg.model.max_length, dtype,
                            cfg.model.attn_implementation)
    tok = load_tokenizer(source, cfg.model.gguf_file)
    return tok, load_model(source, tok, cfg.model.gguf_file, dtype, cfg.model.new_token_init,
                           cfg.model.attn_implementation)


def _check_flex(model: PreTrainedModel, method: Method) -> None:
    """FlexAttention trains here: a method laid out in segments, a model that takes a
    BlockMask (the GPU is checked before the model is built)."""
    source = "model.attn_implementation"
    if not getattr(method, "supports_packing", False):
        raise RimInputError(f"method {method.name} does not train with FlexAttention", source=source)
    from rim.flex import block_mask

    rule = {"segment_ids": torch.zeros(1, 2, dtype=torch.long),
            "sees": torch.zeros(1, 1, 1, dtype=torch.bool)}
    try:
        with torch.no_grad():
            model(input_ids=torch.zeros(1, 2, dtype=torch.long), attention_mask=block_mask(rule),
                  position_ids=torch.arange(2)[None])
    except (AttributeError, TypeError, ValueError, RuntimeError) as err:
        raise RimInputError(f"{model.config.model_type} does not take a FlexAttention mask in "
                            f"this transformers ({type(err).__name__})", source=source) from None


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
