"""What the benchmarks share: settings files, model presets, a random model without a tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import torch
from pydantic import BaseModel
from transformers import PreTrainedModel

from rim.common.errors import RimInputError
from rim.common.schema import validate
from rim.config import ModelConfig, load_config, read_yaml
from rim.methods import METHODS, Method, SpecialIds, make_method
from rim.models.modeling import DTYPES

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

S = TypeVar("S", bound=BaseModel)

# The random model's vocabulary is laid out like `rim.models.tokenizer`'s: pad, end, <b>, <m>, </b>, then
# plain tokens. Only the ids matter for timing.
RANDOM_SPECIAL = SpecialIds(open=2, memory=3, close=4, eos=1, pad=0)
FIRST_PLAIN_ID = 5


def default_methods() -> list[str]:
    """Every registered method, in the registry's order."""
    return list(METHODS)


def build_method(name: str, special: SpecialIds, **settings: Any) -> Method:
    """The method `name` with those of `settings` that are its own (e.g. `blocks` for RiM and
    pause, `latent_stages` for Coconut); None values keep the method's defaults."""
    fields = METHODS[name].Config.model_fields
    return make_method(name, special, **{k: v for k, v in settings.items() if k in fields and v is not None})


# --- settings files ---------------------------------------------------------------------------


def load_settings(cls: type[S], path: str | Path | None, paths: tuple[str, ...] = (), **given: Any) -> S:
    """Settings `cls` from a YAML mapping (None: the defaults), with `given` values (command-line
    flags) on top. Fields named in `paths` are file paths, resolved relative to the YAML file."""
    raw: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        path = Path(path)
        raw = read_yaml(path, cls)
        for key in paths:
            if isinstance(raw.get(key), str):
                raw[key] = str((path.parent / raw[key]).resolve())
            elif isinstance(raw.get(key), list):
                raw[key] = [str((path.parent / v).resolve()) if isinstance(v, str) else v for v in raw[key]]
        source = str(path)
    raw.update({k: v for k, v in given.items() if v is not None})
    return validate(cls, raw, source)


def settings_from_dict(cls: type[S], raw: dict[str, Any], source: str = "<settings>") -> S:
    """Validate `raw` against the fields of settings type `cls`."""
    return validate(cls, raw, source)


# --- models ------------------------------------------------------------------------------------


def model_config(path: str | Path | None) -> ModelConfig:
    """The `model:` section of a config file (a preset under configs/model/); None: the default
    (a 4-layer, d-256 GPT-2 built from scratch)."""
    if path is None:
        return ModelConfig()
    return load_config(path).model


class _Vocabulary:
    """What `rim.models.modeling.build_model` reads from a tokenizer: its size and the pad/end ids."""

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


def bench_model(cfg: ModelConfig, dtype: str = "float32", seed: int = 0) -> BenchModel:
    """The model to time: the pretrained `cfg.name_or_path` with its tokenizer, or a randomly
    initialised model of `cfg.scratch`."""
    if cfg.name_or_path is None:
        return random_model(cfg, dtype, seed)
    from rim.models.modeling import load_model, load_tokenizer, special_ids

    tok = load_tokenizer(cfg.name_or_path, cfg.gguf_file)
    model = load_model(cfg.name_or_path, tok, cfg.gguf_file, DTYPES[dtype])
    return BenchModel(model, special_ids(tok), (0, len(tok)), tok, cfg.name_or_path)


def random_model(cfg: ModelConfig, dtype: str = "float32", seed: int = 0) -> BenchModel:
    """A randomly initialised model of `cfg.scratch` with `cfg.vocab_size` tokens and no
    tokenizer (ids laid out as `RANDOM_SPECIAL`)."""
    from rim.models.modeling import build_model

    torch.manual_seed(seed)
    if cfg.vocab_size <= FIRST_PLAIN_ID:
        raise RimInputError(f"vocab_size must be above {FIRST_PLAIN_ID}", source="model.vocab_size")
    vocabulary = cast("PreTrainedTokenizerBase", _Vocabulary(cfg.vocab_size))  # all it reads of one
    model = build_model(cfg.scratch, vocabulary, cfg.max_length, DTYPES[dtype])
    return BenchModel(model, RANDOM_SPECIAL, (FIRST_PLAIN_ID, cfg.vocab_size), None, "random")


def describe_model(model: PreTrainedModel) -> dict[str, Any]:
    """Architecture facts of a model for the results file."""
    config = model.config
    keys = (
        "model_type",
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "vocab_size",
    )
    info = {k: getattr(config, k) for k in keys if isinstance(getattr(config, k, None), (int, str))}
    info["parameters"] = sum(p.numel() for p in model.parameters())
    info["dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    return info


class MemoryMeter:
    """The peak and current memory since the last reset: CUDA's allocator, or the process's
    resident set (Linux: `VmHWM` and `VmRSS`, the peak reset through /proc/self/clear_refs)."""

    @staticmethod
    def available(cuda: bool) -> bool:
        """Whether it can measure here (CUDA, or a Linux /proc)."""
        return cuda or Path("/proc/self/clear_refs").exists()

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.reset()

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            Path("/proc/self/clear_refs").write_text("5")

    def read(self) -> dict[str, int]:
        if self.cuda:
            torch.cuda.synchronize()
            return {"peak": torch.cuda.max_memory_allocated(), "current": torch.cuda.memory_allocated()}
        status = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line
        )
        return {
            name: int(status[key].split()[0]) * 1024
            for name, key in (("peak", "VmHWM"), ("current", "VmRSS"))
        }
