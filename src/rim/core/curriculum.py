"""Loss weights of the RiM curriculum: stage-1 fading and stage-2 refinement."""

from __future__ import annotations


def fading_weight(t: int, n_steps: int, progress: float) -> float:
    """Weight of stage-1 step readout `t` (0-based: the readout after t blocks, target r_{t+1}).

    Supervision fades linearly, earliest steps first, on a schedule relative to the example's
    own number of steps T: ``clip((t + 1) - progress * T, 0, 1)``. At progress 0 every step
    has weight 1; at progress 1 every step has weight 0. The answer readout is not faded.
    """
    if not 0 <= t < n_steps:
        raise ValueError(f"step readout {t} out of range for {n_steps} steps")
    return min(1.0, max(0.0, (t + 1) - progress * n_steps))


def answer_weights(n_blocks: int) -> list[float]:
    """Stage-2 weights alpha_k for the answer after block k = 1..K: linear in k, summing to 1."""
    if n_blocks < 1:
        raise ValueError("need at least one block")
    total = n_blocks * (n_blocks + 1) / 2
    return [k / total for k in range(1, n_blocks + 1)]


def fading_progress(fraction: float, start: float = 0.0, end: float = 1.0) -> float:
    """Progress p in [0, 1] of the fading phase, which spans fractions [start, end] of stage 1;
    `fraction` is how far stage 1 is (step / steps of the step being trained)."""
    if end <= start:
        return 0.0 if fraction < start else 1.0
    return min(1.0, max(0.0, (fraction - start) / (end - start)))
