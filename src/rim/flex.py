"""FlexAttention for the training layout: the block-causal rule as a `BlockMask` built from
per-token segment ids and each example's "sees" table, instead of a dense [B, 1, S, S] float
mask (`model.attn_implementation: flex_attention`). Blocks of the mask that nothing attends to
are skipped, so long packed rows cost what their examples cost."""

from __future__ import annotations

import torch


def block_mask(batch: dict[str, torch.Tensor]):
    """The FlexAttention mask of a batch collated with `sparse=True` (see `segments.collate`):
    a token sees its own segment causally and, in full, the segments its segment sees; a
    padding position sees only itself."""
    from torch.nn.attention.flex_attention import create_block_mask

    allowed = allowed_pairs(batch["segment_ids"], batch["sees"])

    def rule(b, h, q, k):
        return allowed[b, q, k]

    size = allowed.shape[1]
    return create_block_mask(rule, allowed.shape[0], None, size, size, device=allowed.device)


def allowed_pairs(seg: torch.Tensor, sees: torch.Tensor) -> torch.Tensor:
    """[B, S, S] booleans: query i may attend to key j (a compact rule the mask's blocks are
    read from; the kernels then skip the blocks with nothing allowed)."""
    size, n_seg = seg.shape[1], sees.shape[1]
    index = seg.clamp(min=0)
    rows = sees.gather(1, index[:, :, None].expand(-1, -1, n_seg))        # [B, S, n_seg]
    seen = rows.gather(2, index[:, None, :].expand(-1, size, -1))           # [B, S, S]
    real = seg >= 0
    same = (seg[:, :, None] == seg[:, None, :]) & torch.ones(size, size, dtype=torch.bool,
                                                              device=seg.device).tril()
    return ((same | seen) & real[:, :, None] & real[:, None, :]) | torch.eye(
        size, dtype=torch.bool, device=seg.device)
