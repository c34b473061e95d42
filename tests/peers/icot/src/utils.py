"""Separator positions and padding."""

import torch


def get_sep_position(input_ids, sep_id, skip=0):
    """Per row, the position of the (skip+1)-th separator."""
    positions = []
    for row in input_ids:
        found = (row == sep_id).nonzero().flatten()
        positions.append(int(found[skip]))
    return torch.tensor(positions, dtype=torch.long, device=input_ids.device)


def batch_ids(rows, pad_id, device, dtype):
    """Rows of different lengths in one tensor, right-padded with `pad_id`."""
    out = torch.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=dtype, device=device)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
