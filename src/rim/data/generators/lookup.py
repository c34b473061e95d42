"""Multi-hop lookup in a fixed-order table (the task of METHOD.md, "What to expect").

Every example carries its own map over S symbols (default 10: `a`..`j`), written in the
question as pairs `x > y` in a **fixed key order** (`a > ., b > ., ...`), then a start symbol and
a number of hops h (default 2 to 4). The answer is the symbol reached by following the map h
times; the steps are the symbols reached hop by hop, h of them, the last equal to the answer
(as in `rim.data.generators.chain`, so RiM's stage 1 lays hop t out in block t and the answer is read
after block h):

    a > c b > h c > a d > j e > b f > e g > d h > i i > g j > f | d 3
    steps: j, f, e          answer: e          (d -> j -> f -> e)

That the last step is the answer is also what METHOD.md's per-block accuracies suggest (3, 27,
58, 60% after blocks 1..4 with 2-4 hops: questions of h hops become right after block h).

Why this reading of METHOD.md: it contrasts this task with "the map given as shuffled `a > k`
pairs", so the map is in the question in both; here the keys always come in the same order, so
the value of `x` always sits at the same position and one hop is a fixed-offset lookup (the
"table" whose layout the model learns); with shuffled pairs (`order="shuffled"`) one hop needs
pair binding (find `x >`, read what follows), which small models learn slowly. A new map per
example is also what makes the reported numbers possible (no-CoT near chance, CoT 100%): a
single map learned in the weights would leave only S x (hops range) distinct questions, all seen
in training.

The map is a random derangement (a permutation without fixed points), so every hop moves and
every answer is about equally likely: chance is about 1/S. Symbols, the map and the pairs are
single tokens separated by spaces, so any tokenizer keeps one symbol per token.

`table="learned"` is the other reading, kept for comparison: one map drawn from `table_seed`,
the same for all examples and never shown; the question is only `start hops` (e.g. `d 3`). It
has just S x (number of hop counts) distinct questions, so train and test overlap completely
and it measures memorisation, not reasoning.
"""

from __future__ import annotations

import random
import string

from rim.common.errors import RimInputError
from rim.data.records import Record

ORDERS = ("fixed", "shuffled")
TABLES = ("given", "learned")


def derangement(symbols: list[str], rng: random.Random) -> dict[str, str]:
    """A random permutation of `symbols` without fixed points."""
    while True:
        values = symbols[:]
        rng.shuffle(values)
        if all(k != v for k, v in zip(symbols, values)):
            return dict(zip(symbols, values))


def follow(table: dict[str, str], start: str, hops: int) -> list[str]:
    """The symbols reached after 1..`hops` hops from `start`."""
    path, x = [], start
    for _ in range(hops):
        x = table[x]
        path.append(x)
    return path


def generate_lookup(
    n: int,
    seed: int,
    symbols: int = 10,
    min_hops: int = 2,
    max_hops: int = 4,
    order: str = "fixed",
    table: str = "given",
    table_seed: int = 0,
) -> list[Record]:
    """`n` seeded lookup records (see the module docstring).

    Args:
        symbols: S, the number of symbols (2..26, letters `a`...).
        min_hops, max_hops: the number of hops h is uniform in [min_hops, max_hops].
        order: `fixed` (pairs in key order) or `shuffled` (pairs in random order).
        table: `given` (a new map per example, written in the question) or `learned` (one map
            from `table_seed` for every example, not written).
    """
    if not 2 <= symbols <= 26:
        raise RimInputError(f"symbols must be between 2 and 26, got {symbols}")
    if not 1 <= min_hops <= max_hops:
        raise RimInputError(f"need 1 <= min_hops <= max_hops, got {min_hops} and {max_hops}")
    if order not in ORDERS:
        raise RimInputError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if table not in TABLES:
        raise RimInputError(f"table must be one of {', '.join(TABLES)}, got {table!r}")
    if n < 1:
        raise RimInputError(f"n must be at least 1, got {n}")
    keys = list(string.ascii_lowercase[:symbols])
    rng = random.Random(seed)
    fixed_map = derangement(keys, random.Random(table_seed)) if table == "learned" else None
    records = []
    for _ in range(n):
        mapping = fixed_map or derangement(keys, rng)
        start = rng.choice(keys)
        hops = rng.randint(min_hops, max_hops)
        path = follow(mapping, start, hops)
        if table == "learned":
            question = f"{start} {hops}"
        else:
            pairs = keys[:]
            if order == "shuffled":
                rng.shuffle(pairs)
            question = " ".join(f"{k} > {mapping[k]}" for k in pairs) + f" | {start} {hops}"
        records.append(Record(question, tuple(path), path[-1], meta={"hops": hops}))
    return records
