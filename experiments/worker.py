"""A Dask worker's start: the imports every unit needs, paid before the worker joins its cluster.

``experiments run --workers N`` starts its local workers with this module as a Dask *preload*; a
cluster of your own should start its workers the same way (docs/scale-out.md)::

    dask worker tls://SCHEDULER:8786 --nthreads 1 --preload experiments.worker

Why: a unit needs torch, torchvision, scratch, the trainers and the catalogue, about 4 s of imports on a quiet core
and 8 s when 8 workers start together on a 16-core machine (docs/paths.md, "Dask's scaling"). Without
a preload every worker pays them inside its first unit, so inside the first experiment's time, and a
unit placed on a fresh worker runs that much later than its twin on a warm one. Dask imports a preload
module while the worker is built, before it listens or registers with the scheduler, so no heartbeat
waits on the imports, and ``LocalCluster`` returns once every worker is ready.
"""
import time

_started = time.perf_counter()

import numpy  # noqa: E402,F401
import torch  # noqa: E402,F401
import torch._dynamo  # noqa: E402,F401  (torch.optim imports it when it builds its first optimizer)

import torch_ref.transforms  # noqa: E402,F401  (torchvision: the augmentation's units)

import experiments.lockstep  # noqa: E402,F401  (the trainers, both twins' models and optimizers)
import experiments.runner  # noqa: E402,F401  (placed_unit, the packing)
from experiments import catalogue  # noqa: E402
from experiments.distributed import undo_malloc_trim  # noqa: E402

catalogue.all_experiments()  # every entry's module: a ctx.map function is pickled by reference to it
undo_malloc_trim()
IMPORT_SECONDS = time.perf_counter() - _started  # read by tools/dask_costs.py
