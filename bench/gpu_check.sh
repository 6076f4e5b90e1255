#!/bin/sh
# The GPU check (fast-gpu against airbench94, same GPU, same data), in two steps. It has not run
# yet; its figures belong in docs/benchmarks.md.
#
#   sh bench/gpu_check.sh prepare   # here: the airbench wheel into .whl/, the data into .devdata/
#   sh bench/gpu_check.sh run       # on the GPU machine (both folders carried there)
#
# Both folders are git-ignored (.git/info/exclude) and small: the wheel is 17 kB, the shared JPEG
# copy of CIFAR-10 19 MB. On the GPU machine torch, torchvision and numpy are already installed;
# grader itself runs from the checkout (PYTHONPATH), so nothing else is needed there.
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
    for d in .whl .devdata; do
        grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >> .git/info/exclude
    done
    .venv/bin/python -m pip wheel -q --no-deps airbench==0.1.8 -w .whl
    mkdir -p .devdata
    cp "${GRADER_DATA:?point GRADER_DATA at the CIFAR-10 copy to carry}" .devdata/
    ls -l .whl .devdata
    ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" GRADER_CACHE=/tmp/grader-cache PYTHONUNBUFFERED=1
    GRADER_DATA="$PWD/.devdata/$(ls .devdata | head -n 1)"
    export GRADER_DATA
    nvidia-smi -L
    out="${OUT:-/tmp}"
    python3 bench/bench_train_gpu.py --runs "${RUNS:-5}" --budget "${BUDGET:-330}" \
        --variant epochs=7 --variant compile=True --json "$out/gpu.json" 2>&1 | tee "$out/gpu.log"
    ;;
*)
    echo "usage: sh bench/gpu_check.sh prepare|run" >&2
    exit 2
    ;;
esac
