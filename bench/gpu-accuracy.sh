#!/usr/bin/env bash
# One accuracy sweep as one device call, capped in time (the second and later GPU calls; the
# first is bench/gpu.sh). Seed 0 only; the summary is written even when the cap stops training.
# Run from the repository root on the device machine:
#   OUT=$OUT bash bench/gpu-accuracy.sh accuracy-mult4-gpu 450
#   OUT=$OUT bash bench/gpu-accuracy.sh accuracy-prosqa-gpu 450
# Results land in runs/gpu/NAME and, packed, in $OUT/NAME.tgz.
set -uo pipefail
name=${1:?usage: gpu-accuracy.sh SWEEP_NAME [SECONDS]}
cap=${2:-450}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
res=runs/gpu/$name
mkdir -p "$res"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$res/gpu.txt"
timeout "$cap" python3 -m rim.cli bench accuracy "configs/bench/$name.yaml" --out "$res" --seeds 0
python3 -m rim.cli bench accuracy "configs/bench/$name.yaml" --out "$res" --seeds 0 --report-only
tar czf "${OUT:-runs/gpu}/$name.tgz" --exclude='*.safetensors' --exclude='tb' --exclude='data' "$res"
