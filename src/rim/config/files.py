"""YAML config files composed with `include:`, and `key=value` overrides.

A file may list other files under `include:` (paths relative to it); they are merged in order,
then the file itself. Merging follows the schema: a section (a settings type such as `trainer`
or `trainer.stage1`) merges key by key; any other value, free-form mappings such as
`model.scratch` included, is replaced whole by the later one, and so is a section whose `name`
differs from the earlier one's (a recipe that includes RiM's part and names another method).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rim.common.errors import RimInputError
from rim.common.fileio import read_text
from rim.common.schema import section_type

Origins = dict[str, str]
"""Where each dotted key was set: `file.yaml:3`, `file.yaml:3 (included from top.yaml)` or
`command line: key=value`; errors about a key name its origin."""


def read_yaml(
    path: str | Path, schema: type[BaseModel] | None = None, origins: Origins | None = None
) -> dict[str, Any]:
    """A YAML mapping with its `include:` files merged in (as sections of `schema` merge);
    errors name the file (and line); `origins`, if given, receives where each key was set."""
    return _read_with_includes(Path(path), (), schema, origins)


def _read_with_includes(
    path: Path,
    seen: tuple[Path, ...],
    schema: type[BaseModel] | None,
    origins: Origins | None,
    parent: Path | None = None,
) -> dict[str, Any]:
    included = f" (included from {parent})" if parent is not None else ""
    if path.is_dir():
        raise RimInputError(f"is a directory, not a config file{included}", source=str(path))
    if not path.is_file():
        raise RimInputError(f"config file not found{included}", source=str(path))
    if path.resolve() in seen:
        raise RimInputError("config includes itself", source=str(path))
    try:
        data = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise RimInputError(
            "malformed YAML", source=str(path), line=None if line is None else line + 1
        ) from None
    if not isinstance(data, dict):
        raise RimInputError("a config file must hold a mapping", source=str(path))
    merged: dict[str, Any] = {}
    includes = data.pop("include", []) or []
    includes = [includes] if isinstance(includes, str) else includes
    wrong = (
        next((i for i in includes if not isinstance(i, str) or not i.strip()), None)
        if isinstance(includes, list)
        else includes
    )
    if wrong is not None:
        raise RimInputError(
            f"field 'include' must be a file name or a list of file names; {wrong!r} is not one",
            source=str(path),
            field="include",
        )
    for inc in includes:
        inner: Origins | None = {} if origins is not None else None
        merge(
            merged,
            _read_with_includes(path.parent / inc, seen + (path.resolve(),), schema, inner, path),
            schema,
        )
        if origins is not None and inner is not None:  # `inner` is a dict exactly when `origins` is
            origins.update(
                {k: v if "included from" in v else f"{v} (included from {path})" for k, v in inner.items()}
            )
    merge(merged, data, schema)
    if origins is not None:
        origins.update(_key_lines(path))
    return merged


def _key_lines(path: Path) -> Origins:
    """`file:line` of every dotted key of a YAML file."""
    found: Origins = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                dotted = f"{prefix}{key.value}"
                found[dotted] = f"{path}:{key.start_mark.line + 1}"
                walk(value, dotted + ".")

    walk(yaml.compose(read_text(path)), "")
    found.pop("include", None)
    return found


def merge(into: dict[str, Any], new: dict[str, Any], schema: type[BaseModel] | None) -> None:
    """Merge `new` into `into`: sections of `schema` key by key, other values replaced; a
    section naming another `name` than the one before (another method) replaces it whole."""
    for key, value in new.items():
        old = into.get(key)
        if (
            isinstance(value, dict)
            and isinstance(old, dict)
            and "name" in value
            and old.get("name", value["name"]) != value["name"]
        ):
            into[key] = value
            continue
        sub = _section(schema, key, {**_as_dict(into.get(key)), **_as_dict(value)})
        if sub is not None and isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value, sub)
        else:
            into[key] = value


def set_dotted(
    raw: dict[str, Any],
    key: str,
    value: Any,
    schema: type[BaseModel] | None = None,
    merge_mapping: bool = False,
    source: str = "command line",
) -> None:
    """Set the dotted `key` (`trainer.stage2.steps`) of a raw config to `value`; with
    `merge_mapping`, a mapping value merges into a section as an included file would."""
    parts = key.split(".")
    node, node_schema = raw, schema
    for part in parts[:-1]:
        node_schema = _section(node_schema, part, _as_dict(node.get(part)))
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RimInputError(f"cannot set {key!r}: {part!r} is not a section", source=source)
    if merge_mapping and isinstance(value, dict):
        merge(node, {parts[-1]: value}, node_schema)
    else:
        node[parts[-1]] = value


def apply_overrides(
    raw: dict[str, Any],
    overrides: list[str] | tuple[str, ...],
    schema: type[BaseModel] | None = None,
    origins: Origins | None = None,
) -> None:
    """Apply `key=value` overrides (values read as YAML) to a raw config."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RimInputError(f"override {item!r} is not key=value", source="command line")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise RimInputError(
                f"override {item!r}: the value is not valid YAML", source="command line"
            ) from None
        set_dotted(raw, key.strip(), parsed, schema)
        if origins is not None:
            origins.update({k: f"command line: {item}" for k in _dotted_keys(key.strip(), parsed)})


def origin_of(origins: Origins, field: str) -> str | None:
    """Where `field` (or the nearest section above it) was set, if known."""
    parts = field.split(".")
    for n in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:n]))
        if found is not None:
            return found
    return None


def _dotted_keys(key: str, value: Any) -> list[str]:
    keys = [key]
    if isinstance(value, dict):
        for sub, inner in value.items():
            keys += _dotted_keys(f"{key}.{sub}", inner)
    return keys


def _section(schema: type[BaseModel] | None, key: str, value: Any) -> type[BaseModel] | None:
    """The settings type of `schema.key` if that field is a section, else None."""
    if schema is None or key not in schema.model_fields:
        return None
    return section_type(schema.model_fields[key].annotation, value)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
