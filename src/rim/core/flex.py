"""FlexAttention for the training layout: the block-causal rule as a `BlockMask` built from
per-token segment ids and each example's "sees" table, instead of a dense [B, 1, S, S] float
mask (`model.attn_implementation: flex_attention`). Blocks of the mask that nothing attends to
are skipped, so long packed rows cost what their examples cost."""

from __future__ import annotations

import torch


def block_mask(batch: dict[str, torch.Tensor]):
    """The FlexAttention mask of a batch collated with `sparse=True` (see `segments.collate`):
    a token sees its own segment causally and, in full, the segments its segment sees; a
    padding position sees only itself. The rule reads the [B, S] segment ids and the
    [B, segments, segments] table: nothing of size S x S is built."""
    from torch.nn.attention.flex_attention import create_block_mask

    seg, sees = batch["segment_ids"], batch["sees"]
    rows, size = seg.shape
    n_seg = sees.shape[1]
    table = sees.reshape(rows, n_seg * n_seg)

    def rule(b, h, q, k):
        sq, sk = seg[b, q], seg[b, k]
        same = (sq == sk) & (q >= k)
        seen = table[b, sq.clamp(min=0) * n_seg + sk.clamp(min=0)]
        return ((same | seen) & (sq >= 0) & (sk >= 0)) | (q == k)

    return create_block_mask(rule, rows, None, size, size, device=seg.device)
