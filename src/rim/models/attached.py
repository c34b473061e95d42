"""A method's own modules on the causal LM (CODI's thought projection): submodules of the inner
model whose names start with `rim_`. They train and checkpoint with the model; a saved model keeps
them out of its `model.safetensors` (plain transformers loads it without unexpected keys) and in
a file of their own, `<name>.safetensors`, which `load_attached` reads back."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rim.common.errors import RimInputError
from rim.common.outputs import follow_umask
from rim.core.losses import inner_model

PREFIX = "rim_"


def attached_names(model: torch.nn.Module) -> list[str]:
    """Names of the method's own modules on the model (inside any wrapper)."""
    return [name for name, _ in inner_model(model).named_children() if name.startswith(PREFIX)]


def split_attached(
    state: dict[str, torch.Tensor], names: list[str]
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """The model's state without the attached modules, and each module's own state (its keys
    relative to it), from a state dict of the model or of any wrapper around it."""
    plain: dict[str, torch.Tensor] = {}
    own: dict[str, dict[str, torch.Tensor]] = {name: {} for name in names}
    for key, value in state.items():
        parts = key.split(".")
        found = next((i for i, part in enumerate(parts) if part in own), None)
        if found is None:
            plain[key] = value
        else:
            own[parts[found]][".".join(parts[found + 1 :])] = value
    return plain, own


def save_attached(own: dict[str, dict[str, torch.Tensor]], out: Path) -> None:
    """Write each attached module's state to `out/<name>.safetensors`."""
    for name, state in own.items():
        path = out / f"{name}.safetensors"
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path))
        follow_umask(path)


def load_attached(model: torch.nn.Module, model_dir: Path) -> None:
    """Load every attached module of `model` from `model_dir/<name>.safetensors` (strictly:
    a missing file or a key that does not match is an error, never a module left as built)."""
    inner = inner_model(model)
    for name in attached_names(model):
        path = model_dir / f"{name}.safetensors"
        if not path.is_file():
            raise RimInputError(
                f"{path.name} is missing: the method's {name} cannot be restored", source=str(model_dir)
            )
        try:
            getattr(inner, name).load_state_dict(load_file(str(path)), strict=True)
        except (RuntimeError, OSError) as err:
            first = str(err).strip().splitlines()[0]
            raise RimInputError(f"cannot load {path.name}: {first}", source=str(model_dir)) from None
