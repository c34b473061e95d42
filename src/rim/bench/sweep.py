"""An accuracy sweep: one base training config, the data, the methods with their overrides, the
seeds. A sweep file (configs/bench/accuracy-*.yaml):

    config: train-tiny-cpu.yaml          # base config: a path relative to this file, or a mapping
    task: {name: chain, train: 20000, test: 500, seed: 0, options: {ops: 4}}
    # disjoint: true drops the training records whose question is in the test set
    # or: data: {train: path, eval: path}  (relative to this file)
    # or both: a task for the training data, data.eval for a published evaluation file
    methods:                             # name -> overrides (dotted keys or nested mappings)
      nocot: {trainer.baseline.steps: 400}
      rim: {}
    seeds: [0, 1, 2]
    concurrent: 1                        # > 1: that many `rim train` subprocesses at once
    threads: 1                           # torch threads per run

The base config's `method` section holds settings shared by the sweep's methods (K for RiM and
pause, say): each run takes those its method has. A key that no method has is an error, so a
typo is never dropped in silence. Every run's config is validated when the sweep
is read, before anything trains.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from rim.config import Config, config_from_dict, read_yaml, set_dotted
from rim.data.generators import GENERATORS
from rim.data.records import Record
from rim.errors import RimInputError
from rim.methods import METHODS
from rim.schema import Section, validate


class TaskSpec(Section):
    """A generated task (`rim data generate` names): training and test records."""

    name: str
    """The generator (`rim.data.generators.GENERATORS`)."""
    train: int = Field(10000, ge=1)
    """Training records, generated from `seed`."""
    test: int = Field(500, ge=1)
    """Test records, generated from `seed + 1` (unless `data.eval` names a file)."""
    seed: int = 0
    """Seed of the training records."""
    disjoint: bool = False
    """Drop the training records whose question is a test question."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The generator's options."""

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in GENERATORS:
            raise ValueError(f"unknown task {value!r} (known: {', '.join(sorted(GENERATORS))})")
        return value


class DataFiles(Section):
    """Data files instead of (or besides) a generated task."""

    train: str | None = None
    """Training records."""
    eval: str | None = None
    """Evaluation records."""


class SweepFile(Section):
    """The keys of a sweep file."""

    config: str | dict[str, Any] = Field(default_factory=dict)
    """Base training config: a file (relative to the sweep file) or a mapping."""
    task: TaskSpec | None = None
    """A task that generates the data."""
    data: DataFiles | None = None
    """Data files (relative to the sweep file)."""
    methods: dict[str, dict[str, Any] | None] | list[str] | None = None
    """Methods (names, or name -> overrides); null: every registered method."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    """Seeds; every method trains once per seed."""
    concurrent: int = Field(1, ge=1)
    """Runs at once, as `rim train` subprocesses (1: one after another, in this process)."""
    threads: int | None = Field(None, ge=1)
    """torch threads per run."""

    @field_validator("methods")
    @classmethod
    def _known(cls, value: Any) -> Any:
        unknown = [m for m in (value or []) if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r} (known: {', '.join(METHODS)})")
        return value

    @model_validator(mode="after")
    def _has_data(self) -> SweepFile:
        if self.data is not None and not (self.data.train or self.data.eval and self.task):
            raise ValueError("'data' needs at least 'train' (and 'eval'), or 'eval' with a "
                             "'task' that generates the training data")
        return self


@dataclass
class Sweep:
    """A resolved sweep: base config (raw), methods with overrides, seeds, data."""

    config: dict[str, Any]
    methods: dict[str, dict[str, Any]]
    seeds: list[int]
    task: TaskSpec | None = None
    data: dict[str, str] | None = None
    concurrent: int = 1
    threads: int | None = None
    source: str = "<sweep>"

    def run_config(self, method: str, seed: int, data: dict[str, str]) -> Config:
        """The validated config of the run (method, seed)."""
        raw = copy.deepcopy(self.config)
        fields = METHODS[method].Config.model_fields
        raw["method"] = {k: v for k, v in raw.get("method", {}).items() if k in fields}
        raw["method"]["name"] = method
        for key, value in self.methods[method].items():
            set_dotted(raw, key, value, Config, merge_mapping=True, source=self.source)
        raw.setdefault("trainer", {})["seed"] = seed
        if self.threads:
            raw["trainer"]["threads"] = self.threads
        raw.setdefault("data", {}).update(data)
        return config_from_dict(raw, source=f"{self.source} [{method}, seed {seed}]")


def load_sweep(path: str | Path, methods: list[str] | None = None, seeds: list[int] | None = None,
               concurrent: int | None = None, threads: int | None = None) -> Sweep:
    """Read a sweep file; the other arguments (command-line options) override it, `methods`
    choosing some of the sweep's methods."""
    path = Path(path)
    raw = read_yaml(path, SweepFile)
    raw.update({k: v for k, v in (("seeds", seeds), ("concurrent", concurrent),
                                  ("threads", threads)) if v is not None})
    spec = validate(SweepFile, raw, str(path))
    if isinstance(spec.config, str):
        base = read_yaml(path.parent / spec.config, Config)
    else:
        base = copy.deepcopy(spec.config)
    data = None
    if spec.data is not None:
        data = {k: str((path.parent / v).resolve())
                for k, v in spec.data.model_dump().items() if v is not None}
    return make_sweep(base, spec, data, str(path), methods)


def make_sweep(base: dict[str, Any], spec: SweepFile, data: dict[str, str] | None, source: str,
               only: list[str] | None = None) -> Sweep:
    """Check the parts of a sweep and every run's config, before anything runs."""
    names = spec.methods if spec.methods is not None else list(METHODS)
    methods = ({m: dict(v or {}) for m, v in names.items()} if isinstance(names, dict)
               else {m: {} for m in names})
    if only:
        missing = [m for m in only if m not in methods]
        if missing:
            raise RimInputError(f"method {missing[0]!r} is not in the sweep", source=source)
        methods = {m: methods[m] for m in only}
    shared = base.get("method") or {}
    if not isinstance(shared, dict):
        raise RimInputError("the base config's 'method' must be a mapping", source=source)
    known = {k for m in METHODS.values() for k in m.Config.model_fields}
    unknown = sorted(set(shared) - known)
    if unknown:
        raise RimInputError(f"unknown config key 'method.{unknown[0]}' (no method has it)",
                            source=source)
    if spec.task is None and data is None and not (base.get("data") or {}).get("train"):
        raise RimInputError("the sweep needs a 'task', 'data' or a base config with data.train",
                            source=source)
    sweep = Sweep(base, methods, list(spec.seeds), spec.task, data, spec.concurrent,
                  spec.threads, source)
    for m in methods:  # every override must give a valid config before anything runs
        sweep.run_config(m, sweep.seeds[0], data or {"train": "<data>", "eval": "<data>"})
    return sweep


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
    return {"train": str(train.resolve()), "eval": str(test.resolve())}
