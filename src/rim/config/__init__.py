"""Configuration of a run: typed sections (`schema`), YAML files with `include:` and `key=value`
overrides (`files`), validated before anything runs.

    cfg = load_config("configs/examples/multiplication.yaml", ["trainer.stage1.lr=3e-4"])

An unknown key, a wrong type or an impossible value is a `RimInputError` naming the file and
the field; `rim config` lists every field with its type, default and help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rim.config.files import apply_overrides, merge, read_yaml, set_dotted
from rim.config.schema import Config, DataConfig, ModelConfig, StageConfig, TrainerConfig
from rim.schema import validate


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read `path` (with its includes), apply `key=value` overrides, validate."""
    raw: dict[str, Any] = read_yaml(path, Config) if path is not None else {}
    apply_overrides(raw, overrides, Config)
    return config_from_dict(raw, source=str(path) if path is not None else "<defaults>")


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate a nested dict against the schema."""
    return validate(Config, raw, source)


__all__ = ["Config", "DataConfig", "ModelConfig", "StageConfig", "TrainerConfig",
           "apply_overrides", "config_from_dict", "load_config", "merge", "read_yaml",
           "set_dotted"]
