"""Training methods, one file each; this registry is the only list of them.

Adding a method: a new file with its settings class (a `MethodConfig` whose `name` is a literal)
and its method class (see `rim.methods.base.Method`), plus one line in `METHODS`.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from rim.methods.base import BlockConfig, Method, MethodConfig, SegmentMethod, SpecialIds
from rim.methods.coconut import Coconut
from rim.methods.pause import Pause
from rim.methods.rim import RiM
from rim.methods.sft import CoT, NoCoT
from rim.schema import validate

METHODS: dict[str, type] = {"nocot": NoCoT, "cot": CoT, "pause": Pause, "rim": RiM,
                            "coconut": Coconut}
"""Every method by name (baselines first: the order of benchmark tables)."""

AnyMethodConfig = Annotated[Union[tuple(m.Config for m in METHODS.values())],  # noqa: UP007
                            Field(discriminator="name")]
"""The settings of any registered method, told apart by `name`."""


def method_config(name: str, source: str = "<method>", **settings: Any) -> MethodConfig:
    """Validated settings of the method called `name`."""
    from rim.errors import RimInputError

    if name not in METHODS:
        raise RimInputError(f"field 'method.name' must be one of {', '.join(METHODS)}, got "
                            f"{name!r}", source=source)
    return validate(METHODS[name].Config, {"name": name, **settings}, source, prefix="method.")


def make_method(config: MethodConfig | str, special: SpecialIds, **settings: Any) -> Method:
    """The method of `config` (or of the name `config` with `settings`)."""
    if isinstance(config, str):
        config = method_config(config, **settings)
    return METHODS[config.name](special, config)


def method_plan(config: MethodConfig) -> Method:
    """The method of `config` for questions about its stages and their settings, before any
    tokenizer exists (dry runs, sweeps): its token ids are placeholders, not for layouts."""
    return make_method(config, SpecialIds(0, 1, 2, 3, 4))


__all__ = ["METHODS", "AnyMethodConfig", "BlockConfig", "Method", "MethodConfig", "SegmentMethod",
           "SpecialIds", "make_method", "method_config", "method_plan"]
