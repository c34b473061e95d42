"""`rim explain`: what the model reads out after each memory block.

Stage 1 trained the readout after t blocks to be reasoning step t+1 (the answer after the last
step); stage 2 trained every readout to be the answer. So the readouts of the stage-1
checkpoint show the steps the blocks were grounded in, and those of the final model show what
it answers after each block. After stage 2 the blocks are free to hold whatever helps the
answer: a step read out of them is a probe of the latent state, not a faithful trace of the
model's reasoning.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.table import Table

from rim.common.errors import RimInputError
from rim.data.records import Record
from rim.inference.infer import LoadedRun, load_run
from rim.models.runinfo import model_directory

CAVEAT = (
    "After stage 2 a read-out step is a probe of the latent state, not a faithful trace "
    "of the model's reasoning."
)
BLOCK_0 = "0 (question only)"
"""The label of the read-out before any memory block: from the question alone (`rim eval`'s
per-block accuracy starts at block 1)."""
NOTE_0 = "Block 0: read out from the question alone, before any memory block (rim eval counts blocks 1..K). "


def block_label(k: int) -> str:
    """The row label of the read-out after `k` blocks (block 0 says what it is)."""
    return BLOCK_0 if k == 0 else str(k)


def stage1_model(run: str | Path) -> LoadedRun:
    """The stage-1 checkpoint of a run (its steps read-out)."""
    directory = model_directory(run)
    stage1 = directory.parent / "checkpoints" / "stage1"
    if not (stage1 / "rim.json").is_file():
        raise RimInputError(
            "no stage-1 checkpoint (checkpoints/stage1): a RiM run directory is needed", source=str(run)
        )
    return load_run(stage1)


def readouts(run: LoadedRun, questions: list[str]) -> list[list[str]]:
    """For each question, the text read out after 0, 1, .., K blocks."""
    if not run.blocks:
        raise RimInputError(f"method {run.method.name} has no memory blocks to read out")
    columns = [run.answers(questions, blocks=k) for k in range(run.blocks + 1)]
    return [list(row) for row in zip(*columns)]


def explain_table(question: str, steps: list[str], answers: list[str]) -> Table:
    """The stage-1 read-out (the step) and the final model's answer after each block."""
    table = Table(title=question, caption=NOTE_0 + CAVEAT)
    for column in ("after block", "stage-1 read-out (next step)", "final model (answer)"):
        table.add_column(column)
    for k, (step, answer) in enumerate(zip(steps, answers)):
        table.add_row(block_label(k), step, answer)
    return table


def step_match(stage1: LoadedRun, final: LoadedRun, records: list[Record]) -> dict[str, Any]:
    """How often the read-out after k blocks is the gold step k+1 (the answer after the last
    step), per block, for the stage-1 checkpoint and for the final model."""
    result: dict[str, Any] = {"n": len(records)}
    for name, run in (("after_stage1", stage1), ("after_stage2", final)):
        rows = readouts(run, [r.question for r in records])
        per_block = []
        for k in range(run.blocks + 1):
            pairs = [(row[k], gold) for row, r in zip(rows, records) if (gold := _gold(r, k)) is not None]
            per_block.append(sum(_same(a, g) for a, g in pairs) / len(pairs) if pairs else None)
        result[name] = per_block
    result["caveat"] = CAVEAT
    return result


def _gold(record: Record, k: int) -> str | None:
    """Step k+1 of the record, the answer after its last step, None beyond."""
    steps = [s for s in record.steps if s.strip()]
    if k < len(steps):
        return steps[k]
    return record.answer if k == len(steps) else None


def _same(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a.strip()) == re.sub(r"\s+", " ", b.strip())
