"""Rows of a Hugging Face dataset (hub name or local directory), read through the optional
`datasets` package, which is imported only when it is needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rim.common.errors import RimInputError

# Names under which the same split is published by different datasets.
_SPLIT_ALIASES = {
    "validation": ("validation", "valid", "val", "dev"),
    "valid": ("valid", "validation", "val", "dev"),
    "val": ("val", "validation", "valid", "dev"),
    "dev": ("dev", "validation", "valid", "val"),
}

INSTALL_HINT = "pip install 'reasoning-in-memory[data]' (or: pip install datasets)"


def load_hf_rows(
    name_or_dir: str,
    *,
    split: str = "train",
    config: str | None = None,
    cache_dir: str | None = None,
) -> list[dict[str, Any]]:
    """Load one split of a Hugging Face dataset as a list of row dicts.

    `name_or_dir` is a hub name (``whynlp/gsm8k-aug``), a directory written by
    ``save_to_disk``, or a local directory laid out like a hub repository (``data/train-*``
    or ``train.jsonl``...). ``validation``, ``valid``, ``val`` and ``dev`` stand in for each
    other when the requested name is absent. Raises `RimInputError` when `datasets` is missing
    or the dataset or split cannot be loaded.
    """
    try:
        import datasets
    except ImportError:
        raise RimInputError(
            f"reading Hugging Face datasets needs the optional 'datasets' package: {INSTALL_HINT}",
            source=name_or_dir,
        ) from None
    path = Path(name_or_dir)
    try:
        if path.is_dir() and any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json")):
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(name_or_dir, config, cache_dir=cache_dir)
    except Exception as err:  # datasets raises many types: not found, offline, bad files
        raise RimInputError(
            f"cannot load Hugging Face dataset ({type(err).__name__}: {err})", source=name_or_dir
        ) from None
    if isinstance(loaded, datasets.Dataset):
        table = loaded
    else:
        table = _pick_split(loaded, split, name_or_dir)
    return [dict(row) for row in table]


def _pick_split(splits: Any, split: str, source: str) -> Any:
    for name in _SPLIT_ALIASES.get(split, (split,)):
        if name in splits:
            return splits[name]
    raise RimInputError(
        f"dataset has no split {split!r} (splits: {', '.join(sorted(splits))})", source=source
    )
