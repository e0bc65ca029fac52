#!/usr/bin/env bash
# Prepares what tools/device_check.sh needs on a GPU machine whose python3 has torch 2.11, NumPy, pandas,
# matplotlib, SciPy, tqdm, threadpoolctl, hypothesis and pytest but not Dask or torchvision: their wheels
# in .whl/ (CPython 3.12, x86_64 Linux; 13 MB) and the MNIST cache in .cache/mnist.npz (11 MB). Both folders
# are ignored by git: carry them (the device tool's carry: [".whl", ".cache"]).
#
#   bash tools/device_wheels.sh [PYTHON_VERSION (default 3.12)] [TORCHVISION (default 0.26.0, for torch 2.11)]
set -eu
PYVER=${1:-3.12}
TV=${2:-0.26.0}
PY=${PY:-.venv/bin/python}
mkdir -p .whl .cache
$PY -m pip download -q --only-binary=:all: --python-version "$PYVER" --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --no-deps -d .whl \
    "dask==$($PY -c 'import dask; print(dask.__version__)')" \
    "distributed==$($PY -c 'import distributed; print(distributed.__version__)')" \
    cloudpickle msgpack toolz tornado zict tblib psutil sortedcontainers partd fsspec locket click pyyaml \
    "torchvision==$TV"
cp -L "${DLSCRATCH_DATA:-data}/mnist.npz" .cache/mnist.npz
du -sh .whl .cache
