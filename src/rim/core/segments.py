"""The method core: a training sequence is a list of segments; this module turns it into tensors.

A segment is a run of tokens (the question, a memory block, a readout, a CoT chain). It sees
its own earlier tokens and, in full, the earlier segments listed in `sees`; nothing else. From
that alone follow:

* the attention mask: causal inside a segment, full view of the segments it sees;
* the position ids: a segment continues right after the last position of the last segment it
  sees, so a readout after block t sits exactly where the answer sits at inference;
* the labels: a segment with a loss weight is predicted token by token, its first token from
  the last position of the last segment it sees (the "anchor"), and an end token from its own
  last position. Per-token weights are ``weight / n_targets`` so a readout's loss is its mean
  token NLL times its weight.

Everything here is plain Python lists until `collate`, which pads a batch (on the right) and
builds the additive float mask ``[batch, 1, seq, seq]`` with 0 (allowed) and ``finfo.min``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

IGNORE = -100


@dataclass(frozen=True)
class SpecialIds:
    """Token ids a layout needs: block open `<b>`, memory `<m>`, block close `</b>`, end, pad."""

    open: int
    memory: int
    close: int
    eos: int
    pad: int

    def block(self, size: int) -> tuple[int, ...]:
        """One memory block: `<b>` + size x `<m>` + `</b>`."""
        return (self.open, *([self.memory] * size), self.close)


@dataclass(frozen=True)
class Segment:
    """A run of tokens in a training sequence.

    Attributes:
        ids: input token ids of the segment.
        sees: indices of earlier segments this segment attends to in full.
        weight: loss weight of the segment's targets (0 = not predicted).
        end_id: token predicted after the segment's last token (e.g. EOS); only if weight > 0.
        kind: a label for inspection ("question", "block", "readout", ...).
        block: for readouts, the number of memory blocks they see.
    """

    ids: tuple[int, ...]
    sees: tuple[int, ...] = ()
    weight: float = 0.0
    end_id: int | None = None
    kind: str = ""
    block: int | None = None


@dataclass
class Packed:
    """One example laid out as flat lists, ready to collate."""

    input_ids: list[int]
    segment_ids: list[int]
    position_ids: list[int]
    labels: list[int]
    weights: list[float]
    sees: list[tuple[int, ...]]
    readouts: list[tuple[int, int, int | None]] = field(default_factory=list)
    """(segment index, anchor position, block) for every weighted segment."""


def pack(segments: list[Segment]) -> Packed:
    """Lay out `segments` one after another and derive positions, labels and weights."""
    input_ids: list[int] = []
    segment_ids: list[int] = []
    position_ids: list[int] = []
    starts: list[int] = []
    last_pos: list[int] = []
    for s, seg in enumerate(segments):
        if any(j >= s for j in seg.sees):
            raise ValueError(f"segment {s} may only see earlier segments, got {seg.sees}")
        if not seg.ids:
            raise ValueError(f"segment {s} ({seg.kind}) is empty")
        start = last_pos[max(seg.sees)] + 1 if seg.sees else 0
        starts.append(len(input_ids))
        input_ids.extend(seg.ids)
        segment_ids.extend([s] * len(seg.ids))
        position_ids.extend(range(start, start + len(seg.ids)))
        last_pos.append(start + len(seg.ids) - 1)

    labels = [IGNORE] * len(input_ids)
    weights = [0.0] * len(input_ids)
    readouts = []
    for s, seg in enumerate(segments):
        if seg.weight == 0.0:
            continue
        if not seg.sees or seg.end_id is None:
            raise ValueError(f"weighted segment {s} needs a context to see and an end_id")
        anchor_seg = max(seg.sees)
        anchor = starts[anchor_seg] + len(segments[anchor_seg].ids) - 1
        # Predict ids[0] at the anchor, ids[i+1] at ids[i], end_id at the last token.
        targets = list(seg.ids) + [seg.end_id]
        at = [anchor] + list(range(starts[s], starts[s] + len(seg.ids)))
        if labels[anchor] != IGNORE:
            raise ValueError(f"two segments are read out from the same position ({anchor})")
        w = seg.weight / len(targets)
        for pos, tok in zip(at, targets):
            labels[pos] = tok
            weights[pos] = w
        readouts.append((s, anchor, seg.block))
    return Packed(
        input_ids=input_ids,
        segment_ids=segment_ids,
        position_ids=position_ids,
        labels=labels,
        weights=weights,
        sees=[seg.sees for seg in segments],
        readouts=readouts,
    )


def attention_allowed(packed: Packed) -> torch.Tensor:
    """Boolean [seq, seq] matrix: query i may attend to key j."""
    seg = torch.tensor(packed.segment_ids)
    n_seg = len(packed.sees)
    sees = torch.zeros(n_seg, n_seg, dtype=torch.bool)
    for s, seen in enumerate(packed.sees):
        sees[s, list(seen)] = True
    same = seg[:, None] == seg[None, :]
    causal = torch.ones(len(seg), len(seg), dtype=torch.bool).tril()
    return (same & causal) | sees[seg[:, None], seg[None, :]]


def collate(
    examples: list[Packed],
    pad_id: int,
    dtype: torch.dtype = torch.float32,
    sparse: bool = False,
) -> dict[str, torch.Tensor]:
    """Right-pad a batch and build the additive 4D mask.

    Returns `input_ids`, `position_ids`, `attention_mask` ([B, 1, S, S], 0 or finfo.min),
    `labels` (-100 where nothing is predicted), `weights` (per-token loss weights) and `tokens`
    (the number of positions that are not padding).
    A padding position sees only itself, so no mask row is fully blocked. With `sparse`, the
    rule itself instead of the mask: `segment_ids` [B, S] (-1 on padding) and `sees`
    [B, segments, segments] (`rim.core.flex.block_mask` turns them into a FlexAttention mask).
    """
    out = _padded(examples, pad_id)
    if sparse:
        return {**out, **_rule(examples, out["input_ids"].shape[1])}
    length, batch = out["input_ids"].shape[1], len(examples)
    allowed = torch.eye(length, dtype=torch.bool).repeat(batch, 1, 1)
    for b, e in enumerate(examples):
        n = len(e.input_ids)
        allowed[b, :n, :n] = attention_allowed(e)
    mask = torch.zeros((batch, 1, length, length), dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    return {**out, "attention_mask": mask}


def _padded(examples: list[Packed], pad_id: int) -> dict[str, torch.Tensor]:
    """`input_ids`, `position_ids`, `labels`, `weights`, right-padded to the longest, and
    `tokens`: how many are not padding."""
    length = max(len(e.input_ids) for e in examples)
    batch = len(examples)
    out = {
        "input_ids": torch.full((batch, length), pad_id, dtype=torch.long),
        "position_ids": torch.zeros((batch, length), dtype=torch.long),
        "labels": torch.full((batch, length), IGNORE, dtype=torch.long),
        "weights": torch.zeros((batch, length), dtype=torch.float32),
        "tokens": torch.tensor(sum(len(e.input_ids) for e in examples)),
    }
    for b, e in enumerate(examples):
        n = len(e.input_ids)
        for key in ("input_ids", "position_ids", "labels", "weights"):
            out[key][b, :n] = torch.tensor(getattr(e, key))
    return out


def _rule(examples: list[Packed], length: int) -> dict[str, torch.Tensor]:
    """The attention rule in O(tokens + segments²) per row: `segment_ids` and `sees`."""
    n_seg = max(len(e.sees) for e in examples)
    segment_ids = torch.full((len(examples), length), -1, dtype=torch.long)
    sees = torch.zeros((len(examples), n_seg, n_seg), dtype=torch.bool)
    for b, e in enumerate(examples):
        segment_ids[b, : len(e.segment_ids)] = torch.tensor(e.segment_ids)
        for s, seen in enumerate(e.sees):
            sees[b, s, list(seen)] = True
    return {"segment_ids": segment_ids, "sees": sees}


def pack_rows(examples: list[Packed], budget: int) -> list[Packed]:
    """Several examples per row of at most `budget` tokens (first fit, longest first; an example
    longer than the budget gets a row of its own). Examples never see each other: each keeps
    its own segments, `sees` and position ids (which restart at 0), so the loss of every
    example is what it is unpacked."""
    rows: list[list[Packed]] = []
    sizes: list[int] = []
    for ex in sorted(examples, key=lambda e: -len(e.input_ids)):
        n = len(ex.input_ids)
        fit = next((i for i, size in enumerate(sizes) if size + n <= budget), None)
        if fit is None:
            rows.append([ex])
            sizes.append(n)
        else:
            rows[fit].append(ex)
            sizes[fit] += n
    return [concat(row) for row in rows]


def concat(examples: list[Packed]) -> Packed:
    """One row holding `examples` one after another, each seeing only its own segments."""
    row = Packed([], [], [], [], [], [])
    for ex in examples:
        offset, start = len(row.sees), len(row.input_ids)
        row.input_ids += ex.input_ids
        row.segment_ids += [s + offset for s in ex.segment_ids]
        row.position_ids += ex.position_ids
        row.labels += ex.labels
        row.weights += ex.weights
        row.sees += [tuple(j + offset for j in seen) for seen in ex.sees]
        row.readouts += [(s + offset, anchor + start, block) for s, anchor, block in ex.readouts]
    return row


def weighted_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, examples: int | None = None
) -> torch.Tensor:
    """Sum of per-token weighted NLL, averaged over the examples of the batch (its rows, or
    `examples` when rows hold several packed examples).

    Labels are not shifted: `labels[b, i]` is the token predicted by `logits[b, i]`.
    """
    nll = torch.nn.functional.cross_entropy(
        logits.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none"
    )
    return (nll * weights).sum() / (examples or labels.shape[0])
