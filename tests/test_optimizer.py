"""The trainer's AdamW: fused where torch has the kernel, the same update as torch's default."""

from __future__ import annotations

import copy

import torch

from rim.training.optimizer import adamw


def test_the_trainers_adamw_is_fused_on_cpu_and_updates_as_torchs_default():
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))
    theirs, start = copy.deepcopy(ours), copy.deepcopy(ours)
    fused = adamw(ours.parameters(), lr=1e-2, weight_decay=0.1)
    plain = torch.optim.AdamW(theirs.parameters(), lr=1e-2, weight_decay=0.1)
    assert fused.defaults["fused"] is True and not plain.defaults["fused"]
    for _ in range(5):
        x = torch.randn(32, 8)
        for model, optimizer in ((ours, fused), (theirs, plain)):
            model(x).pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    apart = [(a - b).abs().max() for a, b in zip(ours.parameters(), theirs.parameters(), strict=True)]
    moved = [(a - b).abs().max() for a, b in zip(ours.parameters(), start.parameters(), strict=True)]
    assert max(apart) < 1e-6 and min(moved) > 1e-2  # 5 steps of about lr each, the same to rounding


def test_weights_without_a_fused_kernel_get_torchs_default():
    on_meta = torch.nn.Linear(4, 4, device="meta")
    assert adamw(on_meta.parameters(), lr=1e-3, weight_decay=0.0).defaults["fused"] is None
