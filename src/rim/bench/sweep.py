"""An accuracy sweep: one base training config, the data, the methods with their overrides, the
seeds. A sweep file (configs/bench/accuracy-*.yaml):

    config: train-tiny-cpu.yaml          # base config: a path relative to this file, or a mapping
    task: {name: chain, train: 20000, test: 500, seed: 0, options: {ops: 4}}
    # disjoint: true drops the training records whose question is in the test set
    # or: data: {train: path, eval: path, test: path}  (relative to this file; eval is the
    #     validation split, test the test split the final model is scored on)
    # or both: a task for the training data, data.eval for a published evaluation file
    methods:                             # name -> overrides (dotted keys or nested mappings)
      nocot: {trainer.baseline.steps: 400}
      rim: {}
    seeds: [0, 1, 2]
    select: best                         # optional: trainer.select of every method (see below)
    concurrent: 1                        # > 1: that many `rim train` subprocesses at once
    threads: 1                           # torch threads per run

The base config's `method` section holds settings shared by the sweep's methods (K for RiM and
pause, say): each run takes those its method has. A key that no method has is an error, so a
typo is never dropped in silence. Every run's config is validated when the sweep
is read, before anything trains. `select` sets the selection rule of every method at once, over
the methods' own overrides (a recipe's rule included): `last` model, or `best` on validation
(`data.eval`), evaluated every epoch where a method sets no `trainer.eval_every`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from rim.bench.paper import Published, StandIn, stand_in_config, with_placeholders
from rim.common.errors import RimInputError
from rim.common.schema import Section, validate
from rim.config import Config, config_from_dict, read_yaml, set_dotted
from rim.data.generators import GENERATORS
from rim.methods.settings import METHOD_CONFIGS


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
    """The validation split (`data.eval`: evaluated during training, selects)."""
    test: str | None = None
    """The test split (`data.test`: the final model is scored on it once)."""


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
    select: Literal["last", "best"] | None = None
    """`trainer.select` of every method (over their own settings); null: each its own."""
    recipes: dict[str, str] | None = None
    """Method -> its recipe (relative to this file), the run's base config instead of
    `config` (paper tables: `rim.bench.paper`)."""
    table: str | None = None
    """The title of the table (the published table it reproduces)."""
    published: dict[str, Published] = Field(default_factory=dict)
    """Method -> its published accuracy (%) and source, shown beside ours."""
    stand_in: StandIn | None = None
    """What `--stand-in` runs instead: tiny scratch models, generated data, a few steps."""

    @field_validator("methods")
    @classmethod
    def _known(cls, value: Any) -> Any:
        unknown = [m for m in (value or []) if m not in METHOD_CONFIGS]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r} (known: {', '.join(METHOD_CONFIGS)})")
        return value

    @model_validator(mode="after")
    def _has_data(self) -> SweepFile:
        if self.data is not None and not (self.data.train or self.data.eval and self.task):
            raise ValueError(
                "'data' needs at least 'train' (and 'eval'), or 'eval' with a "
                "'task' that generates the training data"
            )
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
    select: str | None = None
    """`trainer.select` of every method (`SweepFile.select`)."""
    bases: dict[str, dict[str, Any]] | None = None
    """Method -> its own base config (a recipe), instead of `config`."""
    table: str | None = None
    published: dict[str, Published] | None = None
    stand_in: StandIn | None = None
    """The stand-in settings when the sweep runs as its stand-in (`--stand-in`), else None."""

    def run_config(self, method: str, seed: int, data: dict[str, str], runs: str = "<runs>") -> Config:
        """The validated config of the run (method, seed); `runs` (OUT/runs) and the seed
        fill the `{runs}` and `{seed}` of the overrides."""
        raw = copy.deepcopy((self.bases or {}).get(method, self.config))
        fields = METHOD_CONFIGS[method].model_fields
        raw["method"] = {k: v for k, v in raw.get("method", {}).items() if k in fields}
        raw["method"]["name"] = method
        for key, value in self.methods[method].items():
            set_dotted(
                raw, key, with_placeholders(value, runs, seed), Config, merge_mapping=True, source=self.source
            )
        if self.stand_in is not None:
            stand_in_config(raw, self.stand_in)
        raw.setdefault("trainer", {})["seed"] = seed
        if self.select is not None:  # one selection rule for the whole comparison
            raw["trainer"]["select"] = self.select
            if self.select == "best" and raw["trainer"].get("eval_every") is None:
                raw["trainer"]["eval_every"] = "epoch"
        if self.threads:
            raw["trainer"]["threads"] = self.threads
        raw.setdefault("data", {}).update(data)
        return config_from_dict(raw, source=f"{self.source} [{method}, seed {seed}]")


def load_sweep(
    path: str | Path,
    methods: list[str] | None = None,
    seeds: list[int] | None = None,
    concurrent: int | None = None,
    threads: int | None = None,
    stand_in: bool = False,
) -> Sweep:
    """Read a sweep file; the other arguments (command-line options) override it, `methods`
    choosing some of the sweep's methods; `stand_in` runs the file's `stand_in` instead."""
    path = Path(path)
    raw = read_yaml(path, SweepFile)
    raw.update(
        {
            k: v
            for k, v in (("seeds", seeds), ("concurrent", concurrent), ("threads", threads))
            if v is not None
        }
    )
    spec = validate(SweepFile, raw, str(path))
    if isinstance(spec.config, str):
        base = read_yaml(path.parent / spec.config, Config)
    else:
        base = copy.deepcopy(spec.config)
    data = None
    if spec.data is not None:
        data = {
            k: str((path.parent / v).resolve()) for k, v in spec.data.model_dump().items() if v is not None
        }
    if stand_in and spec.stand_in is None:
        raise RimInputError("--stand-in needs a 'stand_in' section in the sweep file", source=str(path))
    bases = {m: read_yaml(path.parent / recipe, Config) for m, recipe in (spec.recipes or {}).items()}
    return make_sweep(base, spec, data, str(path), methods, bases, spec.stand_in if stand_in else None)


def make_sweep(
    base: dict[str, Any],
    spec: SweepFile,
    data: dict[str, str] | None,
    source: str,
    only: list[str] | None = None,
    bases: dict[str, dict[str, Any]] | None = None,
    stand_in: StandIn | None = None,
) -> Sweep:
    """Check the parts of a sweep and every run's config, before anything runs (`bases`: the
    methods' own base configs; `stand_in`: run the sweep as its stand-in)."""
    names = spec.methods if spec.methods is not None else list(METHOD_CONFIGS)
    methods = (
        {m: dict(v or {}) for m, v in names.items()} if isinstance(names, dict) else {m: {} for m in names}
    )
    if only:
        missing = [m for m in only if m not in methods]
        if missing:
            raise RimInputError(f"method {missing[0]!r} is not in the sweep", source=source)
        methods = {m: methods[m] for m in only}
    shared = base.get("method") or {}
    if not isinstance(shared, dict):
        raise RimInputError("the base config's 'method' must be a mapping", source=source)
    known = {k for m in METHOD_CONFIGS.values() for k in m.model_fields}
    unknown = sorted(set(shared) - known)
    if unknown:
        raise RimInputError(f"unknown config key 'method.{unknown[0]}' (no method has it)", source=source)
    given = list(bases.values()) if bases else [base]
    if (
        spec.task is None
        and data is None
        and not stand_in
        and not all((b.get("data") or {}).get("train") for b in given)
    ):
        raise RimInputError(
            "the sweep needs a 'task', 'data' or a base config with data.train", source=source
        )
    missing = [m for m in methods if bases and m not in bases]
    if missing:
        raise RimInputError(f"method {missing[0]!r} has no recipe in 'recipes'", source=source)
    if any("{runs}" in str(v) for o in methods.values() for v in o.values()) and spec.concurrent > 1:
        raise RimInputError("a run that starts from another run ({runs}) needs concurrent: 1", source=source)
    sweep = Sweep(
        base,
        methods,
        list(spec.seeds),
        spec.task,
        data,
        spec.concurrent,
        spec.threads,
        source,
        spec.select,
        bases or None,
        spec.table,
        spec.published,
        stand_in,
    )
    for m in methods:  # every override must give a valid config before anything runs
        sweep.run_config(m, sweep.seeds[0], data or {"train": "<data>", "eval": "<data>"})
    return sweep
