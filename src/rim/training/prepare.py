"""Everything a run needs, built and validated before a single file is written."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rim.common.errors import RimInputError
from rim.config import Config
from rim.core.encoding import Example, encode, texts_of
from rim.data.records import Record
from rim.data.sources import load_records
from rim.methods import Method, make_method
from rim.models.families import check_window
from rim.models.modeling import (
    DTYPES,
    add_block_tokens,
    add_lora,
    build_model,
    context_length,
    enable_checkpointing,
    fit_embeddings,
    load_model,
    load_tokenizer,
    restart_block_rows,
    scratch_tokenizer,
    special_ids,
)
from rim.models.runinfo import RunInfo, model_directory

ANSWER_SLACK = 4
"""Tokens generated beyond the longest answer (or chain) of the training data."""


@dataclass
class PreparedInputs:
    """What a caller from Python already holds (`rim.api.trainer`), used instead of what the config
    names; None: what the config says. The config still records what they are."""

    model: PreTrainedModel | None = None
    """A model instance (a `peft.PeftModel` keeps its adapters: no `model.lora` then)."""
    tokenizer: PreTrainedTokenizerBase | None = None
    """Its tokenizer (or, with a scratch model, the tokenizer to build it for)."""
    peft_config: Any = None
    """A `peft.LoraConfig` instead of `model.lora`."""
    train: list[Record] | None = None
    eval: list[Record] | None = None
    """The validation split (`data.eval`)."""
    test: list[Record] | None = None
    """The test split (`data.test`)."""


@dataclass
class Prepared:
    """Tokenizer, model, method and tokenised data of a validated run."""

    cfg: Config
    tok: PreTrainedTokenizerBase
    model: PreTrainedModel
    method: Method
    train: list[Example]
    eval_records: list[Record]
    """The validation split (`data.eval`): evaluated during training, selects, scored at the
    end."""
    test_records: list[Record]
    """The test split (`data.test`): read here to check it fits, scored once after training."""
    max_new_tokens: int
    """`trainer.max_new_tokens`, or what the method needs on the training data."""
    collate_options: dict[str, int | bool]
    """Keyword arguments of `method.collate`: `pack_length` with `trainer.packing`, `sparse`
    with FlexAttention."""

    def run_info(self) -> RunInfo:
        """The `rim.json` of the run's models."""
        suffix = "".join(self.tok.convert_ids_to_tokens(self.method.prompt(())))
        return RunInfo(
            method=self.cfg.method,
            checker=self.cfg.data.checker,
            max_new_tokens=self.max_new_tokens,
            prompt_suffix=suffix,
        )


def prepare(cfg: Config, inputs: PreparedInputs | None = None) -> Prepared:
    """Read the data, build tokenizer and model, check every sequence fits the context; what
    `inputs` holds is taken as it is instead of being read or built.

    Raises `RimInputError` on any bad input; writes nothing.
    """
    given = inputs or PreparedInputs()
    if not cfg.data.train and given.train is None:
        raise RimInputError("field 'data.train' is required", source="config")
    for tracker in cfg.trainer.report_to:
        if importlib.util.find_spec(tracker) is None:
            raise RimInputError(
                f"{tracker} is not installed (pip install {tracker})", source="trainer.report_to"
            )
    fields = cfg.data.fields()
    records = given.train if given.train is not None else load_records(cfg.data.train, fields=fields)
    eval_records = (
        given.eval
        if given.eval is not None
        else load_records(cfg.data.eval, fields=fields)
        if cfg.data.eval
        else []
    )
    if cfg.data.eval_size is not None:
        eval_records = eval_records[: cfg.data.eval_size]
    test_records = (
        given.test
        if given.test is not None
        else load_records(cfg.data.test, fields=fields)
        if cfg.data.test
        else []
    )

    if cfg.model.attn_implementation == "flex_attention" and not torch.cuda.is_available():
        raise RimInputError(
            "FlexAttention trains on a GPU only (this torch has no backward for it on CPU)",
            source="model.attn_implementation",
        )
    tok, model = _tokenizer_and_model(cfg, records, given)
    method = make_method(cfg.method, special_ids(tok))
    examples = [encode(r, tok) for r in records]
    budget = cfg.trainer.max_new_tokens or method.answer_budget(examples) + ANSWER_SLACK
    limit = context_length(model)
    for record, ex in zip(records, examples):
        _check_fits(record, ex, method, limit, model)
    if limit is not None:
        for record in [*eval_records, *test_records]:
            n = method.prompt_length(encode(record, tok).question) + budget
            if n > limit:
                raise RimInputError(
                    f"prompt plus answer budget is {n} tokens, longer than the model's context of {limit}",
                    source=record.origin,
                )
    collate_options: dict[str, int | bool] = {}
    if cfg.trainer.packing:
        if not getattr(method, "supports_packing", False):
            raise RimInputError(
                f"method {method.name} cannot pack examples into rows", source="trainer.packing"
            )
        collate_options["pack_length"] = (
            cfg.trainer.pack_length
            or limit
            or max(method.sequence_length(ex, s) for ex in examples for s in method.stages)
        )
    if cfg.model.attn_implementation == "flex_attention":
        collate_options["sparse"] = True
        _check_flex(model, method)
    if cfg.trainer.gradient_checkpointing:
        enable_checkpointing(model)
    if given.peft_config is not None or cfg.model.lora is not None:
        model = add_lora(model, tok, given.peft_config or cfg.model.lora)
    method.attach(model)  # the method's own modules (CODI's projection), trained in full
    return Prepared(cfg, tok, model, method, examples, eval_records, test_records, budget, collate_options)


def _tokenizer_and_model(cfg: Config, records: list[Record], given: PreparedInputs):
    """A scratch model with a tokenizer trained on `records`, or a pretrained one (or a run's);
    a given model and tokenizer get the block tokens (a given `PeftModel` must have them)."""
    dtype = DTYPES[cfg.model.dtype]
    source = cfg.model.name_or_path
    if cfg.model.init_from is not None:
        source = str(model_directory(cfg.model.init_from))
    tok = add_block_tokens(given.tokenizer) if given.tokenizer is not None else None
    if given.model is not None:
        tok = tok or load_tokenizer(cast(str, given.model.name_or_path))  # a loaded model's source
        if not hasattr(given.model, "peft_config"):
            return tok, fit_embeddings(given.model, tok, cfg.model.new_token_init)
        if len(tok) > cast(torch.Tensor, given.model.get_input_embeddings().weight).shape[0]:
            raise RimInputError(
                "the tokenizer lacks rim's block tokens <b> <m> </b>: pass the "
                "base model with peft_config, or add them (rim.add_block_tokens) "
                "and resize before wrapping it",
                source="model",
            )
        return tok, given.model
    if source is None:
        tok = tok or scratch_tokenizer([t for r in records for t in texts_of(r)], cfg.model.vocab_size)
        return tok, build_model(
            cfg.model.scratch, tok, cfg.model.max_length, dtype, cfg.model.attn_implementation
        )
    tok = tok or load_tokenizer(source, cfg.model.gguf_file)
    model = load_model(
        source, tok, cfg.model.gguf_file, dtype, cfg.model.new_token_init, cfg.model.attn_implementation
    )
    if cfg.model.init_from is not None:  # the run's rows of rim's tokens start as this run says
        restart_block_rows(model, tok, cfg.model.new_token_init)
    return tok, model


def _check_flex(model: PreTrainedModel, method: Method) -> None:
    """FlexAttention trains here: a method laid out in segments, a model that takes a
    BlockMask (the GPU is checked before the model is built)."""
    source = "model.attn_implementation"
    if not getattr(method, "supports_packing", False):
        raise RimInputError(f"method {method.name} does not train with FlexAttention", source=source)
    from rim.core.flex import block_mask

    rule = {
        "segment_ids": torch.zeros(1, 2, dtype=torch.long),
        "sees": torch.zeros(1, 1, 1, dtype=torch.bool),
    }
    try:
        with torch.no_grad():
            model(
                input_ids=torch.zeros(1, 2, dtype=torch.long),
                attention_mask=block_mask(rule),
                position_ids=torch.arange(2)[None],
            )
    except (AttributeError, TypeError, ValueError, RuntimeError) as err:
        raise RimInputError(
            f"{model.config.model_type} does not take a FlexAttention mask in "
            f"this transformers ({type(err).__name__})",
            source=source,
        ) from None


def _check_fits(
    record: Record, ex: Example, method: Method, limit: int | None, model: PreTrainedModel | None = None
) -> None:
    """Every stage's training sequence of `ex` fits the model's context of `limit` positions
    (and its sliding window, which rim's mask does not apply)."""
    for stage in method.stages:
        try:
            needed = method.sequence_length(ex, stage)
        except ValueError as err:
            raise RimInputError(f"{stage} layout: {err}", source=record.origin) from None
        if model is not None:
            check_window(model, needed, record.origin)
        if limit is not None and needed > limit:
            raise RimInputError(
                f"{stage} layout needs {needed} positions, more than the model's context of {limit}",
                source=record.origin,
            )
