#!/usr/bin/env bash
# GPU checks in device calls of at most 9 minutes each, in two parts (PARTS, default
# "evidence"; the smoke mode runs both):
# evidence: the GPU evidence issue, about 8 minutes on one H100, in this order:
#   1. correctness on the device: the layout-equivalence and cached-decoding tests, fp32 and
#      bf16 (bf16 to 0.05 on the logits);
#   2. latency of a GPT-2-small-sized and a Llama-1B-sized random model in bf16;
#   3. training step: RiM against plain SFT on GPT-2-small shapes, and packed against padded
#      on GSM8k-Aug lengths (when ../shared/data is there);
#   4. the table-lookup accuracy sweep, five methods at once on the one GPU, seed 0, capped.
# long: the long-run issue's GPU checks, about 4 minutes:
#   5. FlexAttention's logits, loss and gradients against the dense mask, padded and packed;
#   6. the real trainer on a Llama-shaped model: dense 4D mask padded, dense packed,
#      FlexAttention packed, side by side (`rim bench runs`);
#   7. peak memory at the stage switch (previous optimizer released vs kept);
#   8. FSDP through `accelerate launch` (one process) with a checkpoint resumed exactly.
# Every step writes under runs/gpu; after each step what finished is packed into
# $OUT/gpu-results.tgz (no weights) and $OUT/summary.txt, so a run cut off by its limit still
# returns what it did.
#   OUT=$OUT bash bench/gpu.sh                 # on the device machine, from the repository root
#   PARTS=long OUT=$OUT bash bench/gpu.sh      # the second call
#   SMOKE=1 OUT=/tmp/x bash bench/gpu.sh       # every step on CPU, tiny sizes, in ~2 minutes
set -uo pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
smoke=${SMOKE:-0}
parts=" ${PARTS:-$( [ "$smoke" = 1 ] && echo "evidence long" || echo evidence )} "
want() { [[ "$parts" == *" $1 "* ]]; }
res=runs/gpu$([ "$smoke" = 1 ] && echo -smoke)
out=${OUT:-$res}
mkdir -p "$res" "$out"
rim() { python3 -m rim.cli "$@"; }
status=()
pack() {
  tar czf "$out/gpu-results.tgz" --exclude='*.safetensors' --exclude='*.bin' --exclude='tb' \
    --exclude='checkpoints' --exclude='data' --exclude='*.pkl' "$res"
  printf '%s\n' "${status[@]}" > "$out/summary.txt"
}
step() {
  local name=$1; shift; echo "== $name"; local start=$SECONDS; "$@"; local rc=$?
  status+=("$name: $( [ $rc = 0 ] && echo ok || echo "FAILED ($rc)") ($((SECONDS - start)) s)")
  pack
}
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
# FlexAttention against the dense mask, padded and packed: logits, and on a GPU the loss and
# every gradient of a training step (torch has no flex backward on CPU: skipped there)
# (the smoke run only collects them: the test suite runs them on CPU already)
flex_check() {
  local only=(); [ "$smoke" = 1 ] && only=(--collect-only)
  RIM_TEST_DEVICE=$dev python3 -m pytest -q -rs -p no:cacheprovider tests/test_segments.py \
    -k flex "${only[@]}" > "$res/check-flex.txt" 2>&1
  local rc=$?; tail -3 "$res/check-flex.txt"; return $rc
}

# the trainer with each attention layout, then side by side (FlexAttention trains on GPUs only:
# the smoke run puts SDPA in its place to check the plumbing)
trainer_layouts() {
  local cfg=configs/bench/train-flex-gpu.yaml flex=flex_attention size=()
  if [ "$smoke" = 1 ]; then
    flex=sdpa
    size=(model.scratch.num_hidden_layers=1 model.scratch.hidden_size=32
          model.scratch.num_attention_heads=2 model.scratch.num_key_value_heads=2
          model.scratch.intermediate_size=64 data.train="gen:gsm?n=64&seed=0" trainer.batch_size=8
          trainer.stage1.steps=4 trainer.stage2.steps=2 trainer.log_every=2)
  fi
  rm -rf "$res"/train-{dense,dense-packed,flex-packed}
  rim train $cfg --out "$res/train-dense" --no-progress "${size[@]}" &&
  rim train $cfg --out "$res/train-dense-packed" --no-progress trainer.packing=true "${size[@]}" &&
  rim train $cfg --out "$res/train-flex-packed" --no-progress trainer.packing=true \
    model.attn_implementation=$flex "${size[@]}" &&
  rim bench runs "$res"/train-{dense,dense-packed,flex-packed} --out "$res/train-layouts"
}

# FSDP (one process: the sharded code paths) with a checkpoint; a copy cut back to its first
# checkpoint is resumed and must end with the same losses
fsdp() {
  local launch=(accelerate launch --config_file configs/accelerate/fsdp.yaml --num_processes 1)
  [ "$smoke" = 1 ] && launch=(accelerate launch --cpu --num_processes 1)
  local args=(configs/tiny.yaml --no-progress trainer.stage1.steps=60 trainer.stage2.steps=20
              trainer.save_every=40 trainer.keep_last=5)
  rm -rf "$res"/fsdp{,-resumed}
  "${launch[@]}" -m rim.cli train "${args[@]}" --out "$res/fsdp" 2>&1 | tee "$res/fsdp.log"
  [ "${PIPESTATUS[0]}" = 0 ] || return 1
  if [ "$smoke" != 1 ] && grep -q "did not select" "$res/fsdp.log"; then
    echo "Accelerate did not run FSDP"; return 1
  fi
  cp -r "$res/fsdp" "$res/fsdp-resumed" &&
  rm -rf "$res"/fsdp-resumed/{model,eval.json,checkpoints/step-00000080,checkpoints/stage*} &&
  "${launch[@]}" -m rim.cli train "${args[@]}" --out "$res/fsdp-resumed" --resume &&
  python3 - "$res/fsdp" "$res/fsdp-resumed" <<'PY'
import json, sys
rows = [[(r["stage"], r["step"], round(r["loss"], 5)) for r in map(json.loads, open(f"{d}/metrics.jsonl"))
         if "loss" in r] for d in sys.argv[1:]]
print("losses equal after resume:", rows[0] == rows[1], rows[0][-1])
sys.exit(0 if rows[0] == rows[1] else 1)
PY
}

if want evidence; then
  step "correctness ($dev, fp32 and bf16)" checks
  tail -1 "$res/check-fp32.txt" "$res/check-bf16.txt"
  if [ "$smoke" = 1 ]; then
    step "latency" rim bench latency --model configs/model/tiny.yaml --batches 1 4 --warmup 0 \
      --repeats 1 --out "$res/latency-gpt2-small"
    step "training step" rim bench step --model configs/model/tiny.yaml --batch-size 8 \
      --repeats 1 --warmup 0 --pack-length 256 --precision no --out "$res/step" \
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
fi

if want long; then
  step "flexattention ($dev)" flex_check
  step "trainer layouts" trainer_layouts
  if [ "$smoke" = 1 ]; then
    step "memory at the stage switch" rim bench memory --steps 1 --batch-size 4 --blocks 2 \
      --out "$res/memory"
  else
    step "memory at the stage switch" rim bench memory --device cuda --precision bf16 \
      --model configs/model/gpt2-small.yaml --out "$res/memory"
  fi
  step "fsdp and resume" fsdp
fi

echo "== summary"
printf '%s\n' "${status[@]}" | tee "$res/summary.txt"
pack
