"""Files rim reads and paths it will write, each failure one line (`RimInputError`, exit 2).

- `read_text`, `decode_text`, `read_stdin`: text as UTF-8 (a byte-order mark is skipped); bytes
  that are not UTF-8 are refused naming the file and line, not a traceback.
- `check_creatable`, `check_outputs`: an output path the user names (`--out`,
  `--save-predictions`) can be created, checked before any work starts: not through a file,
  not in a read-only or pseudo filesystem (`/proc`).
- `check_weights`, `check_checkpoint`, `check_appendable`: weights, a checkpoint or a log file
  that are whole and usable, checked before a command loads or resumes from them.

Only the standard library is imported at the top, so that `rim --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rim.common.errors import RimInputError

OUTPUT_OPTIONS = {"out": "--out", "save_predictions": "--save-predictions"}
"""Command-line options (argparse names) that name a file or directory rim will create."""


def decode_text(data: bytes, source: str) -> str:
    """`data` as UTF-8 text (a leading byte-order mark dropped); bytes that are not UTF-8
    raise `RimInputError` naming `source`, the line and the column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise RimInputError(
            f"byte 0x{data[err.start]:02x} at column {column} is not UTF-8; save the file as UTF-8",
            source=source,
            line=line,
        ) from None


def read_text(path: str | Path, source: str | None = None) -> str:
    """The text of the file `path` as UTF-8 (see `decode_text`); errors name `source` (default
    the path)."""
    source = str(path) if source is None else source
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise RimInputError("file not found", source=source) from None
    except IsADirectoryError:
        raise RimInputError("is a directory, not a file", source=source) from None
    except OSError as err:
        raise RimInputError(f"cannot read ({err.strerror or err})", source=source) from None
    return decode_text(data, source)


def read_stdin(source: str = "<stdin>") -> str:
    """All of standard input as UTF-8 text (see `decode_text`)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # already text (a test's StringIO)
        return sys.stdin.read()
    return decode_text(buffer.read(), source)


def check_outputs(args: Any) -> None:
    """Check every output path of a parsed command line (`OUTPUT_OPTIONS`) can be created
    (`check_creatable`); a dry run writes nothing and is not checked."""
    if getattr(args, "dry_run", False):
        return
    for name, flag in OUTPUT_OPTIONS.items():
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            check_creatable(value, "OUT" if getattr(args, "command", None) == "export" else flag)


def check_creatable(path: str | Path, flag: str = "--out") -> Path:
    """Raise `RimInputError` unless rim can write `path` (a file or a directory, made with its
    parents if missing): an existing path must be writable; a new one must lie under a
    directory (not a file) where entries can be created, which is tried (an empty directory is
    made and removed, the parent's times restored), since neither permissions nor a
    filesystem's read-only flag tell about `/proc`. What a command does with an existing path
    (refuse, resume, replace with --force) is its own check."""
    path = Path(path)
    advice = f"choose another {flag}"
    try:
        if path.exists() or path.is_symlink():
            if not os.access(path, os.W_OK):
                raise RimInputError(f"is not writable; {advice}", source=str(path))
            return path
        parent = next(p for p in path.parents if p.exists())
    except PermissionError as err:
        raise RimInputError(f"cannot be created ({err.strerror}); {advice}", source=str(path)) from None
    if not parent.is_dir():
        raise RimInputError(
            f"cannot be created: {parent} is a file, not a directory; {advice}", source=str(path)
        )
    try:
        times = parent.stat()
        os.rmdir(tempfile.mkdtemp(prefix=".rim-check-", dir=parent))
        os.utime(parent, ns=(times.st_atime_ns, times.st_mtime_ns))
    except OSError as err:
        where = str(parent.resolve()) if str(parent) == "." else str(parent)
        raise RimInputError(
            f"cannot be created: nothing can be created in {where} ({err.strerror or err}); {advice}",
            source=str(path),
        ) from None
    return path


def check_weights(files: Iterable[Path], advice: str) -> None:
    """Open the header of every safetensors file in `files` (which checks that the file is as
    long as its header says); a truncated or corrupt one raises `RimInputError` naming it."""
    from safetensors import safe_open

    for path in files:
        try:
            with safe_open(str(path), framework="np"):
                pass
        except Exception as err:  # SafetensorError is not exported under a stable name
            raise RimInputError(
                f"truncated or corrupt weights ({_first_line(err)}); {advice}", source=str(path)
            ) from None


def check_model_files(directory: str | Path) -> None:
    """The weights (`*.safetensors`) and JSON files (config, tokenizer) of a saved model
    directory are whole: checked before `from_pretrained`, whose own errors are tracebacks."""
    directory = Path(directory)
    advice = "the model files are damaged: copy or train the run again"
    check_weights(sorted(directory.glob("*.safetensors")), advice)
    for path in sorted(directory.glob("*.json")):
        try:
            json.loads(read_text(path))
        except json.JSONDecodeError as err:
            raise RimInputError(
                f"malformed JSON ({err.msg}); {advice}", source=str(path), line=err.lineno
            ) from None


def check_checkpoint(checkpoint: Path, position_type: type) -> None:
    """A checkpoint to resume from is whole: its `progress.json` a position (`position_type`, a
    dataclass, checked by pydantic), its weights readable safetensors, its `torch.save` files
    (optimizer, random states) complete archives."""
    from pydantic import TypeAdapter, ValidationError

    advice = (
        f"the checkpoint is damaged: delete {checkpoint} to resume from the one before, "
        "or train again without --resume"
    )
    progress = checkpoint / "progress.json"
    try:
        position = json.loads(read_text(progress))
    except json.JSONDecodeError as err:
        raise RimInputError(
            f"malformed JSON ({err.msg}); {advice}", source=str(progress), line=err.lineno
        ) from None
    known = {f.name for f in dataclasses.fields(position_type)}
    unknown = sorted(set(position) - known) if isinstance(position, dict) else []
    try:
        if unknown:
            raise RimInputError(
                f"not a checkpoint position (unknown key {unknown[0]!r}); {advice}", source=str(progress)
            )
        TypeAdapter(position_type).validate_python(position)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "position"
        raise RimInputError(
            f"not a checkpoint position ({where}: {first['msg']}); {advice}", source=str(progress)
        ) from None
    check_weights(sorted(checkpoint.glob("*.safetensors")), advice)
    for path in sorted([*checkpoint.glob("*.bin"), *checkpoint.glob("*.pkl"), *checkpoint.glob("*.pt")]):
        try:
            with zipfile.ZipFile(path):
                pass
        except (zipfile.BadZipFile, OSError) as err:
            raise RimInputError(
                f"truncated or corrupt ({_first_line(err)}); {advice}", source=str(path)
            ) from None


def check_appendable(path: Path, advice: str) -> None:
    """A log file that a resumed run appends to can be opened for appending (nothing is
    written; a missing one is created later, in a directory that exists)."""
    if not path.exists() and not path.is_symlink():
        return
    try:
        with path.open("ab"):
            pass
    except OSError as err:
        raise RimInputError(
            f"cannot be written ({err.strerror or err}); {advice}", source=str(path)
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
