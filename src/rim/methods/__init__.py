"""Training methods, one file each; this registry is the only list of them.

Adding a method: a new file with its method class (see `rim.methods.base.Method`) and one line in
`METHODS`; its settings class (a `MethodConfig` whose `name` is a literal, the method class's
`Config`) goes into `rim.methods.settings`, with one line in `METHOD_CONFIGS`.

The settings load without torch (configs, `rim config`, the CLI's parser); the method classes,
`METHODS` and what uses them are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rim.common.schema import validate
from rim.methods.settings import (
    METHOD_CONFIGS,
    AnyMethodConfig,
    BlockConfig,
    MethodConfig,
)

if TYPE_CHECKING:
    from rim.methods.base import Method, SegmentMethod, SpecialIds

_LAZY = {"Method": "rim.methods.base", "SegmentMethod": "rim.methods.base", "SpecialIds": "rim.methods.base"}


def __getattr__(name: str) -> Any:
    """`METHODS` and the method classes, imported (torch and all) on first use."""
    if name == "METHODS":
        from rim.methods.coconut import Coconut
        from rim.methods.codi import CODI
        from rim.methods.icot import ICoT
        from rim.methods.pause import Pause
        from rim.methods.rim import RiM
        from rim.methods.sft import CoT, NoCoT

        methods: dict[str, type] = {
            "nocot": NoCoT,
            "cot": CoT,
            "pause": Pause,
            "rim": RiM,
            "coconut": Coconut,
            "icot": ICoT,
            "codi": CODI,
        }
        """Every method by name (baselines first: the order of benchmark tables)."""
        globals()["METHODS"] = methods
        return methods
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _methods() -> dict[str, type]:
    """`METHODS`, imported now if it was not yet."""
    registry = globals().get("METHODS")
    return registry if registry is not None else __getattr__("METHODS")


def method_config(name: str, source: str = "<method>", **settings: Any) -> MethodConfig:
    """Validated settings of the method called `name`."""
    from rim.common.errors import RimInputError

    methods = _methods()
    if name not in methods:
        raise RimInputError(
            f"field 'method.name' must be one of {', '.join(methods)}, got {name!r}", source=source
        )
    config_type = cast("type[Method]", methods[name]).Config
    return validate(config_type, {"name": name, **settings}, source, prefix="method.")


def make_method(config: MethodConfig | str, special: SpecialIds, **settings: Any) -> Method:
    """The method of `config` (or of the name `config` with `settings`)."""
    if isinstance(config, str):
        config = method_config(config, **settings)
    return _methods()[config.name](special, config)


def method_plan(config: MethodConfig) -> Method:
    """The method of `config` for questions about its stages and their settings, before any
    tokenizer exists (dry runs, sweeps): its token ids are placeholders, not for layouts."""
    from rim.methods.base import SpecialIds

    return make_method(config, SpecialIds(0, 1, 2, 3, 4))


__all__ = [
    "METHODS",
    "METHOD_CONFIGS",
    "AnyMethodConfig",
    "BlockConfig",
    "Method",
    "MethodConfig",
    "SegmentMethod",
    "SpecialIds",
    "make_method",
    "method_config",
    "method_plan",
]
