"""`RiMConfig`: the settings of a training run from Python, in the shape of TRL's `SFTConfig`.

It is the run config (`rim.config.Config`: sections `model`, `data`, `method`, `trainer`, whose
fields carry their help) plus `output_dir`, and it takes the settings flat as well:

    RiMConfig(output_dir="runs/x", method="rim", blocks=8, batch_size=16,
              stage1={"steps": 200, "lr": 3e-3}, question_field="problem")

A flat key goes to the section that has it (`blocks` -> `method.blocks`, `batch_size` ->
`trainer.batch_size`, `question_field` -> `data.question_field`); `method` is a method name
or its settings. Bad input is a one-line `RimInputError` naming the field, as in config files.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from rim.common.errors import RimInputError
from rim.common.schema import describe_error
from rim.config import Config, DataConfig, ModelConfig, TrainerConfig
from rim.methods.settings import METHOD_CONFIGS

SECTIONS: dict[str, type[BaseModel]] = {"model": ModelConfig, "data": DataConfig, "trainer": TrainerConfig}
"""The sections that take flat keys (the method's own settings take the rest)."""
OWN = ("output_dir", "disable_tqdm")
"""Fields of `RiMConfig` that are not part of the run config."""


class RiMConfig(Config):
    """A run's settings from Python: `output_dir` plus the run config, flat keys accepted."""

    output_dir: str = Field(min_length=1)
    """The run directory (as `rim train --out`): config.yaml, metrics, checkpoints, model/."""
    disable_tqdm: bool = False
    """No start banner, progress bars or per-step lines (warnings still print)."""

    def __init__(self, **settings: Any) -> None:
        raw = nest(settings)
        try:
            super().__init__(**raw)
        except ValidationError as err:
            first = err.errors()[0]
            raise RimInputError(describe_error(type(self), raw, first), source="RiMConfig") from None

    def to_config(self) -> Config:
        """The run config (without `output_dir`), as `rim train` reads it from a file."""
        return Config.model_validate(self.model_dump(exclude=set(OWN)))


def nest(settings: dict[str, Any]) -> dict[str, Any]:
    """Flat keys of `settings` moved into their sections; a key no section has is an error."""
    method = settings.get("method")
    if isinstance(method, BaseModel):
        method = method.model_dump()
    method = {"name": method} if isinstance(method, str) else dict(method or {})
    name = method.get("name", "rim")
    raw: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "method":
            continue
        if key in SECTIONS:
            value = value.model_dump() if isinstance(value, BaseModel) else value
            raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
        elif key in OWN:
            raw[key] = value
        elif section := next((s for s, cls in SECTIONS.items() if key in cls.model_fields), None):
            if isinstance(raw.get(section), BaseModel):
                raw[section] = raw[section].model_dump()
            raw.setdefault(section, {})[key] = value
        elif name in METHOD_CONFIGS and key in METHOD_CONFIGS[name].model_fields:
            method[key] = value
        else:
            raise RimInputError(
                f"unknown setting '{key}' (not a setting of model, data, trainer or method {name})",
                source="RiMConfig",
            )
    raw["method"] = {"name": name, **method}
    return raw
