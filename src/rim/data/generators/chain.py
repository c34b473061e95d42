"""Digit chains: a start digit and a list of moves mod 10, applied left to right.

`4 +1 *3 -2 ?` -> steps `5`, `5`, `3` -> answer `3`. Each move is a bijection mod 10 (adding,
subtracting, or multiplying by 1, 3, 7 or 9), so every answer is equally likely and chance is
10%. One move is a lookup in a small table that a small model learns in a few hundred batches,
but moves do not commute, so the answer needs them in sequence: the kind of problem that
intermediate steps help with.
"""

from __future__ import annotations

import random
import re

from rim.common.errors import RimInputError
from rim.data.records import Record

DEFAULT_MOVES = ("+1", "*3", "-2")


def apply(value: int, move: str) -> int:
    """One move (`+a`, `-a` or `*a`) mod 10."""
    op, arg = move[0], int(move[1:])
    if op == "+":
        return (value + arg) % 10
    if op == "-":
        return (value - arg) % 10
    if op == "*" and arg % 2 and arg % 5:
        return (value * arg) % 10
    raise ValueError(f"unknown or non-invertible move {move!r}")


def generate_chain(
    n: int, seed: int, ops: int = 4, moves: tuple[str, ...] | str = DEFAULT_MOVES
) -> list[Record]:
    """`n` seeded digit chains of `ops` moves drawn from `moves` (a tuple or a string such as
    `"+1 *3 -2"`)."""
    moves = tuple(moves.split()) if isinstance(moves, str) else tuple(map(str, moves))
    for move in moves:
        if not re.fullmatch(r"[+-][0-9]|\*[1379]", move):
            raise RimInputError(f"chain: bad move {move!r} (use +d, -d or *1, *3, *7, *9)")
    if ops < 1:
        raise RimInputError("chain: ops must be at least 1")
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        value = rng.randrange(10)
        words, steps = [str(value)], []
        for _ in range(ops):
            move = rng.choice(moves)
            value = apply(value, move)
            words.append(move)
            steps.append(str(value))
        records.append(Record(" ".join(words) + " ?", tuple(steps), str(value)))
    return records
