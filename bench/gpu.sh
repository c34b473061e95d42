#!/usr/bin/env bash
# The GPU evidence issue in one device call (about 8 minutes on one H100), in this order:
#   1. correctness on the device: the layout-equivalence and cached-decoding tests, fp32 and
#      bf16 (bf16 to 0.05 on the logits);
#   2. latency of a GPT-2-small-sized and a Llama-1B-sized random model in bf16;
#   3. training step: RiM against plain SFT on GPT-2-small shapes, and packed against padded
#      on GSM8k-Aug lengths (when ../shared/data is there);
#   4. the table-lookup accuracy sweep, five methods at once on the one GPU, seed 0, capped.
# Every step writes under runs/gpu; what finished is packed into $OUT/gpu-results.tgz (no
# weights) and summarised at the end, so a run cut off by its limit still returns its results.
#   OUT=$OUT bash bench/gpu.sh            # on the device machine, from the repository root
#   SMOKE=1 OUT=/tmp/x bash bench/gpu.sh  # the same steps on CPU, tiny sizes, in ~2 minutes
set -uo pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
smoke=${SMOKE:-0}
res=runs/gpu$([ "$smoke" = 1 ] && echo -smoke)
out=${OUT:-$res}
mkdir -p "$res" "$out"
rim() { python3 -m rim.cli "$@"; }
status=()
step() { local name=$1; shift; echo "== $name"; "$@"; local rc=$?; status+=("$name: $( [ $rc = 0 ] && echo ok || echo "FAILED ($rc)")"); }
# rim needs pydantic (>= 2.7), the checks pytest: if the image lacks them, carry wheels for its
# Python in wheels/ (see bench/README.md) and they are installed from there.
for pkg in pydantic pytest; do
  python3 -c "import $pkg" 2>/dev/null || pip install -q --no-index --find-links wheels "$pkg" \
    || { echo "$pkg is missing and no wheels/ were carried"; exit 1; }
done
if [ "$smoke" = 1 ]; then dev=cpu; else dev=cuda; fi
python3 - > "$res/environment.txt" <<PY
import torch, transformers, accelerate, platform
print("python", platform.python_version(), "torch", torch.__version__, "transformers",
      transformers.__version__, "accelerate", accelerate.__version__)
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
PY
cat "$res/environment.txt"
gsm=../shared/data/gsm8k_aug/valid.txt

checks() {
  RIM_TEST_DEVICE=$dev python3 -m pytest -q -p no:cacheprovider tests/test_layout_equivalence.py \
    tests/test_infer.py > "$res/check-fp32.txt" 2>&1 &&
  RIM_TEST_DEVICE=$dev RIM_TEST_DTYPE=bfloat16 RIM_TEST_TOL=0.05 python3 -m pytest -q \
    -p no:cacheprovider tests/test_layout_equivalence.py tests/test_infer.py \
    > "$res/check-bf16.txt" 2>&1
}
step "correctness ($dev, fp32 and bf16)" checks
tail -1 "$res/check-fp32.txt" "$res/check-bf16.txt"

if [ "$smoke" = 1 ]; then
  step "latency" rim bench latency --model configs/model/tiny.yaml --batches 1 4 --warmup 0 \
    --repeats 1 --out "$res/latency-gpt2-small"
  step "training step" rim bench step --model configs/model/tiny.yaml --batch-size 8 \
    --repeats 1 --warmup 0 --pack-length 256 --out "$res/step" \
    $( [ -f "$gsm" ] && echo --data "$gsm" )
  step "accuracy sweep" timeout 300 python3 -m rim.cli bench accuracy \
    configs/bench/smoke-lookup.yaml --out "$res/accuracy-lookup"
else
  step "latency gpt2-small" rim bench latency --config configs/bench/latency-gpt2-gpu.yaml \
    --out "$res/latency-gpt2-small"
  step "latency llama-1b" rim bench latency --config configs/bench/latency-llama1b-gpu.yaml \
    --out "$res/latency-llama-1b"
  step "training step" rim bench step --device cuda --model configs/model/gpt2-small.yaml \
    --batch-size 64 --blocks 8 --repeats 10 --pack-length 1024 --out "$res/step" \
    $( [ -f "$gsm" ] && echo --data "$gsm" )
  timeout 330 python3 -m rim.cli bench accuracy configs/bench/accuracy-lookup-gpu.yaml \
    --out "$res/accuracy-lookup" --seeds 0 --concurrent 5
  step "accuracy sweep (summary)" rim bench accuracy configs/bench/accuracy-lookup-gpu.yaml \
    --out "$res/accuracy-lookup" --seeds 0 --report-only
fi

tar czf "$out/gpu-results.tgz" --exclude='*.safetensors' --exclude='*.bin' --exclude='tb' \
  --exclude='checkpoints' --exclude='data' "$res"
echo "== summary"
printf '%s\n' "${status[@]}" | tee "$res/summary.txt"
cp "$res/summary.txt" "$out/summary.txt"
