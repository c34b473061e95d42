"""Load or build the model and tokenizer, add the memory-block tokens, set up LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rim.errors import RimInputError
from rim.methods.base import SpecialIds
from rim.tokenizer import SPECIAL_TOKENS, train_tokenizer

OPEN, MEMORY, CLOSE = SPECIAL_TOKENS
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""torch dtypes by the names configs use (`rim.schema.Dtype`)."""


def torch_device(name: str) -> torch.device:
    """The torch device `name` (`cpu`, `cuda`, `cuda:N`); CUDA must be available."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RimInputError(f"device {name!r} asked for, but CUDA is not available")
    return torch.device(name)


def load_tokenizer(name_or_path: str, gguf_file: str | None = None) -> PreTrainedTokenizerBase:
    """A pretrained tokenizer (hub name or local dir), with a pad token and the block tokens."""
    if is_local_path(name_or_path) and not Path(name_or_path).expanduser().is_dir():
        raise RimInputError("model directory not found (field 'model.name_or_path')",
                            source=name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, gguf_file=gguf_file)
    except (OSError, ValueError) as err:
        raise RimInputError(f"cannot load tokenizer: {_first_line(err)}", source=name_or_path) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    missing = [t for t in SPECIAL_TOKENS if t not in tok.get_vocab()]
    if missing:
        tok.add_tokens(missing, special_tokens=True)
    return tok


def scratch_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerBase:
    """A tokenizer trained on the data (see `rim.tokenizer`)."""
    return train_tokenizer(texts, vocab_size=vocab_size)


def special_ids(tok: PreTrainedTokenizerBase) -> SpecialIds:
    """The ids of `<b>`, `<m>`, `</b>`, end and pad in `tok`."""
    ids = tok.convert_tokens_to_ids([OPEN, MEMORY, CLOSE])
    return SpecialIds(open=ids[0], memory=ids[1], close=ids[2], eos=tok.eos_token_id,
                      pad=tok.pad_token_id)


def load_model(name_or_path: str, tok: PreTrainedTokenizerBase, gguf_file: str | None = None,
               dtype: torch.dtype = torch.float32, new_token_init: str = "mean",
               attn_implementation: str | None = None) -> PreTrainedModel:
    """A pretrained causal LM; the embedding rows of added tokens start as the mean of the old
    rows, or (`new_token_init` the text of a token) as a copy of that token's rows."""
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, gguf_file=gguf_file, dtype=dtype,
                                                     attn_implementation=attn_implementation)
    except (OSError, ValueError) as err:
        raise RimInputError(f"cannot load model: {_first_line(err)}", source=name_or_path) from None
    old = model.get_input_embeddings().weight.shape[0]
    if len(tok) > old:
        source = None
        if new_token_init != "mean":
            ids = tok(new_token_init, add_special_tokens=False).input_ids
            if len(ids) != 1:
                raise RimInputError(f"{new_token_init!r} is not one token of the tokenizer",
                                    source="model.new_token_init")
            source = ids[0]
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        init_new_rows(model, old, source)
    return model


def build_model(scratch: dict[str, Any], tok: PreTrainedTokenizerBase, max_length: int,
                dtype: torch.dtype = torch.float32,
                attn_implementation: str | None = None) -> PreTrainedModel:
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
    try:
        return AutoModelForCausalLM.from_config(config, dtype=dtype,
                                                attn_implementation=attn_implementation)
    except ValueError as err:  # an attention kernel the architecture does not have
        raise RimInputError(_first_line(err), source="model.attn_implementation") from None


def init_new_rows(model: PreTrainedModel, first_new: int, source: int | None = None) -> None:
    """Set embedding rows `first_new..` (and untied output rows) to the mean of the older rows,
    or to a copy of row `source`."""
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[first_new:] = emb[:first_new].mean(0) if source is None else emb[source]
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            rows = out.weight
            rows[first_new:] = rows[:first_new].mean(0) if source is None else rows[source]


def add_lora(model: PreTrainedModel, tok: PreTrainedTokenizerBase, lora: dict[str, Any]):
    """Freeze the base, add LoRA adapters, and train only the block tokens' embedding rows."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.get("r", 128),
        lora_alpha=lora.get("alpha", 2 * lora.get("r", 128)),
        lora_dropout=lora.get("dropout", 0.0),
        target_modules=lora.get("target_modules", "all-linear"),
        trainable_token_indices=tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def context_length(model_or_config) -> int | None:
    """The model's maximum number of positions, if it has one."""
    config = getattr(model_or_config, "config", model_or_config)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set every dropout of the model to `p`: dropout modules, attention-dropout rates, and LoRA
    adapters' dropout (built as `Identity` when their dropout was 0, so replaced here)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = p
        lora = getattr(module, "lora_dropout", None)
        if isinstance(lora, torch.nn.ModuleDict):
            for name in list(lora.keys()):
                lora[name] = torch.nn.Dropout(p) if p > 0 else torch.nn.Identity()
    config = getattr(model, "config", None)
    for key in ("attention_dropout", "attn_pdrop", "resid_pdrop", "embd_pdrop", "hidden_dropout"):
        if config is not None and isinstance(getattr(config, key, None), float):
            setattr(config, key, p)


def enable_checkpointing(model: PreTrainedModel) -> None:
    """Recompute activations in the backward pass (non-reentrant), under the name the installed
    transformers has (`activation_checkpointing_enable` from 5.2x on)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def dropout_by_kind(model: torch.nn.Module) -> dict[str, float]:
    """The largest dropout probability of each kind of module: `lora`, `attention` (attention
    weights), `embedding`, `hidden` (the rest: residual and MLP outputs)."""
    found: dict[str, float] = {}
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(getattr(module, "attention_dropout", None), float):
            found["attention"] = max(found.get("attention", 0.0), module.attention_dropout)
        if isinstance(module, torch.nn.ModuleDict) and leaf == "lora_dropout":
            p = max((m.p for m in module.values() if isinstance(m, torch.nn.Dropout)), default=0.0)
            found["lora"] = max(found.get("lora", 0.0), p)
        if not isinstance(module, torch.nn.Dropout) or ".lora_dropout." in f".{name}.":
            continue
        kind = ("attention" if "attn" in leaf or "attention" in leaf else
                "embedding" if "emb" in leaf or leaf == "drop" else "hidden")
        found[kind] = max(found.get(kind, 0.0), module.p)
    return dict(sorted(found.items()))


def _max_positions(model_type: str, max_length: int) -> dict[str, int]:
    probe = AutoConfig.for_model(model_type)
    key = "n_positions" if hasattr(probe, "n_positions") else "max_position_embeddings"
    return {key: max_length}


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def is_local_path(name_or_path: str) -> bool:
    """True if `name_or_path` looks like a filesystem path rather than a hub name."""
    return name_or_path.startswith((".", "/", "~")) or Path(name_or_path).exists()
