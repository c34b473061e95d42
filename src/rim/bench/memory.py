"""`rim bench memory`: peak memory of a training run around its stage switch, with the previous
stage's optimizer released (as the trainer does) and kept (as it did before).

Each stage trains with a fresh AdamW, whose state is two float32 tensors per trainable
parameter (8 bytes each). If the previous stage's optimizer stays alive, stage 2 holds both
states at once: its peak grows by that much. Accelerate keeps every prepared optimizer until
`Accelerator.free_memory()`, which the trainer now calls after each pass; the `kept` variant
turns that call into a no-op, which is how the trainer behaved before the release.

Both variants run the real trainer (`rim.training.run.run_training`) on the same config, each in its own
process so that one's allocations do not hide the other's. Peaks are read at each stage's start
and end (through the run's `Reporter`) and reset there: on CUDA `torch.cuda.max_memory_allocated`,
on CPU the process's resident-set high-water mark (`VmHWM`, reset through
`/proc/self/clear_refs`), which also counts the interpreter and libraries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from rim.bench import report
from rim.bench.common import MemoryMeter
from rim.bench.settings import MEMORY_PATHS, MemorySettings
from rim.common.errors import RimInputError
from rim.common.progress import Reporter

VARIANTS = ("released", "kept")
MIB = 2**20


PATH_SETTINGS = MEMORY_PATHS

COLUMNS = [
    report.Column("variant", "previous optimizer", align="left"),
    report.Column("stage1_peak_mib", "stage 1 peak (MiB)", report.fixed(0)),
    report.Column("after_stage1_mib", "held after stage 1 (MiB)", report.fixed(0)),
    report.Column("stage2_peak_mib", "stage 2 peak (MiB)", report.fixed(0)),
    report.Column("switch_growth_mib", "stage 2 peak - stage 1 peak (MiB)", report.fixed(0)),
    report.Column("adam_state_mib", "one AdamW state (MiB)", report.fixed(0)),
]


def run_memory(settings: MemorySettings, out: str | Path, console: Console | None = None) -> dict:
    """Run both variants, each in a fresh process; write memory.json/.md and print the table."""
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise RimInputError("CUDA is not available on this machine", source="device")
    if settings.device == "cpu" and not Path("/proc/self/clear_refs").exists():
        raise RimInputError(
            "on CPU the peak is read from Linux's /proc/self (not here): use a CUDA device", source="device"
        )
    if settings.device == "cpu" and torch.cuda.is_available():
        raise RimInputError("the trainer takes the GPU when there is one: use device cuda", source="device")
    out = Path(out)
    load = report.load_average()
    rows = []
    for variant in VARIANTS:
        if console is not None:
            console.print(f"training with the previous optimizer {variant} ...")
        rows.append(_measure_in_a_fresh_process(settings, variant))
    result = {
        "device": report.device_description(settings.device),
        "measure": "torch.cuda.max_memory_allocated"
        if settings.device != "cpu"
        else "process VmHWM (resident set high-water mark)",
        "settings": settings.model_dump(),
        "environment": report.environment(load),
        "rows": rows,
    }
    _write(result, out, console)
    return result


def _measure_in_a_fresh_process(settings: MemorySettings, variant: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        answer = Path(tmp) / "row.json"
        code = (
            "import sys; from rim.bench.memory import measure; measure(sys.argv[1], sys.argv[2], sys.argv[3])"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, settings.model_dump_json(), variant, str(answer)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"the {variant} run failed: {proc.stderr.strip()[-2000:]}")
        return json.loads(answer.read_text())


def measure(settings_json: str, variant: str, answer: str) -> None:
    """In a fresh process: train with the previous optimizer `variant`, write the row."""
    from accelerate import Accelerator

    from rim.config import config_from_dict

    settings = MemorySettings.model_validate_json(settings_json)
    if variant == "kept":  # the trainer before the release: Accelerate holds every optimizer
        Accelerator.free_memory = lambda self, *objects: objects
    meter = MemoryMeter(settings.device != "cpu")
    reporter = _MarkingReporter(meter)
    with tempfile.TemporaryDirectory() as tmp:
        from transformers import AutoModelForCausalLM

        from rim.training.run import run_training

        run_training(config_from_dict(training_config(settings)), Path(tmp) / "run", reporter)
        trained = AutoModelForCausalLM.from_pretrained(Path(tmp) / "run" / "model")
        trainable = sum(p.numel() for p in trained.parameters())  # all: built from scratch
    peaks = reporter.marks
    row = {
        "variant": variant,
        "stage1_peak_mib": peaks["stage1"]["peak"] / MIB,
        "after_stage1_mib": peaks["stage1"]["current"] / MIB,
        "stage2_peak_mib": peaks["stage2"]["peak"] / MIB,
        "switch_growth_mib": (peaks["stage2"]["peak"] - peaks["stage1"]["peak"]) / MIB,
        "adam_state_mib": 8 * trainable / MIB,
        "trainable_parameters": trainable,
        "marks": peaks,
    }
    Path(answer).write_text(json.dumps(row, indent=2) + "\n")


def training_config(s: MemorySettings) -> dict[str, Any]:
    """Two short RiM stages on digit chains, the model from the preset."""
    from rim.bench.common import model_config

    model = model_config(s.model).model_dump()
    if model.get("name_or_path") is not None:
        raise RimInputError(
            "the memory benchmark builds a model from scratch: give a preset without name_or_path",
            source=s.model,
        )
    return {
        "model": {**model, "max_length": min(model["max_length"], 256)},
        "data": {"train": f"gen:chain?n={4 * s.batch_size}&seed={s.seed}&ops={s.blocks}"},
        "method": {"name": "rim", "blocks": s.blocks},
        "trainer": {
            "batch_size": s.batch_size,
            "threads": s.threads,
            "seed": s.seed,
            "mixed_precision": s.precision,
            "report_to": [],
            "save_every": None,
            "log_every": s.steps,
            "stage1": {"steps": s.steps},
            "stage2": {"steps": s.steps},
        },
    }


class _MarkingReporter(Reporter):
    """A silent reporter that reads the meter when a stage starts and ends: `marks[stage]` is
    the peak during the stage and what is held at its end; `marks['before stage1']` covers
    the setup."""

    def __init__(self, meter: MemoryMeter) -> None:
        super().__init__(enabled=False)
        self.meter = meter
        self.marks: dict[str, dict[str, int]] = {}
        self._since = "before stage1"

    def _mark(self, until: str) -> None:
        self.marks[self._since] = self.meter.read()
        self.meter.reset()
        self._since = until

    def start_stage(self, name: str, total: int) -> int:
        self._mark(name)
        return super().start_stage(name, total)

    def end_stage(self, task: int) -> None:
        self._mark(f"after {self._since}")
        super().end_stage(task)


def _write(result: dict, out: Path, console: Console | None) -> None:
    s = result["settings"]
    title = f"Peak memory around the stage switch, {result['device']}"
    notes = [
        f"`rim bench memory`: a RiM run of {s['steps']} optimizer steps per stage, batch "
        f"{s['batch_size']}, K = {s['blocks']}, model {s['model'] or 'default (4-layer d-256)'}, "
        f"mixed precision {s['precision']}. Measure: {result['measure']}, reset at each stage's "
        "start and end.",
        "released: the trainer as it is (each pass's optimizer freed by "
        "`Accelerator.free_memory`); kept: that call made a no-op, as the trainer was before "
        "the release, so stage 1's AdamW state lives on through stage 2. One AdamW state: "
        "8 bytes per trainable parameter.",
        report.load_note(result["environment"]),
    ]
    report.publish(out, "memory", result, title, result["rows"], COLUMNS, notes, plot, console)


def plot(result: dict, path: Path) -> Path | None:
    """Each stage's peak, with the previous optimizer released and kept."""
    plt = report.pyplot()
    if plt is None:
        return None
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(5, 4))
    report.grouped_bars(
        ax,
        ["stage 1", "stage 2"],
        {f"previous optimizer {r['variant']}": [r["stage1_peak_mib"], r["stage2_peak_mib"]] for r in rows},
    )
    ax.set_ylabel("peak memory (MiB)")
    ax.set_ylim(0, 1.25 * max(r["stage2_peak_mib"] for r in rows))
    ax.legend(loc="upper center", ncol=2, fontsize=8)
    ax.set_title(result["device"], fontsize=9)
    return report.save_figure(fig, path)
