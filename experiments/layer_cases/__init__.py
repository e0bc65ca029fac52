"""The catalogue of layers checked against PyTorch: one random configuration per call, found automatically.

Each ``LayerCase`` builds, from a ``numpy.random.Generator``, a scratch module
(float64), the torch module of the same structure, and the inputs: the first
input gets a gradient, the others (a loss's target) are passed along. The
gradcheck command and the tests draw from ``CASES``, so a layer added here is
checked everywhere: against torch on both of scratch's paths, the plain path
against the fast one, and against central differences.

Adding a case: in any module of this package (``basic``, ``conv``, ``norm``,
``residual``, or a new file; nothing else to edit)::

    from experiments.layer_cases.base import random_input, random_shape, register

    @register("MyLayer")
    def _my_layer(rng):
        shape = random_shape(rng)
        return snn.MyLayer(), torch.nn.MyLayer(), (random_input(rng, shape),), f"x={shape}"

Modules whose name starts with "_" and ``base`` hold helpers, not cases; the
others are imported in name order, and their cases keep that order.
"""
import importlib
import pkgutil

from experiments.layer_cases.base import (CASES, PATHS_TOLERANCE, LayerCase, cast_inputs,  # noqa: F401
                                          check_against_numerical, check_against_torch, check_paths, register)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _module.startswith("_") and _module != "base":
        importlib.import_module(f"{__name__}.{_module}")
