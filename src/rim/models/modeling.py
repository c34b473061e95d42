"""Load or build the model and tokenizer, add the memory-block tokens, set up LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rim.common.errors import RimInputError
from rim.methods.base import SpecialIds
from rim.models.families import check_family
from rim.models.tokenizer import SPECIAL_TOKENS, train_tokenizer

OPEN, MEMORY, CLOSE = SPECIAL_TOKENS
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""torch dtypes by the names configs use (`rim.common.schema.Dtype`)."""


def torch_device(name: str) -> torch.device:
    """The torch device `name` (`cpu`, `cuda`, `cuda:N`); CUDA must be available."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RimInputError(f"device {name!r} asked for, but CUDA is not available")
    return torch.device(name)


def load_tokenizer(name_or_path: str, gguf_file: str | None = None) -> PreTrainedTokenizerBase:
    """A pretrained tokenizer (hub name or local dir), with a pad token and the block tokens."""
    if is_local_path(name_or_path) and not Path(name_or_path).expanduser().is_dir():
        raise RimInputError("model directory not found (field 'model.name_or_path')", source=name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, gguf_file=gguf_file)
    except (OSError, ValueError) as err:
        raise RimInputError(f"cannot load tokenizer: {_first_line(err)}", source=name_or_path) from None
    return add_block_tokens(tok)


def add_block_tokens(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """`tok` with a pad token (its end token) and the block tokens `<b>`, `<m>`, `</b>`."""
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    missing = [t for t in SPECIAL_TOKENS if t not in tok.get_vocab()]
    if missing:
        tok.add_tokens(missing, special_tokens=True)
    return tok


def scratch_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerBase:
    """A tokenizer trained on the data (see `rim.models.tokenizer`)."""
    return train_tokenizer(texts, vocab_size=vocab_size)


def special_ids(tok: PreTrainedTokenizerBase) -> SpecialIds:
    """The ids of `<b>`, `<m>`, `</b>`, end and pad in `tok`."""
    ids = cast("list[int]", tok.convert_tokens_to_ids([OPEN, MEMORY, CLOSE]))  # a list in, a list out
    return SpecialIds(open=ids[0], memory=ids[1], close=ids[2], eos=tok.eos_token_id, pad=tok.pad_token_id)


def load_model(
    name_or_path: str,
    tok: PreTrainedTokenizerBase,
    gguf_file: str | None = None,
    dtype: torch.dtype = torch.float32,
    new_token_init: str = "mean",
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """A pretrained causal LM; the embedding rows of added tokens start as the mean of the old
    rows, or (`new_token_init` the text of a token) as a copy of that token's rows."""
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path,
            gguf_file=gguf_file,
            dtype=dtype,
            attn_implementation=attn_implementation,
            **_dense_gguf(gguf_file),
        )
    except (OSError, ValueError) as err:
        raise RimInputError(f"cannot load model: {_first_line(err)}", source=name_or_path) from None
    check_family(model)
    return fit_embeddings(model, tok, new_token_init)


def _dense_gguf(gguf_file: str | None) -> dict[str, Any]:
    """`from_pretrained` options that unpack every GGUF weight into a dense tensor (transformers 5
    may keep them packed where it has kernels; transformers 4 always unpacks them)."""
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)} if gguf_file else {}


def drop_gguf_marker(model: PreTrainedModel) -> PreTrainedModel:
    """A model loaded from GGUF with dense weights (dequantized, the `dtype` asked for), made a
    plain model: without the quantizer and `quantization_config` that transformers leaves on it,
    it saves as ordinary safetensors (run's model/, checkpoints, export), loadable without GGUF.
    Any other model is returned unchanged."""
    if "gguf" not in str(getattr(model, "quantization_method", None) or "").lower():
        return model
    for module in model.modules():
        if type(module).__name__.startswith("Gguf"):  # packed weights would be lost on saving
            raise RimInputError(
                f"GGUF weights stayed packed ({type(module).__name__})", source="model.gguf_file"
            )
    for name in ("hf_quantizer", "quantization_method"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)
    if getattr(model, "is_quantized", False):
        model.is_quantized = False  # type: ignore[assignment]  # torch types Module attributes as Tensor | Module
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def fit_embeddings(
    model: PreTrainedModel, tok: PreTrainedTokenizerBase, new_token_init: str = "mean"
) -> PreTrainedModel:
    """Grow the embeddings of `model` to the vocabulary of `tok`: the rows of added tokens start
    as the mean of the old rows, or (`new_token_init` the text of a token) as its rows."""
    drop_gguf_marker(model)
    old = cast(torch.Tensor, model.get_input_embeddings().weight).shape[0]
    if len(tok) > old:
        source = _source_row(tok, new_token_init)
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        init_new_rows(model, old, source)
    return model


def restart_block_rows(model: PreTrainedModel, tok: PreTrainedTokenizerBase, new_token_init: str) -> None:
    """Set the rows of rim's three tokens to those of the token `new_token_init` (nothing for
    `mean`): a run started from another run's model (`model.init_from`, e.g. Coconut from its
    CoT run) finds them already added, with that run's start, and its own init would be lost."""
    source = _source_row(tok, new_token_init)
    if source is None:
        return
    rows = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    with torch.no_grad():
        emb = cast(torch.Tensor, model.get_input_embeddings().weight)
        emb[rows] = emb[source].clone()
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            out.weight[rows] = out.weight[source].clone()


def _source_row(tok: PreTrainedTokenizerBase, new_token_init: str) -> int | None:
    """The id of the one token `new_token_init` (None for `mean`)."""
    if new_token_init == "mean":
        return None
    ids = tok(new_token_init, add_special_tokens=False).input_ids
    if len(ids) != 1:
        raise RimInputError(
            f"{new_token_init!r} is not one token of the tokenizer", source="model.new_token_init"
        )
    return ids[0]


def build_model(
    scratch: dict[str, Any],
    tok: PreTrainedTokenizerBase,
    max_length: int,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """A randomly initialised causal LM of `scratch["model_type"]` (any transformers model type)."""
    options = dict(scratch)
    model_type = options.pop("model_type")
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
        **_max_positions(model_type, max_length),
        **options,
    )
    check_family(config)
    try:
        return AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    except ValueError as err:  # an attention kernel the architecture does not have
        raise RimInputError(_first_line(err), source="model.attn_implementation") from None


def init_new_rows(model: PreTrainedModel, first_new: int, source: int | None = None) -> None:
    """Set embedding rows `first_new..` (and untied output rows) to the mean of the older rows,
    or to a copy of row `source`."""
    with torch.no_grad():
        emb = cast(torch.Tensor, model.get_input_embeddings().weight)
        emb[first_new:] = emb[:first_new].mean(0) if source is None else emb[source]
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            rows = out.weight
            rows[first_new:] = rows[:first_new].mean(0) if source is None else rows[source]


def add_lora(model: PreTrainedModel, tok: PreTrainedTokenizerBase, lora: dict[str, Any] | Any):
    """Freeze the base, add LoRA adapters, and train only the block tokens' embedding rows;
    what trains is float32 (AdamW's updates and state), whatever the base's dtype. `lora` is
    the config's `model.lora` dict, or a `peft.LoraConfig` (from Python), which gets the block
    tokens' rows added to its `trainable_token_indices`."""
    import dataclasses

    from peft import LoraConfig, get_peft_model

    blocks = cast("list[int]", tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)))  # a list in, a list out
    if isinstance(lora, LoraConfig):
        mine = lora.trainable_token_indices
        if isinstance(mine, list):
            blocks = sorted({*mine, *blocks})
        elif mine is not None:
            raise RimInputError(
                "give trainable_token_indices as a list (rim adds the block tokens' rows to it)",
                source="peft_config",
            )
        config = dataclasses.replace(lora, trainable_token_indices=blocks, task_type="CAUSAL_LM")
    else:
        config = LoraConfig(
            r=lora.get("r", 128),
            lora_alpha=lora.get("alpha", 2 * lora.get("r", 128)),
            lora_dropout=lora.get("dropout", 0.0),
            target_modules=lora.get("target_modules", "all-linear"),
            trainable_token_indices=blocks,
            task_type="CAUSAL_LM",
        )
    peft_model = get_peft_model(model, config, autocast_adapter_dtype=True)
    for param in peft_model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return peft_model


def context_length(model_or_config) -> int | None:
    """The model's maximum number of positions, if it has one."""
    config = getattr(model_or_config, "config", model_or_config)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None


def enable_checkpointing(model: PreTrainedModel) -> None:
    """Recompute activations in the backward pass (non-reentrant), under the name the installed
    transformers has (`activation_checkpointing_enable` from 5.2x on)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _max_positions(model_type: str, max_length: int) -> dict[str, int]:
    probe = AutoConfig.for_model(model_type)
    key = "n_positions" if hasattr(probe, "n_positions") else "max_position_embeddings"
    return {key: max_length}


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def is_local_path(name_or_path: str) -> bool:
    """True if `name_or_path` looks like a filesystem path rather than a hub name."""
    return name_or_path.startswith((".", "/", "~")) or Path(name_or_path).exists()
