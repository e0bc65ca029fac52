#!/usr/bin/env bash
# Run the test suite as other machines would: other torch kernels (ATEN_CPU_CAPABILITY),
# other OpenBLAS kernels for NumPy (OPENBLAS_CORETYPE), other thread counts for torch
# and scratch. A test that passes here and flips under one of these asserts the
# machine, not the math (docs/design.md, "Machine independence").
# Usage: tools/test_machines.sh PYTHON [pytest args...]
set -uo pipefail
PY=${1:?usage: tools/test_machines.sh PYTHON [pytest args...]}
shift
VARIANTS=(
  "ATEN_CPU_CAPABILITY=default"
  "ATEN_CPU_CAPABILITY=avx2"
  "OPENBLAS_CORETYPE=Haswell"
  "OPENBLAS_CORETYPE=Sandybridge"
  "DLSCRATCH_TEST_TORCH_THREADS=2"
  "DLSCRATCH_TEST_SCRATCH_THREADS=1"
  "DLSCRATCH_TEST_SCRATCH_THREADS=2"
)
failed=()
for v in "${VARIANTS[@]}"; do
  echo "=== $v"
  # OPENBLAS_L2_SIZE belongs with the machine's own OPENBLAS_CORETYPE: unset both, then set ours
  env -u OPENBLAS_L2_SIZE -u OPENBLAS_CORETYPE "$v" "$PY" -c \
    "import numpy, threadpoolctl, torch; print('kernels: torch', torch.backends.cpu.get_cpu_capability(), '| numpy',
     [(i['internal_api'], i.get('architecture')) for i in threadpoolctl.threadpool_info()])" 2>/dev/null || true
  if ! env -u OPENBLAS_L2_SIZE -u OPENBLAS_CORETYPE "$v" "$PY" -m pytest -q -p no:cacheprovider "$@"; then
    failed+=("$v")
  fi
done
echo
if [ ${#failed[@]} -eq 0 ]; then
  echo "test-machines: the suite passed under all ${#VARIANTS[@]} variants"
else
  echo "test-machines: FAILED under: ${failed[*]}"
  exit 1
fi
