"""Configuration of a run: typed sections (`schema`), YAML files with `include:` and `key=value`
overrides (`files`), validated before anything runs.

    cfg = load_config("configs/examples/multiplication.yaml", ["trainer.stage1.lr=3e-4"])

An unknown key, a wrong type or an impossible value is a `RimInputError` naming the file and
the field; `rim config` lists every field with its type, default and help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rim.common.errors import RimInputError
from rim.common.schema import validate
from rim.config.files import Origins, apply_overrides, merge, origin_of, read_yaml, set_dotted
from rim.config.schema import Config, DataConfig, ModelConfig, StageConfig, TrainerConfig


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read `path` (with its includes), apply `key=value` overrides, validate. An error about a
    key names where it was set: `file.yaml:3 (included from top.yaml)`, `command line: k=v`."""
    origins: Origins = {}
    raw: dict[str, Any] = read_yaml(path, Config, origins) if path is not None else {}
    apply_overrides(raw, overrides, Config, origins)
    source = str(path) if path is not None else "<defaults>"
    try:
        return config_from_dict(raw, source=source)
    except RimInputError as err:
        where = origin_of(origins, err.field) if err.field else None
        if where is None:
            raise
        raise RimInputError(str(err).removeprefix(f"{source}: "), source=where) from None


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate a nested dict against the schema."""
    return validate(Config, raw, source)


def first_difference(old: Any, new: Any, prefix: str = "") -> str:
    """The dotted key of the first setting that differs between two config dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
    return prefix.rstrip(".") or "config"


__all__ = [
    "Config",
    "DataConfig",
    "ModelConfig",
    "StageConfig",
    "TrainerConfig",
    "apply_overrides",
    "config_from_dict",
    "first_difference",
    "load_config",
    "merge",
    "read_yaml",
    "set_dotted",
]
