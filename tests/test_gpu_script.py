"""The GPU evidence script's smoke mode: every step of `bench/gpu.sh` on CPU with tiny sizes, so
a device run is never lost to a typo, a missing package or a path."""

import os
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_script_smoke_mode_runs_every_step(tmp_path):
    proc = subprocess.run(
        ["bash", "bench/gpu.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "SMOKE": "1", "OUT": str(tmp_path)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in summary] == [
        "correctness (cpu, fp32 and bf16)",
        "latency",
        "training step",
        "accuracy sweep",
        "flexattention (cpu)",
        "trainer layouts",
        "memory at the stage switch",
        "fsdp and resume",
    ]
    assert all(": ok (" in line for line in summary), summary
    with tarfile.open(tmp_path / "gpu-results.tgz") as tar:
        names = tar.getnames()
    for result in (
        "latency-gpt2-small/latency.json",
        "step/step.json",
        "train-layouts/runs.json",
        "accuracy-lookup/accuracy.json",
        "memory/memory.json",
        "fsdp-resumed/metrics.jsonl",
        "check-bf16.txt",
        "check-flex.txt",
        "environment.txt",
    ):
        assert any(name.endswith(result) for name in names), result
    assert not any(name.endswith((".safetensors", ".bin", ".pkl")) for name in names)
