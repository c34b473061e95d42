"""Answer checking. (Placeholder: exact match after whitespace normalisation.)"""

from __future__ import annotations


def check_answer(prediction: str, gold: str, checker: str = "exact") -> bool:
    """True if `prediction` answers `gold` under `checker`."""
    return " ".join(prediction.split()) == " ".join(gold.split())
