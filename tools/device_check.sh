#!/usr/bin/env bash
# The checks that need a GPU machine (issue 26; docs/design.md, "The torch twin on a GPU", and
# docs/paths.md, "Dask's scaling"): run from the repository root on a machine with a CUDA device and
# many cores, writing what it measured under $OUT (default ./device_check_out).
#
#   bash tools/device_check.sh
#
# Parts, each timed and each run whatever the others did:
#   1. the tests marked cuda (tests/test_cuda.py): the lockstep on the GPU, float64 parity, exact float32;
#   2. simple_convnet --profile quick --dtype float32 --device cuda: the float32 verdict with its interval
#      and the torch twin's recorded settings;
#   3. the Dask scaling curve (tools/dask_scaling.py): two_layer_mnist --profile quick --mode independent
#      over $SEEDS seeds on 1 (serially, $SERIAL_SEEDS seeds), 2, 4 and 8 workers, each beside as many plain
#      processes at once (the machine's own ceiling) -> $OUT/scaling.md;
#   4. lockstep wall time of the twins one after the other and side by side, on 2 of the cores (taskset);
#   5. tools/dask_costs.py: imports, data sent to 8 workers (float64 and packed), a unit's result size.
# Needs the MNIST cache (.cache/mnist.npz, data/mnist.npz or $DLSCRATCH_DATA) and, where python3 lacks
# them, wheels of dask, distributed and their dependencies (and torchvision) in .whl/, installed to
# /tmp/site: tools/device_wheels.sh prepares both.
# About 8 minutes on 16 cores (1: ~1 min; 2: ~40 s; 3: serial 4 seeds ~65 s, 8 seeds on 2/4/8 workers
# ~70/40/30 s plus cluster starts, and the plain processes ~25 s a point; 4: ~2.5 min; 5: ~30 s).
set -u
OUT=${OUT:-$PWD/device_check_out}
SEEDS=${SEEDS:-8}
SERIAL_SEEDS=${SERIAL_SEEDS:-4}
# Smaller settings for a trial on a small machine: WORKERS="2" SEEDS=2 SERIAL_SEEDS=1 COST_WORKERS=2
# TIMING_ARGS="--names perceptron_gates --threads 1 --repeats 1"
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD
if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD
fi
export MPLBACKEND=Agg
# The MNIST cache carried in .cache/ (tools/device_wheels.sh), unless the machine has its own
if [ -z "${DLSCRATCH_DATA:-}" ] && [ -f .cache/mnist.npz ]; then export DLSCRATCH_DATA=$PWD/.cache; fi
START=$(date +%s)
log() { echo "[$(( $(date +%s) - START )) s] $*" | tee -a "$OUT/summary.txt"; }

log "python: $($PY -c 'import sys, numpy, torch; print(sys.version.split()[0], "numpy", numpy.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")' 2>&1)"
log "cores: $(nproc); imports: $($PY -c 'import torchvision, distributed; print("torchvision", torchvision.__version__, "distributed", distributed.__version__)' 2>&1 | tail -1)"

# 1. the CUDA tests
t0=$(date +%s)
$PY -m pytest tests/test_cuda.py -q -p no:cacheprovider -rs > "$OUT/cuda_tests.txt" 2>&1
log "1. cuda tests: rc $? in $(( $(date +%s) - t0 )) s: $(tail -1 "$OUT/cuda_tests.txt")"

# 2. float32 simple_convnet with the torch twin on the GPU
t0=$(date +%s)
$PY -m experiments run simple_convnet --profile quick --dtype float32 --device cuda --out "$OUT/runs" \
    > "$OUT/simple_convnet_cuda.txt" 2>&1
rc=$?
log "2. simple_convnet float32 cuda: rc $rc in $(( $(date +%s) - t0 )) s"
$PY - "$OUT/runs/simple_convnet/summary.json" <<'EOF' 2>&1 | tee -a "$OUT/summary.txt"
import json, sys
s = json.load(open(sys.argv[1]))
print("   torch twin:", s.get("torch_twin"))
for m in s["models"]:
    print("   ", m["float32_vs_shadow"]["text"])
EOF

# 3. Dask scaling, beside N plain processes at once (the machine's own ceiling): tools/dask_scaling.py
t0=$(date +%s)
# shellcheck disable=SC2086  # WORKERS is a list
$PY tools/dask_scaling.py --workers ${WORKERS:-2 4 8} --seeds "$SEEDS" --serial-seeds "$SERIAL_SEEDS" \
    > "$OUT/scaling.md" 2>&1
log "3. dask scaling: rc $? in $(( $(date +%s) - t0 )) s"
cat "$OUT/scaling.md" | tee -a "$OUT/summary.txt"

# 4. the twins one after the other and side by side (lockstep), on two cores of this machine (taskset):
#    the two-core figures of docs/paths.md, "The twins side by side", on a quiet machine
t0=$(date +%s)
# shellcheck disable=SC2086  # TIMING_ARGS is a list of arguments
taskset -c 0,1 $PY tools/lockstep_timing.py ${TIMING_ARGS:---names two_layer_mnist simple_convnet --threads 1 2 --repeats 2} \
    > "$OUT/lockstep_timing.md" 2>&1
log "4. lockstep timing on 2 cores: rc $? in $(( $(date +%s) - t0 )) s"
cat "$OUT/lockstep_timing.md" | tee -a "$OUT/summary.txt"

# 5. where Dask's time goes besides training: imports, sending the data to 8 workers (float64 and packed)
t0=$(date +%s)
$PY tools/dask_costs.py --workers "${COST_WORKERS:-8}" > "$OUT/dask_costs.txt" 2>&1
log "5. dask costs: rc $? in $(( $(date +%s) - t0 )) s"
cat "$OUT/dask_costs.txt" | tee -a "$OUT/summary.txt"
log "done"
