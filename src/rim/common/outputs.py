"""The files rim writes: where an output the user names may go, and modes that follow the umask.

An output file the user names (`rim data generate --out`, `rim eval --save-predictions`) is
never written inside a model directory (a run's `model/`, an export: what `rim infer` loads),
and replaces an existing file only with `--force`. Files written through a temporary file
(`tempfile.mkstemp`) or by safetensors get mode 0600; `follow_umask` gives them the mode any
other tool would (0644 under the usual umask 022), so another user can read a served model.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rim.common.errors import RimInputError

RUN_INFO = "rim.json"
"""The file that marks a model directory (written by `rim.models.runinfo.RunInfo`)."""


def current_umask() -> int:
    """The process's umask (read from /proc where it can be, so nothing is changed)."""
    try:
        found = re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        found = None
    if found:
        return int(found.group(1), 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | Path) -> Path:
    """Give `path` (and, for a directory, everything under it) the mode a plain `open` or
    `mkdir` would have given it: files 0o666 and directories 0o777, less the umask."""
    path = Path(path)
    mask = current_umask()
    paths = [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]
    for item in paths:
        if item.is_symlink():
            continue
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)
    return path


def model_directory_above(path: str | Path) -> Path | None:
    """The model directory `path` lies in (a directory holding rim.json, or the `model/` of a
    run directory, which holds config.yaml and versions.json), if any; the path itself counts."""
    resolved = Path(path).resolve()
    for directory in (resolved, *resolved.parents):
        if (directory / RUN_INFO).is_file() or (
            directory.name == "model"
            and (directory.parent / "config.yaml").is_file()
            and (directory.parent / "versions.json").is_file()
        ):
            return directory
    return None


def check_not_in_model(path: str | Path, what: str = "output") -> None:
    """Refuse an output inside a model directory, whatever --force says."""
    model = model_directory_above(path)
    if model is not None:
        raise RimInputError(
            f"is inside the model directory {model}; rim never writes its {what} "
            "there (it would break the model): choose another path",
            source=str(path),
        )


def check_output_file(path: str | Path, force: bool) -> Path:
    """An output file the user named: not inside a model directory, not a directory, and new
    unless `force` (the same one-line refusal as `rim data generate`)."""
    path = Path(path)
    check_not_in_model(path)
    if path.is_dir():
        raise RimInputError("is a directory; name a file", source=str(path))
    if path.exists() and not force:
        raise RimInputError("exists; use --force to replace it", source=str(path))
    return path
