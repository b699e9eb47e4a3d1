#!/usr/bin/env bash
# The real product on a lent GPU machine: bin/web + bin/worker (queues default and gpu) on the
# embedded default (SQLite + the filesystem broker), driven through the REST API
# (bench/gpu_app_drive.py). The lent machine has its own torch but no package registry, so:
#
#   bash bench/gpu_app.sh wheelhouse [PYTHON_VERSION]   # here: wheels of the requirements the machine
#                                                        # lacks, for its Python (default 3.12), in bench/wheelhouse
#   bash bench/gpu_app.sh run [IMAGES] [EPOCHS]          # there (carry bench/wheelhouse): install offline
#                                                        # on top of its torch, start, drive, stop
#   bash bench/gpu_app.sh site DIR                       # there: only install the wheels into DIR
#                                                        # (then PYTHONPATH=DIR)
#
# torch, torchvision, numpy and Pillow come from the machine's own Python (the wheels go on
# PYTHONPATH); psycopg is not needed on the embedded default. Results:
# bench/results/gpu_app.json (and $OUT when set), the web and worker logs beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WHEELS=$ROOT/bench/wheelhouse
SKIP='^(torch|torchvision|numpy|pillow|psycopg)(\[|=)'

requirements() {  # the runtime requirements minus what the machine brings
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' requirements.txt | grep -v '^$' | grep -viE "$SKIP"
}

install_wheelhouse() {  # install_wheelhouse DIR: the carried wheels into DIR, put on PYTHONPATH
  "${PYTHON3:-python3}" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
    --target "$1" "$WHEELS"/*.whl
  export PYTHONPATH=$1${PYTHONPATH:+:$PYTHONPATH}
}

case "${1:-}" in
site)
  install_wheelhouse "$2"
  ;;
wheelhouse)
  pyver=${2:-3.12}
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  requirements > "$WHEELS/requirements.txt"
  "${PIP:-.venv/bin/pip}" download --quiet --dest "$WHEELS" --only-binary=:all: --python-version "$pyver" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -r "$WHEELS/requirements.txt"
  # Their own dependencies on what the machine brings are satisfied there; not carried.
  # So are the large ones its image already holds (umap-learn's numba, llvmlite, scipy and
  # scikit-learn; tensorboard's grpcio): together they would pass a lease's 64 MiB carry limit.
  rm -f "$WHEELS"/torch-* "$WHEELS"/torchvision-* "$WHEELS"/numpy-* "$WHEELS"/pillow-* "$WHEELS"/nvidia_* \
    "$WHEELS"/triton-* "$WHEELS"/scipy-* "$WHEELS"/scikit_learn-* "$WHEELS"/numba-* "$WHEELS"/llvmlite-* \
    "$WHEELS"/grpcio-* "$WHEELS"/tensorboard-* "$WHEELS"/tensorboard_data_server-* "$WHEELS"/setuptools-* \
    "$WHEELS"/cuda_* "$WHEELS"/sympy-* "$WHEELS"/networkx-*
  du -sh "$WHEELS"
  ;;
run)
  images=${2:-2000}
  epochs=${3:-20}
  work=$(mktemp -d /tmp/twinlabel-gpu-app.XXXXXX)
  if [ -z "${APP_PYTHON:-}" ]; then  # APP_PYTHON: an interpreter that has everything already (a CPU check)
    # The machine's python3 is itself a venv (/opt/torch/.venv): a venv made from it with
    # --system-site-packages would see the base interpreter's packages, not its torch. So the
    # wheels go into a folder on PYTHONPATH instead, ahead of the machine's own packages.
    install_wheelhouse "$work/site"
    APP_PYTHON=${PYTHON3:-python3}
  fi
  export PYTHON=$APP_PYTHON TWINLABEL_VAR_DIR=$work/var SECRET_KEY=gpu-app-bench-only
  export MEDIA_ROOT=$work/var/media BIND=127.0.0.1:${PORT:-8765} WEB_ACCESS_LOG=/dev/null
  unset DATABASE_URL CELERY_BROKER_URL
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
  bin/web > "$work/web.log" 2>&1 &
  web=$!
  WORKER_QUEUES=default,gpu WORKER_NICE=${WORKER_NICE:-10} bin/worker > "$work/worker.log" 2>&1 &
  worker=$!
  save_logs() {  # also when the run is cut short (a lease's time limit)
    [ -n "${OUT:-}" ] || return 0
    cp bench/results/gpu_app.json "$OUT"/ 2>/dev/null || true
    tail -200 "$work/web.log" > "$OUT/gpu_app_web.log"
    tail -400 "$work/worker.log" > "$OUT/gpu_app_worker.log"
  }
  trap 'save_logs; kill $web $worker 2>/dev/null; wait $web $worker 2>/dev/null || true' EXIT
  for _ in $(seq 120); do
    "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://$BIND/healthz" >/dev/null 2>&1 && break
    sleep 1
  done
  "$PYTHON" manage.py shell -c "
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser('gpu-app', 'gpu@example.com', 'x')"
  token=$("$PYTHON" manage.py drf_create_token gpu-app | awk '{print $3}')
  rc=0
  "$PYTHON" bench/gpu_app_drive.py --url "http://$BIND" --token "$token" --images "$images" --epochs "$epochs" \
    --timeout "${DRIVE_TIMEOUT:-1800}" --out bench/results/gpu_app.json || rc=$?
  exit $rc
  ;;
*)
  sed -n '2,14p' "$0"
  exit 2
  ;;
esac
