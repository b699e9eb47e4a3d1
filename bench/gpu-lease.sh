#!/usr/bin/env bash
# The GPU checks that fit one 15-minute lease (start-up included), in parallel on one machine:
#
#     bash bench/gpu-lease.sh        # on the lent machine; carry bench/wheelhouse (bench/gpu_app.sh)
#
# bench/gpu-suite.sh runs the same benchmarks one after the other, each alone, at full size
# (about 75 minutes); a lease has about 9 minutes of command time, so here they share the GPU and
# the 16 cores, each with its own time limit:
#
# - issue 13: bench.label_efficiency on both scene families (the demo, and the second family
#   clutter_large_solid: the clutter family itself is out of an oracle's reach), GPU preset, a 120 s
#   pretraining budget;
# - issue 16: bench.box_quality at 200 boxed images on both families, a 90 s pretraining budget;
#   (box_random, only when LEASE_JOBS names it: the random-backbone detector alone);
# - issue 20: bench/gpu_app.sh, the real bin/web + bin/worker (queue gpu) driven over the REST API.
#
# LEASE_JOBS="le_demo app" runs only those (names: le_demo le_second box_demo box_second
# box_random app; ft_demo, only when named: bench.finetune_scorer, the fine-tuned suggestions
# a GPU probe fit cross-fits from 100 labels; le_demo_colour, only when named: the demo with the CPU preset's strong colour
# distortion, which the GPU preset does not use until this measures it). Sharing lowers what a
# time budget buys (fewer steps than alone), so every quality figure here is a lower bound of the same run alone, and the timings are contended ones (each JSON records the
# load). Everything written (results JSON, logs) is packed into $OUT/lease.tgz every 15 s, so a run
# cut short still brings back what finished.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
limit=${LEASE_LIMIT:-470}
py=${PYTHON:-python3}
logs=$(mktemp -d /tmp/lease.XXXXXX)
mkdir -p "$out" bench/results
touch "$logs/.start"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${LEASE_THREADS:-3} MKL_NUM_THREADS=${LEASE_THREADS:-3}

pack() {
  local new
  new=$(cd bench/results && find . -maxdepth 1 -name '*.json' -newer "$logs/.start" | sort)
  # shellcheck disable=SC2086
  tar czf "$out/lease.tgz.part" --exclude=./site -C "$logs" . -C "$PWD/bench/results" $new 2>/dev/null \
    && mv "$out/lease.tgz.part" "$out/lease.tgz"
}

job() {  # job NAME SECONDS COMMAND...: runs unless LEASE_JOBS (names) leaves it out
  local name=$1 seconds=$2
  shift 2
  [[ " ${LEASE_JOBS:-le_demo le_second box_demo box_second app} " == *" $name "* ]] || return 0
  (
    t0=$SECONDS
    echo "== $(date -u +%T) $* (limit $seconds s)"
    timeout --signal=INT --kill-after=15 "$seconds" "$@"
    echo "== rc $? after $((SECONDS - t0)) s"
  ) > "$logs/$name.log" 2>&1 &
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$py" -c 'import torch, torchvision, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))'
  nproc; } > "$logs/machine.log" 2>&1

# The carried wheels (Django, Celery, pycocotools, ...) once, for every job: the app needs them and
# box_quality scores with pycocotools (COCO's evaluator) when it is there.
if [ -z "${APP_PYTHON:-}" ] && ls bench/wheelhouse/*.whl > /dev/null 2>&1; then
  PYTHON3=$py bash bench/gpu_app.sh site "$logs/site" > "$logs/site.log" 2>&1 \
    && export PYTHONPATH=$logs/site && rm -f "$logs/site.log"
fi
export APP_PYTHON=${APP_PYTHON:-$py}
standalone=("$py" bench/standalone.py)
job le_demo "$limit" "${standalone[@]}" bench.label_efficiency --device cuda --preset gpu --family demo \
  --budget "${LE_BUDGET:-120}" --sup-budget 15 --sizes ${LE_SIZES:-50 100 200 400} --name label_efficiency_gpu_demo_lease
job le_demo_colour "$limit" "${standalone[@]}" bench.label_efficiency --device cuda --preset gpu --family demo --colour strong \
  --budget "${LE_BUDGET:-120}" --sup-budget 15 --sizes ${LE_SIZES:-50 100 200 400} --name label_efficiency_gpu_demo_colour_lease
job le_second "$limit" "${standalone[@]}" bench.label_efficiency --device cuda --preset gpu --family clutter_large_solid \
  --budget "${LE_BUDGET:-120}" --sup-budget 15 --sizes ${LE_SIZES:-50 100 200 400} --name label_efficiency_gpu_clutter_large_solid_lease
job ft_demo "$limit" "${standalone[@]}" bench.finetune_scorer --device cuda --preset gpu --family demo \
  --budget "${LE_BUDGET:-120}" --sizes 100 200 --name finetune_scorer_gpu_demo_lease
job box_demo "$limit" "${standalone[@]}" bench.box_quality --device cuda --preset gpu --budget 90 --pool 5000 \
  --sizes 200 --threads 3 --tag lease
job box_second "$limit" "${standalone[@]}" bench.box_quality --device cuda --preset gpu --budget 90 --pool 5000 \
  --sizes 200 --threads 3 --family clutter_large_solid --tag lease
job box_random "$limit" "${standalone[@]}" bench.box_quality --device cuda --preset gpu --sizes 200 --threads 3 \
  --inits random --tag lease_random_only
job app "$limit" env OUT="$logs" DRIVE_TIMEOUT=$((limit - 60)) bash bench/gpu_app.sh run "${APP_IMAGES:-3000}" "${APP_EPOCHS:-20}"

while [ -n "$(jobs -rp)" ]; do
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> "$logs/gpu_use.log" 2>&1
  pack
  sleep 15
done
pack
tail -n 4 "$logs"/*.log
ls -la "$out"
