"""Seeded, deterministic generators of training data, one module per task.

`GENERATORS` maps a task name to a function ``(n, seed, **options) -> list[Record]``; the same
arguments always give the same records.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_type_hints

from rim.common.errors import RimInputError
from rim.data.generators.chain import generate_chain
from rim.data.generators.gsm import generate_gsm
from rim.data.generators.lookup import generate_lookup
from rim.data.generators.multiplication import generate_multiplication
from rim.data.generators.prontoqa import generate_prontoqa
from rim.data.generators.prosqa import generate_prosqa
from rim.data.records import Record

Generator = Callable[..., list[Record]]

GENERATORS: dict[str, Generator] = {
    "multiplication": generate_multiplication,
    "prosqa": generate_prosqa,
    "prontoqa": generate_prontoqa,
    "gsm": generate_gsm,
    "chain": generate_chain,
    "lookup": generate_lookup,
}


def generate(task: str, n: int, seed: int, **options: Any) -> list[Record]:
    """Run the generator of `task`; unknown tasks or options, or options of the wrong type,
    raise `RimInputError`."""
    checked = check_options(task, options)
    return GENERATORS[task](n, seed, **checked)


def check_options(task: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of `task`'s generator, converted to the types its signature declares (`"3"`
    to 3); raise `RimInputError` for an unknown task, an option its generator does not take,
    or a value of the wrong type (`ops=abc`)."""
    if task not in GENERATORS:
        raise RimInputError(f"unknown task {task!r} (known: {', '.join(sorted(GENERATORS))})")
    func = GENERATORS[task]
    accepted = _option_names(func)
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        known = ", ".join(sorted(accepted or ())) or "none"
        raise RimInputError(f"task {task!r} takes no option {', '.join(unknown)} (its options: {known})")
    return {key: _typed(task, func, key, value) for key, value in options.items()}


def _typed(task: str, func: Generator, key: str, value: Any) -> Any:
    """`value` as the type the generator's signature gives option `key` (checked by pydantic;
    an option without a type is passed as it is)."""
    hint = get_type_hints(func).get(key)
    if hint is None:
        return value
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(hint).validate_python(value)
    except ValidationError as err:
        reason = err.errors()[0]["msg"]
        raise RimInputError(
            f"task {task!r}: option {key}={value!r} is not a valid value ({reason})"
        ) from None


def _option_names(func: Generator) -> set[str] | None:
    """Keyword options of a generator beyond ``n`` and ``seed`` (None: it takes any)."""
    params = list(inspect.signature(func).parameters.values())[2:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}


__all__ = ["GENERATORS", "Generator", "check_options", "generate"]
