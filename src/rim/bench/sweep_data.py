"""The data of a sweep: files it names, or a task's records generated once into `out/data`."""

from __future__ import annotations

from pathlib import Path

from rim.bench.paper import stand_in_data
from rim.bench.sweep import Sweep, TaskSpec
from rim.common.errors import RimInputError
from rim.data.records import Record


def task_records(task: TaskSpec, n: int, seed: int) -> list[Record]:
    """`n` records of a generated task."""
    from rim.data.generators import generate

    options = {k: tuple(v) if isinstance(v, list) else v for k, v in task.options.items()}
    try:
        return generate(task.name, n, seed, **options)
    except TypeError as err:
        raise RimInputError(f"task {task.name!r}: {err}") from None


def sweep_data(sweep: Sweep, out: Path) -> dict[str, str]:
    """Paths of the training and evaluation data (generated once into out/data).

    Files named by the sweep's `data` win; a task generates the rest: the test set from seed + 1,
    the training set from seed, without the questions of the test set when `disjoint` is true.
    """
    if sweep.stand_in is not None:
        return stand_in_data(sweep.stand_in, out)
    given = dict(sweep.data or {})
    task = sweep.task
    if task is None or "train" in given:
        return given
    from rim.data.readers import read_records
    from rim.data.writers import write_records

    test = Path(given["eval"]) if "eval" in given else out / "data" / "test.jsonl"
    if not test.is_file():
        write_records(task_records(task, task.test, task.seed + 1), test)
    train = out / "data" / "train.jsonl"
    if not train.is_file():
        records = task_records(task, task.train, task.seed)
        if task.disjoint:
            held_out = {r.question for r in read_records(test)}
            records = [r for r in records if r.question not in held_out]
        write_records(records, train)
    return {**given, "train": str(train.resolve()), "eval": str(test.resolve())}
