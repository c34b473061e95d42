"""Command-line flags and listings generated from settings types (`rim.common.schema.Section`).

Each setting is written once, on its field (type, default, constraints, docstring as help):
`add_flags` turns the fields of a settings type into `--flag`s, `flag_values` reads back the
ones given, and `settings_rows` lists every field for `rim config`.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from rim.common.schema import section_type


def _choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values of a Literal annotation (inside an optional), else None."""
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return typing.get_args(arg)
    return None


def _scalar(annotation: Any) -> tuple[type, bool]:
    """(Python type of one value, whether the field is a list) of a simple annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    if typing.get_origin(annotation) is typing.Annotated:
        return _scalar(typing.get_args(annotation)[0])
    base = args[0] if typing.get_origin(annotation) is not list else annotation
    if typing.get_origin(base) is list:
        (item,) = typing.get_args(base) or (str,)
        return item if isinstance(item, type) else str, True
    if typing.get_origin(base) is typing.Literal:
        return type(typing.get_args(base)[0]), False
    if typing.get_origin(base) is typing.Annotated:
        base = typing.get_args(base)[0]
    return (base if isinstance(base, type) else str), False


def positive_int(value: str) -> int:
    """argparse type: an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def add_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel], only: tuple[str, ...] | None = None
) -> None:
    """A `--name` flag for every field of `model` (or those in `only`) with the field's help;
    a flag left out keeps the value of the settings file or the default."""
    for name, field in model.model_fields.items():
        if only is not None and name not in only:
            continue
        kind, many = _scalar(field.annotation)
        default = _default(field)
        help_text = " ".join((field.description or "").split())
        if default is not None:
            help_text += f" (default: {json.dumps(default)})"
        flag = "--" + name.replace("_", "-")
        options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
            continue
        choices = _choices(field.annotation)
        if choices:
            options["choices"] = choices
        parser.add_argument(flag, type=kind, nargs="+" if many else None, **options)


def flag_values(
    args: argparse.Namespace, model: type[BaseModel], only: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The fields of `model` (or those in `only`) given as flags (see `add_flags`)."""
    return {
        name: getattr(args, name)
        for name in model.model_fields
        if (only is None or name in only) and getattr(args, name, None) is not None
    }


def settings_rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(dotted key, type, default, help) of every field of `model`, sections expanded; a union
    of settings types told apart by `name` lists each member's fields after its name."""
    for name, field in model.model_fields.items():
        key = prefix + name
        annotation = field.annotation
        members = _members(annotation)
        if members:
            for member in members:
                tag = member.model_fields["name"].default
                yield (f"{key}", "section", f"name: {tag}", (member.__doc__ or "").strip().split("\n")[0])
                yield from settings_rows(member, f"{key}.")
            continue
        sub = section_type(annotation)
        if sub is not None and sub is not type(None):
            yield from settings_rows(sub, f"{key}.")
            continue
        default = _default(field)
        if name == "name" and prefix and default is not None:
            continue  # a union member's tag, shown on its section line
        yield (key, _type_name(annotation), json.dumps(default), (field.description or "").replace("\n", " "))


def _members(annotation: Any) -> list[type[BaseModel]]:
    """Members of a discriminated union of settings types (empty for anything else)."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return models if len(models) > 1 else []


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        value = field.default_factory()
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return None if field.default is PydanticUndefined else field.default


def _type_name(annotation: Any) -> str:
    """A short name: `int`, `float | None`, `no | bf16 | fp16` for a Literal."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(map(str, typing.get_args(annotation)))
    if isinstance(annotation, type):
        return annotation.__name__
    args = typing.get_args(annotation)
    if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else _type_name(a) for a in args)
    return str(annotation).replace("typing.", "")
