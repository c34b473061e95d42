"""Training methods. Each is a small class from an example (and curriculum progress) to segments."""

from __future__ import annotations

from rim.methods.base import COT_SEPARATOR, Example, Method, SegmentMethod, SpecialIds
from rim.methods.coconut import Coconut
from rim.methods.pause import Pause
from rim.methods.rim import RiM
from rim.methods.sft import CoT, NoCoT

METHODS = {"rim": RiM, "pause": Pause, "nocot": NoCoT, "cot": CoT, "coconut": Coconut}
BLOCK_METHODS = ("rim", "pause")
OPTIONS: dict[str, tuple[str, ...]] = {
    "coconut": ("thoughts_per_step", "latent_stages", "final_stage")}
"""Method-specific settings of `rim.config.MethodConfig`, by method name."""


def method_options(method_cfg) -> dict:
    """The method-specific settings of a `MethodConfig`, as keyword arguments."""
    return {key: getattr(method_cfg, key) for key in OPTIONS.get(method_cfg.name, ())}


def make_method(name: str, special: SpecialIds, blocks: int, block_size: int, **options) -> Method:
    """Build the method called `name` (one of `METHODS`); `options` are method-specific."""
    if name in BLOCK_METHODS:
        return METHODS[name](special, blocks=blocks, block_size=block_size, **options)
    return METHODS[name](special, **options)


__all__ = [
    "BLOCK_METHODS", "COT_SEPARATOR", "METHODS", "Example", "Method", "SegmentMethod", "SpecialIds",
    "make_method", "method_options",
]
