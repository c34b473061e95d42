"""What the benchmarks share: settings files, model presets, a random model without a tokenizer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from rim.config import Config, ModelConfig, dataclass_from_dict, load_config, read_yaml
from rim.errors import RimInputError
from rim.methods import METHODS, SpecialIds, make_method, method_options
from rim.methods.base import Method

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# The random model's vocabulary is laid out like `rim.tokenizer`'s: pad, end, <b>, <m>, </b>, then
# plain tokens. Only the ids matter for timing.
RANDOM_SPECIAL = SpecialIds(open=2, memory=3, close=4, eos=1, pad=0)
FIRST_PLAIN_ID = 5


def default_methods() -> list[str]:
    """Every registered method, baselines first (Coconut too once it is registered)."""
    order = ["nocot", "cot", "pause", "rim", "coconut"]
    return [m for m in order if m in METHODS] + [m for m in METHODS if m not in order]


def check_methods(methods: list[str]) -> list[str]:
    """`methods`, each checked against `METHODS`."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise RimInputError(f"unknown method {unknown[0]!r} (known: {', '.join(METHODS)})")
    return methods


def build_method(name: str, special: SpecialIds, blocks: int, block_size: int,
                 thoughts_per_step: int = 1, latent_stages: int = 3) -> Method:
    """A method by name with the method settings of `rim.config.MethodConfig`."""
    from rim.config import MethodConfig

    cfg = MethodConfig(name=name, blocks=blocks, block_size=block_size,
                       thoughts_per_step=thoughts_per_step, latent_stages=latent_stages)
    return make_method(name, special, blocks, block_size, **method_options(cfg))


# --- settings files ---------------------------------------------------------------------------

def load_settings(cls: type, path: str | Path | None, paths: tuple[str, ...] = ()) -> Any:
    """Settings dataclass `cls` from a YAML mapping (None: the defaults).

    Keys are the dataclass fields; fields named in `paths` are file paths, resolved relative to
    the YAML file.
    """
    if path is None:
        return cls()
    path = Path(path)
    raw = read_yaml(path)
    for key in paths:
        if isinstance(raw.get(key), str):
            raw[key] = str((path.parent / raw[key]).resolve())
    return settings_from_dict(cls, raw, str(path))


def settings_from_dict(cls: type, raw: dict[str, Any], source: str = "<settings>") -> Any:
    """Validate `raw` against the fields (and simple types) of dataclass `cls`."""
    return dataclass_from_dict(cls, raw, source)


def override(settings: Any, **values: Any) -> Any:
    """`settings` with every value that is not None replaced (command-line options)."""
    return dataclasses.replace(settings, **{k: v for k, v in values.items() if v is not None})


# --- models ------------------------------------------------------------------------------------

def model_config(path: str | Path | None) -> ModelConfig:
    """The `model:` section of a config file (a preset under configs/model/); None: the default
    (a 4-layer, d-256 GPT-2 built from scratch)."""
    if path is None:
        return ModelConfig()
    cfg: Config = load_config(path)
    return cfg.model


class _Vocabulary:
    """What `rim.modeling.build_model` reads from a tokenizer: its size and the pad/end ids."""

    pad_token_id = RANDOM_SPECIAL.pad
    eos_token_id = RANDOM_SPECIAL.eos

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


@dataclass
class BenchModel:
    """A model to time, its special ids and the range of plain token ids for random questions."""

    model: PreTrainedModel
    special: SpecialIds
    plain_ids: tuple[int, int]
    tok: Any = None
    source: str = "random"

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def random_model(cfg: ModelConfig, dtype: str = "float32", seed: int = 0) -> BenchModel:
    """A randomly initialised model of `cfg` (scratch config, `vocab_size` tokens), or the
    pretrained `cfg.name_or_path` with its tokenizer."""
    from rim.modeling import build_model, load_model, load_tokenizer, special_ids

    torch.manual_seed(seed)
    if cfg.name_or_path is not None:
        tok = load_tokenizer(cfg.name_or_path, cfg.gguf_file)
        model = load_model(cfg.name_or_path, tok, cfg.gguf_file, DTYPES[dtype])
        return BenchModel(model, special_ids(tok), (0, len(tok)), tok, cfg.name_or_path)
    if cfg.vocab_size <= FIRST_PLAIN_ID:
        raise RimInputError(f"vocab_size must be above {FIRST_PLAIN_ID}", source="model.vocab_size")
    model = build_model(cfg.scratch, _Vocabulary(cfg.vocab_size), cfg.max_length, DTYPES[dtype])
    return BenchModel(model, RANDOM_SPECIAL, (FIRST_PLAIN_ID, cfg.vocab_size), None, "random")


def describe_model(model: PreTrainedModel) -> dict[str, Any]:
    """Architecture facts of a model for the results file."""
    config = model.config
    keys = ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads",
            "num_key_value_heads", "intermediate_size", "vocab_size")
    info = {k: getattr(config, k) for k in keys if isinstance(getattr(config, k, None), (int, str))}
    info["parameters"] = sum(p.numel() for p in model.parameters())
    info["dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    return info
