"""Configuration: a typed schema, YAML files composed with `include:`, `key=value` overrides.

A config file may list other files under `include:` (paths relative to it); they are merged
in order, then the file itself, then command-line overrides such as `trainer.lr=3e-4`.
Everything is validated against the dataclasses below before anything runs: an unknown key,
a wrong type or an impossible value is a `RimInputError` naming the file and field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rim.data.answers import CHECKERS
from rim.errors import RimInputError
from rim.methods import METHODS


@dataclass
class ModelConfig:
    """The model: a pretrained causal LM (hub name or local dir) or one built from scratch."""

    name_or_path: str | None = None
    """Hub name or local directory of a pretrained model; None builds `scratch`."""
    gguf_file: str | None = None
    """A GGUF file inside `name_or_path` to load from."""
    scratch: dict[str, Any] = field(
        default_factory=lambda: {"model_type": "gpt2", "n_layer": 4, "n_embd": 256, "n_head": 4}
    )
    """transformers config of a model trained from scratch: `model_type` plus its fields."""
    vocab_size: int = 512
    """Vocabulary size of the tokenizer trained on the data (scratch models only)."""
    max_length: int = 512
    """Context length of a scratch model."""
    dtype: str = "float32"
    """Weights dtype: float32 or bfloat16."""
    lora: dict[str, Any] | None = None
    """LoRA settings (`r`, `alpha`, `dropout`, `target_modules`); None = full fine-tuning."""


@dataclass
class DataConfig:
    """Training and evaluation data."""

    train: str = ""
    """Training records (JSONL or JSON list of {question, steps, answer})."""
    eval: str | None = None
    """Evaluation records, same format; evaluated at the end of training."""
    eval_size: int | None = None
    """Evaluate on the first N evaluation records only."""
    checker: str = "exact"
    """How answers are compared (see `rim.data.answers`)."""


@dataclass
class MethodConfig:
    """The training method and its layout."""

    name: str = "rim"
    """One of: rim, pause, nocot, cot, coconut (and any method registered in `rim.methods.METHODS`)."""
    blocks: int = 8
    """K: memory blocks at inference and in stage 2."""
    block_size: int = 2
    """M: `<m>` tokens per block."""
    fade_start: float = 0.0
    """Stage-1 fading starts at this fraction of stage 1."""
    fade_end: float = 1.0
    """... and ends here (all step readouts at weight 0)."""
    thoughts_per_step: int = 1
    """Coconut: c, the continuous thoughts that replace one reasoning step."""
    latent_stages: int = 3
    """Coconut: curriculum stages after stage 0; stage k replaces the first k steps."""
    final_stage: bool = False
    """Coconut: one more stage after the last, with c*latent_stages thoughts and no step left as
    text (Coconut's GSM8k schedule)."""


@dataclass
class StageConfig:
    """Length and optimisation of one training stage."""

    epochs: float = 1.0
    """Passes over the training data (used when `steps` is None)."""
    steps: int | None = None
    """Optimizer steps; overrides `epochs`."""
    lr: float = 1e-3
    warmup: float = 0.04
    """Linear warmup as a fraction of the stage, then constant."""
    dropout: float | None = None
    """Set every dropout of the model to this value for the stage (None = keep)."""


@dataclass
class TrainerConfig:
    """Batching, precision, logging and checkpointing."""

    seed: int = 0
    batch_size: int = 32
    grad_accum: int = 1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    mixed_precision: str = "no"
    """no, bf16 or fp16 (Accelerate)."""
    threads: int | None = None
    """torch CPU threads (None = torch's default)."""
    stage1: StageConfig = field(default_factory=lambda: StageConfig(epochs=6.0))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(epochs=2.0, lr=5e-4))
    log_every: int = 20
    eval_batch_size: int = 64
    max_new_tokens: int = 32


@dataclass
class Config:
    """A whole run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what `resolved_config.yaml` holds)."""
        return dataclasses.asdict(self)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read `path` (with its includes), apply `key=value` overrides, validate."""
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        raw = read_yaml(path)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RimInputError(f"override {item!r} is not key=value", source="command line")
        set_dotted(raw, key.strip(), yaml.safe_load(value))
    return config_from_dict(raw, source=source)


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate a nested dict against the schema."""
    cfg = dataclass_from_dict(Config, raw, source)
    _check_values(cfg, source)
    return cfg


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping with its `include:` files merged in; errors name the file (and line)."""
    return _read_with_includes(Path(path), seen=())


def _read_with_includes(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise RimInputError("config file not found", source=str(path))
    if path.resolve() in seen:
        raise RimInputError("config includes itself", source=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise RimInputError("malformed YAML", source=str(path),
                            line=None if line is None else line + 1) from None
    if not isinstance(data, dict):
        raise RimInputError("a config file must hold a mapping", source=str(path))
    merged: dict[str, Any] = {}
    includes = data.pop("include", []) or []
    for inc in [includes] if isinstance(includes, str) else includes:
        _deep_merge(merged, _read_with_includes(path.parent / inc, seen + (path.resolve(),)))
    _deep_merge(merged, data)
    return merged


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "scratch":
            _deep_merge(into[key], value)
        else:
            into[key] = value


def set_dotted(raw: dict[str, Any], key: str, value: Any, merge: bool = False,
               source: str = "command line") -> None:
    """Set the dotted `key` (`trainer.stage2.steps`) of a raw config to `value`; with `merge`,
    a mapping value is merged into an existing section as `include:` merges files."""
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RimInputError(f"cannot set {key!r}: {part!r} is not a section", source=source)
    last = parts[-1]
    if merge and isinstance(value, dict) and isinstance(node.get(last), dict) and last != "scratch":
        _deep_merge(node[last], value)
    else:
        node[last] = value


def dataclass_from_dict(cls: type, raw: Any, source: str, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, checking keys and simple types (nested dataclasses,
    unions with None, int, float, str, bool, dict, list[...]). Errors name `source` and the key."""
    if not isinstance(raw, dict):
        raise RimInputError(f"field '{prefix.rstrip('.') or 'config'}' must be a mapping",
                            source=source)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise RimInputError(f"unknown config key '{prefix}{unknown[0]}' (known: "
                            f"{', '.join(sorted(names))})", source=source)
    kwargs = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = dataclass_from_dict(hint, value, source, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, source, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, source: str, key: str) -> Any:
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    options = typing.get_args(hint) if union else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise RimInputError(f"field '{key}' may not be null", source=source)
    for option in options:
        base = typing.get_origin(option) or option
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is float and isinstance(value, str) and _is_number(value):
            return float(value)  # YAML 1.1 reads `1e-3` as a string
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is list and isinstance(value, list):
            (item,) = typing.get_args(option) or (Any,)
            return [_coerce(v, item, source, f"{key}[{i}]") for i, v in enumerate(value)]
        if base in (str, bool, dict) and isinstance(value, base):
            return value
        if option is Any:
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise RimInputError(f"field '{key}' must be {names}, got {value!r}", source=source)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_values(cfg: Config, source: str) -> None:
    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise RimInputError(f"field '{key}' {what}", source=source)

    need(cfg.data.checker in CHECKERS, "data.checker", f"must be one of {', '.join(CHECKERS)}")
    need(cfg.method.name in METHODS, "method.name", f"must be one of {', '.join(METHODS)}")
    need(cfg.method.blocks >= 1, "method.blocks", "must be at least 1")
    need(cfg.method.block_size >= 0, "method.block_size", "must be at least 0")
    need(cfg.method.thoughts_per_step >= 1, "method.thoughts_per_step", "must be at least 1")
    need(cfg.method.latent_stages >= 0, "method.latent_stages", "must be at least 0")
    need(0 <= cfg.method.fade_start <= cfg.method.fade_end <= 1, "method.fade_start",
         "and method.fade_end must satisfy 0 <= start <= end <= 1")
    need(cfg.model.dtype in ("float32", "bfloat16", "float16"), "model.dtype",
         "must be float32, bfloat16 or float16")
    need(cfg.model.name_or_path is not None or "model_type" in cfg.model.scratch,
         "model.scratch", "needs a model_type when model.name_or_path is null")
    need(cfg.trainer.mixed_precision in ("no", "bf16", "fp16"), "trainer.mixed_precision",
         "must be no, bf16 or fp16")
    need(cfg.trainer.batch_size >= 1, "trainer.batch_size", "must be at least 1")
    need(cfg.trainer.grad_accum >= 1, "trainer.grad_accum", "must be at least 1")
    for name in ("stage1", "stage2"):
        stage = getattr(cfg.trainer, name)
        need(stage.lr > 0, f"trainer.{name}.lr", "must be positive")
        need(0 <= stage.warmup < 1, f"trainer.{name}.warmup", "must be in [0, 1)")
        need(stage.steps is None or stage.steps >= 0, f"trainer.{name}.steps", "must be >= 0")
        need(stage.epochs >= 0, f"trainer.{name}.epochs", "must be >= 0")
        need(stage.dropout is None or 0 <= stage.dropout < 1, f"trainer.{name}.dropout",
             "must be in [0, 1)")
