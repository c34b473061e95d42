"""Typed settings on pydantic: the base of every config section, and its one-line errors.

Every settings type (run config sections, each method's settings, benchmark settings) is a
`Section`: unknown keys are rejected, constraints live on the fields, and a field's docstring
is its help (shown by `rim config` and in generated command-line flags). `validate` turns
pydantic's errors into a `RimInputError` that names the source and the dotted field.

pydantic v2 rather than OmegaConf: it validates constraints (`ge`, `lt`, literals), tells a
method's settings apart by `name` (a discriminated union), writes JSON schema, and reads
attribute docstrings as field help, so each setting is described once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from rim.common.errors import RimInputError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

S = TypeVar("S", bound=BaseModel)


class Section(BaseModel):
    """A block of settings: unknown keys rejected, docstrings as help, checked on assignment."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


def validate(cls: type[S], raw: Any, source: str, prefix: str = "") -> S:
    """`cls` from the mapping `raw`; on bad input a `RimInputError` naming `source` and the field
    (`prefix` is prepended to field names, e.g. for a section read on its own)."""
    if not isinstance(raw, dict):
        raise RimInputError(f"field '{prefix.rstrip('.') or 'config'}' must be a mapping", source=source)
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        field = prefix + ".".join(str(p) for p in _input_path(raw, first["loc"]))
        raise RimInputError(describe_error(cls, raw, first, prefix), source=source, field=field) from None


def describe_error(cls: type[BaseModel], raw: dict, error: ErrorDetails, prefix: str = "") -> str:
    """One line for the first pydantic error: the dotted field and what is wrong with it."""
    path = _input_path(raw, error["loc"])
    key = prefix + ".".join(str(p) for p in path)
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "extra_forbidden":
        known = _known_keys(cls, raw, path[:-1])
        tail = f" (known: {', '.join(known)})" if known else ""
        return f"unknown config key '{key}'{tail}"
    if kind == "union_tag_invalid":
        field = key + "." + str(ctx.get("discriminator", "name")).strip("'")
        return f"field '{field}' must be one of {_plain(ctx.get('expected_tags', ''))}"
    if kind == "union_tag_not_found":
        return f"field '{key}' needs a {ctx.get('discriminator', 'name')}"
    if kind == "literal_error":
        return f"field '{key}' must be one of {_plain(ctx.get('expected', ''))}, got {value!r}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("greater than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, name = bounds[kind]
        return f"field '{key}' must be {words} {ctx.get(name)}, got {value!r}"
    types = {
        "int": "int",
        "float": "float",
        "string": "str",
        "bool": "bool",
        "list": "list",
        "dict": "a mapping",
        "model": "a mapping",
        "model_attributes": "a mapping",
    }
    base = kind.split("_")[0] if not kind.startswith("model_attributes") else "model_attributes"
    if kind.endswith(("_type", "_parsing", "_from_float")) and base in types:
        return f"field '{key}' must be {types[base]}, got {value!r}"
    if kind == "missing":
        return f"field '{key}' is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"field '{key}' {message}" if key else message


def _input_path(raw: Any, loc: tuple) -> list:
    """The part of pydantic's `loc` that names keys of the input: a discriminated union adds
    its tag (`method.rim.blocks`), which is not a key of the input and is dropped."""
    path, node = [], raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
        elif last and isinstance(node, dict):  # a missing key; after a leaf, a union's tag
            path.append(part)
    return path


def _known_keys(cls: type[BaseModel], raw: Any, path: list) -> list[str]:
    """Field names of the section at `path` (following discriminated unions by their tag)."""
    model: type[BaseModel] = cls
    node = raw
    for part in path:
        field = model.model_fields.get(part) if isinstance(model, type) else None
        node = node.get(part) if isinstance(node, dict) else None
        if field is None:
            return []
        found = section_type(field.annotation, node) or _default_type(field)
        if found is None:
            return []
        model = found
    return sorted(model.model_fields)


def _default_type(field: Any) -> type[BaseModel] | None:
    """The settings type of a field's default (a union's member when the input names none)."""
    default = field.default_factory() if field.default_factory is not None else field.default
    return type(default) if isinstance(default, BaseModel) else None


def section_type(annotation: Any, value: Any = None) -> type[BaseModel] | None:
    """The `BaseModel` a field holds: the annotation itself, the one model of an optional, or
    for a union of models told apart by `name`, the one whose name `value` gives."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Annotated:
        return section_type(args[0], value)
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(models) == 1:
        return models[0]
    name = value.get("name") if isinstance(value, dict) else None
    for model in models:
        if model.model_fields.get("name") and model.model_fields["name"].default == name:
            return model
    return None


def _plain(text: str) -> str:
    return str(text).replace("'", "")


def _device(value: str) -> str:
    if value != "cpu" and value != "cuda" and not value.startswith("cuda:"):
        raise ValueError(f"must be cpu, cuda or cuda:N, got {value!r}")
    return value


Device = Annotated[str, AfterValidator(_device)]
"""A torch device name: `cpu`, `cuda` or `cuda:N` (whether it exists is checked where it is
used: `rim.models.modeling.torch_device`)."""
Dtype = Literal["float32", "bfloat16", "float16"]
"""A weights dtype (see `rim.models.modeling.DTYPES`)."""
