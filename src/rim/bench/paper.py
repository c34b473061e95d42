"""Paper tables: sweeps of the shipped recipes beside the published numbers, and their CPU
stand-ins.

A paper sweep file (configs/bench/paper-*.yaml) names a recipe per method instead of one base
config, the published accuracy of each method with its source, and a `stand_in`:

    table: "GSM8k-Aug, GPT-2 (RiM paper, Table 1)"
    recipes: {nocot: ../recipes/gsm8k-aug-gpt2-nocot.yaml, ...}   # relative to this file
    methods:                     # order of the table; overrides as in any sweep, where
      cot: {}                    # {runs} is OUT/runs and {seed} the run's seed
      coconut: {model.init_from: "{runs}/cot/seed{seed}"}           # Coconut starts from CoT
    published:
      nocot: {accuracy: 15.4, source: "RiM paper, Table 1"}
    stand_in:                    # `rim bench accuracy FILE --stand-in`: the CPU check
      scratch: {model_type: gpt2, n_layer: 1, n_embd: 32, n_head: 2}
      task: {name: gsm}          # a generator of the same kind of data
      train: 8                   # examples (validation and test: `test` each)
      steps: 1                   # optimizer steps of every stage

`--stand-in` replaces each hub model by a tiny random model of the same family built from
`scratch` (no weights, no network), the data by a few generated examples, every stage's length
by `steps`, the batch by `batch_size`, and computes in float32 (bf16 is slow on CPUs; the
recipes' precision plans are checked by their dry runs): the same files, methods, stages,
selection and reports run end to end in seconds, so that on a GPU nothing but the numbers is
new.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from rim.bench import report
from rim.common.schema import Section

STAGE_SECTIONS = ("stage1", "stage2", "baseline", "coconut", "coconut_final")
"""The trainer sections of the stages (`rim.config.TrainerConfig`)."""


class Published(Section):
    """A method's published accuracy and where it was published."""

    accuracy: float | None = None
    """Accuracy in percent (null: not published for this setting)."""
    source: str = ""
    """The paper and table (details in docs/recipes.md)."""


class StandInTask(Section):
    """The generator (`rim data generate` names) and its options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class StandIn(Section):
    """The CPU stand-in of a paper sweep (`--stand-in`)."""

    scratch: dict[str, Any]
    """A tiny transformers config of the hub model's family (`model.scratch`)."""
    task: StandInTask
    """Generated data of the same kind as the recipe's."""
    train: int = Field(8, ge=1)
    """Training examples."""
    test: int = Field(2, ge=1)
    """Validation and test examples (each)."""
    steps: int = Field(1, ge=1)
    """Optimizer steps of every stage."""
    batch_size: int = Field(2, ge=1)
    """Examples per step (no accumulation)."""
    max_new_tokens: int = Field(4, ge=1)
    """Longest generation at evaluation."""
    vocab_size: int = Field(1024, ge=8)
    """The tokenizer trained on the stand-in data."""
    max_length: int = Field(2048, ge=16)
    """The stand-in model's context."""


def with_placeholders(value: Any, runs: str, seed: int) -> Any:
    """An override value with `{runs}` (the sweep's run directory) and `{seed}` filled in."""
    if isinstance(value, str):
        return value.replace("{runs}", runs).replace("{seed}", str(seed))
    if isinstance(value, dict):
        return {k: with_placeholders(v, runs, seed) for k, v in value.items()}
    return value


def stand_in_config(raw: dict[str, Any], spec: StandIn) -> None:
    """Turn a raw run config into its stand-in (in place): a scratch model of the same family
    for a hub model, every stage `spec.steps` long, small batches and generations."""
    model = raw.setdefault("model", {})
    if model.get("name_or_path") is not None:
        model.pop("name_or_path")
        model.pop("gguf_file", None)
        model["scratch"] = dict(spec.scratch)
        model["vocab_size"] = spec.vocab_size
        model["max_length"] = spec.max_length
    trainer = raw.setdefault("trainer", {})
    for key in STAGE_SECTIONS:
        stage = trainer.get(key)
        trainer[key] = {**(stage if isinstance(stage, dict) else {}), "steps": spec.steps}
    model["dtype"] = "float32"  # bf16 on a CPU is slow (the recipes' dry runs check precision)
    trainer.update(
        batch_size=spec.batch_size,
        grad_accum=1,
        eval_batch_size=spec.test,
        max_new_tokens=spec.max_new_tokens,
        mixed_precision="no",
    )
    if trainer.get("eval_every") not in (None, "epoch"):
        trainer["eval_every"] = spec.steps


def stand_in_data(spec: StandIn, out: Path) -> dict[str, str]:
    """Training, validation (`data.eval`) and test files of the stand-in, generated once into
    OUT/data/stand-in from seeds 0, 1 and 2."""
    from rim.data.generators import generate
    from rim.data.writers import write_records

    folder = out / "data" / "stand-in"
    files = {"train": (spec.train, 0), "eval": (spec.test, 1), "test": (spec.test, 2)}
    paths = {}
    for key, (n, seed) in files.items():
        path = folder / f"{key}.jsonl"
        if not path.is_file():
            write_records(generate(spec.task.name, n, seed, **spec.task.options), path)
        paths[key] = str(path.resolve())
    return paths


def add_published(rows: list[dict], published: dict[str, Published]) -> None:
    """Each row's published accuracy (a fraction, as ours), its source and our difference."""
    for row in rows:
        known = published.get(row["method"])
        paper = None if known is None or known.accuracy is None else known.accuracy / 100
        row["published"] = paper
        row["published_source"] = known.source if known is not None else ""
        ours = row.get("accuracy")
        row["difference"] = None if paper is None or ours is None else ours - paper


COLUMNS = [
    report.Column("published", "published (%)", report.percent()),
    report.Column("difference", "ours - published (points)", report.percent()),
    report.Column("published_source", "source", align="left"),
]
"""The columns a paper table adds to the accuracy table."""
