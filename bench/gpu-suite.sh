#!/usr/bin/env bash
# The GPU benchmarks in one call, for a lent GPU machine whose python3 has torch, torchvision,
# numpy and Pillow but none of the web stack (see bench/standalone.py):
#
#     bash bench/gpu-suite.sh            # results in bench/results/ and, when set, copied to $OUT
#
# Each step has its own time limit and its results are copied out as soon as it ends, so a
# step that runs long costs only itself. The whole suite takes over an hour; for one 15-minute
# lease, bench/gpu-lease.sh runs the quality checks and the real app side by side instead.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
log=$out/gpu-suite.log
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

step() {  # step SECONDS MODULE ARGS...
  local limit=$1; shift
  echo "== $(date -u +%T) $* (limit ${limit} s)" | tee -a "$log"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$py" bench/standalone.py "$@" 2>&1 | tee -a "$log"
  echo "== rc ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$log"
  [ "$out" = bench/results ] || cp bench/results/*gpu*.json bench/results/pretrain_throughput.json "$out"/ 2>/dev/null
  true
}

mkdir -p "$out"
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  "$py" -c 'import torch, torchvision, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))'
  nproc; } 2>&1 | tee -a "$log"

# Seconds each took on an H200 (2026-11-26): 84 (256 px sources), ~110 (640 px), ~190 per probe run.
step 150 bench.pretrain_throughput --compile --source 640
[ "$out" = bench/results ] || mv "$out"/pretrain_throughput.json "$out"/pretrain_throughput_src640.json
step 60 bench.pretrain_throughput --source 256
step 220 bench.probe_quality --crop-min 0.5
step 220 bench.probe_quality --crop-min 0.2
# Issue 13: label efficiency on both scene families (the second: clutter_large_solid, see
# bench/label_efficiency.py's FAMILIES), GPU preset (64 px, small stem, 10k pool), the
# pretraining held to a time budget so both fit a lent machine's minutes; JSON per family.
step 300 bench.label_efficiency --device cuda --preset gpu --family demo --budget 120 --sup-budget 30
step 300 bench.label_efficiency --device cuda --preset gpu --family clutter_large_solid --budget 120 --sup-budget 30
# The fine-tuned suggestions a GPU probe fit makes from 100 labels (SUGGEST_RULES), against the frozen
# probe, as the probe run cross-fits and chooses them (bench/finetune_scorer.py).
step 300 bench.finetune_scorer --device cuda --preset gpu --family demo --budget 120 --sizes 100 200 400
step 300 bench.finetune_scorer --device cuda --preset gpu --family clutter_large_solid --budget 120 --sizes 100 200 400

# Issue 16: box suggestions, BT-initialised vs random detector at 50/100/200 boxed images (target:
# AP50 >= 0.8 at 200, training <= 2 min; AP50 from pycocotools when installed, else the app's own).
step 600 bench.box_quality --device cuda --preset gpu --budget 120 --pool 5000
step 600 bench.box_quality --device cuda --preset gpu --budget 120 --pool 5000 --family clutter_large_solid

# Model assistance end to end, each stage against its ceiling (issue 20); the size from the
# environment: E2E_IMAGES=100000 E2E_EPOCHS=100 is the issue's run (target <= 20 min on one H200).
step "${E2E_LIMIT:-1500}" bench.gpu_end_to_end --images "${E2E_IMAGES:-100000}" --epochs "${E2E_EPOCHS:-100}"
echo "== $(date -u +%T) done" | tee -a "$log"
