"""Multi-digit multiplication in the Implicit-CoT format (reversed digits, least significant first).

For ``a * b`` with ``a`` of ``D`` digits: the question is ``a_rev * b_rev`` (digits space
separated); step ``i`` is the partial product ``a * b_i * 10^i`` reversed and zero-padded to
``D + 1 + i`` digits, followed - for every step but the first and the last - by the running sum
so far in `` ( ... )`` with the same padding; the answer is ``a * b`` reversed and zero-padded to
``len(a) + len(b)`` digits. Written as iCoT text, the steps are joined by `` + ``; this is the
exact layout of the published 4x4 and 5x5 files.
"""

from __future__ import annotations

import random
from pathlib import Path

from rim.common.errors import RimInputError
from rim.data.icot import is_multiplication_question
from rim.data.readers import read_records
from rim.data.records import Record


def reversed_digits(value: int, width: int) -> str:
    """``value`` least-significant digit first, zero-padded to `width` digits, space separated."""
    text = str(value)[::-1].ljust(width, "0")
    return " ".join(text)


def multiplication_record(a: int, b: int, *, a_len: int = 0, b_len: int = 0) -> Record:
    """The iCoT record for ``a * b``; `a_len`/`b_len` pad the operands (default: their length)."""
    if a < 0 or b < 0:
        raise RimInputError(f"operands must not be negative, got {a} and {b}")
    a_len = max(a_len, len(str(a)))
    b_digits = [int(d) for d in str(b)[::-1].ljust(b_len, "0")]
    steps = []
    running = 0
    for i, digit in enumerate(b_digits):
        partial = a * digit * 10**i
        running += partial
        width = a_len + 1 + i
        step = reversed_digits(partial, width)
        if 0 < i < len(b_digits) - 1:
            step += f" ( {reversed_digits(running, width)} )"
        steps.append(step)
    question = f"{reversed_digits(a, a_len)} * {reversed_digits(b, len(b_digits))}"
    answer = reversed_digits(a * b, a_len + len(b_digits))
    return Record(question=question, steps=tuple(steps), answer=answer)


def parse_operands(question: str) -> tuple[str, str]:
    """The operands of an iCoT multiplication question ``a_rev * b_rev``, most significant
    digit first, as digit strings (leading zeros kept)."""
    if not is_multiplication_question(question):
        raise RimInputError(f"not a multiplication question: {question[:60]!r}")
    left, right = question.split(" * ")
    return "".join(left.split())[::-1], "".join(right.split())[::-1]


def generate_multiplication(
    n: int, seed: int, *, digits: int = 4, operands_from: str | Path | None = None
) -> list[Record]:
    """`n` random ``digits``-by-``digits`` multiplication records (no leading zeros).

    With `operands_from` (an iCoT or JSON data file of multiplication questions), the records
    are rebuilt from that file's operands instead, in order: the first `n`, or all when `n` is
    0; `digits` and `seed` are then unused.
    """
    if operands_from is not None:
        return _from_file(n, operands_from)
    if n < 1:
        raise RimInputError(f"n must be at least 1, got {n}")
    if not 1 <= digits <= 64:
        raise RimInputError(f"digits must be between 1 and 64, got {digits}")
    rng = random.Random(seed)
    low, high = 10 ** (digits - 1), 10**digits - 1
    return [multiplication_record(rng.randint(low, high), rng.randint(low, high)) for _ in range(n)]


def _from_file(n: int, path: str | Path) -> list[Record]:
    source = read_records(path)
    if n < 0 or n > len(source):
        raise RimInputError(f"n={n} but the file has {len(source)} records", source=str(path))
    chosen = source[:n] if n else source
    records = []
    for index, record in enumerate(chosen, start=1):
        try:
            a, b = parse_operands(record.question)
        except RimInputError as err:
            raise RimInputError(f"record {index}: {err}", source=str(path)) from None
        records.append(multiplication_record(int(a), int(b), a_len=len(a), b_len=len(b)))
    return records
