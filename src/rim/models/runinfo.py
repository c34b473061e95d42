"""`rim.json`: what a saved model needs besides its weights and tokenizer to answer as trained.

`RunInfo` is its one reader and writer. Plain transformers users need only `prompt_suffix`
(the memory blocks appended after the question); `rim` rebuilds the method from `method`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from rim.common.errors import RimInputError
from rim.common.outputs import RUN_INFO
from rim.common.schema import Section
from rim.data.answers import Checker
from rim.methods import METHODS, AnyMethodConfig


class RunInfo(Section):
    """The method settings, answer checker and decoding budget of a saved model."""

    method: AnyMethodConfig
    """The method and its settings, as trained."""
    checker: Checker = "exact"
    """How answers are compared (the run's `data.checker`)."""
    max_new_tokens: int = Field(32, ge=1)
    """Longest generation."""
    prompt_suffix: str = ""
    """Text appended to a question to make the prompt (e.g. K memory blocks)."""

    def save(self, model_dir: str | Path) -> Path:
        """Write `model_dir/rim.json`."""
        path = Path(model_dir) / RUN_INFO
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> RunInfo:
        """Read `model_dir/rim.json` (also the layout written before `method` was a section)."""
        path = Path(model_dir) / RUN_INFO
        if not path.is_file():
            raise RimInputError(f"not a rim run or model directory (no {RUN_INFO})", source=str(model_dir))
        try:
            raw = json.loads(path.read_text())
            return cls.model_validate(_upgrade(raw))
        except (json.JSONDecodeError, ValidationError) as err:
            first = str(err).splitlines()[0]
            raise RimInputError(f"unreadable {RUN_INFO}: {first}", source=str(path)) from None


def model_directory(path: str | Path) -> Path:
    """The model directory of a run directory (its `model/`), or `path` itself."""
    path = Path(path)
    if (path / "model" / RUN_INFO).is_file():
        return path / "model"
    if not (path / RUN_INFO).is_file():
        raise RimInputError(f"not a rim run or model directory (no {RUN_INFO})", source=str(path))
    return path


def _upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """The first layout: `method` a name, with `blocks`, `block_size` and `options` beside it."""
    if not isinstance(raw.get("method"), str):
        return raw
    raw = dict(raw)
    name = raw.pop("method")
    settings = {"name": name, **raw.pop("options", {})}
    blocks = {k: raw.pop(k) for k in ("blocks", "block_size") if k in raw}
    fields = METHODS[name].Config.model_fields if name in METHODS else {}
    settings.update({k: v for k, v in blocks.items() if k in fields})
    return {**raw, "method": settings}
