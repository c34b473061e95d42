"""Reasoning in Memory (RiM): train a language model to reason inside fixed memory blocks.

The public API, in the shape of TRL (`SFTConfig` + `SFTTrainer`)::

    import rim
    trainer = rim.RiMTrainer(model="gpt2", args=rim.RiMConfig(output_dir="runs/x", blocks=8),
                             train_dataset=ds, eval_dataset=valid, peft_config=lora)
    trainer.train()
    trainer.evaluate()                       # accuracy after the last block and after each
    rim.load("runs/x").answer(["5 6 3 2 * 7 4 3 4"])

Names load on first use, so `import rim` (and `rim.cli`) imports neither torch nor
transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "RiMTrainer": "rim.api.trainer",
    "load": "rim.api.trainer",
    "RiMConfig": "rim.api.config",
    "RimInputError": "rim.common.errors",
    "RimRunError": "rim.common.errors",
    "Record": "rim.data.records",
    "Config": "rim.config",
    "load_config": "rim.config",
    "run_training": "rim.training.run",
    "load_records": "rim.data.sources",
    "LoadedRun": "rim.inference.infer",
    "add_block_tokens": "rim.models.modeling",
}
"""Each public name and the module that defines it. The subpackages are the layers, bottom up:
`common`, `data`, `core` (the method core), `methods`, `config`, `models`, `inference`, then
`training` and `analysis`, then `api` and `bench`, then `cli` (contracts in pyproject.toml)."""

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import the module of a public name when the name is first used."""
    if name not in _WHERE:
        raise AttributeError(f"module 'rim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
