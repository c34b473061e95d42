#!/usr/bin/env bash
# The GPU checks of the baselines issue in one device call (about 8 minutes on one H100):
# latency of a GPT-2-small-sized and a Llama-1B-sized random model in bf16, then the table
# lookup accuracy sweep with the five methods training concurrently on the one GPU (seed 0,
# capped at 5 minutes). Run from the repository root on the device machine:
#   OUT=$OUT bash bench/gpu.sh
# The device image has torch, transformers, accelerate, peft, rich and tensorboard; rim runs
# from the source tree. Results land in runs/gpu and, packed, in $OUT/gpu-results.tgz.
set -uo pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# rim needs pydantic (>= 2.7) besides the image's torch, transformers, accelerate, peft, rich:
# if the image lacks it, carry wheels for its Python in wheels/ (pip download pydantic
# pydantic-core --only-binary=:all: --python-version 3.X -d wheels) and they are installed here.
python3 -c "import pydantic" 2>/dev/null || pip install --no-index --find-links wheels pydantic \
    || { echo "pydantic is missing and no wheels/ were carried"; exit 1; }
rim() { python3 -m rim.cli "$@"; }
res=runs/gpu
mkdir -p "$res"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$res/gpu.txt"
rim bench latency --config configs/bench/latency-gpt2-gpu.yaml --out "$res/latency-gpt2-small"
rim bench latency --config configs/bench/latency-llama1b-gpu.yaml --out "$res/latency-llama-1b"
timeout 330 python3 -m rim.cli bench accuracy configs/bench/accuracy-lookup-gpu.yaml \
    --out "$res/accuracy-lookup" --seeds 0 --concurrent 5
rim bench accuracy configs/bench/accuracy-lookup-gpu.yaml --out "$res/accuracy-lookup" \
    --seeds 0 --report-only
tar czf "${OUT:-$res}/gpu-results.tgz" --exclude='*.safetensors' --exclude='tb' "$res"
