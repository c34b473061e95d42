"""Training methods. Each is a small class from an example (and curriculum progress) to segments."""

from __future__ import annotations

from rim.methods.base import COT_SEPARATOR, Example, Method, SpecialIds
from rim.methods.pause import Pause
from rim.methods.rim import RiM
from rim.methods.sft import CoT, NoCoT

METHODS = {"rim": RiM, "pause": Pause, "nocot": NoCoT, "cot": CoT}
BLOCK_METHODS = ("rim", "pause")


def make_method(name: str, special: SpecialIds, blocks: int, block_size: int) -> Method:
    """Build the method called `name` (one of `METHODS`)."""
    if name in BLOCK_METHODS:
        return METHODS[name](special, blocks=blocks, block_size=block_size)
    return METHODS[name](special)


__all__ = ["COT_SEPARATOR", "METHODS", "Example", "Method", "SpecialIds", "make_method"]
