"""The two ways to train the twins (docs/design.md, "Two ways to train the twins").

Lockstep (``train_lockstep``): one seed becomes a ``numpy.random.SeedSequence``
whose children are independent streams, one per purpose:

    seed -> SeedSequence -> init | batches | dropout | augment | data

The scratch model draws its weights from ``init``; the torch twin receives
exactly those weights through the state dict. One batch order per epoch is drawn
from ``batches`` and fed to both. Each twin gets its own copy of the ``dropout``
stream (same seed, same calls, same masks). After every step both losses are
recorded; in float64 they agree to round-off.

Independent (``train_independent``): for each seed, the scratch twin uses its
own generator for weights, batch order and masks; the torch twin uses
``torch.manual_seed(seed)``, its native layers and ``torch.randperm``. The
report then compares distributions (mean and spread over seeds), not steps.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from experiments.compare import lockstep_tolerance, to_torch
from experiments.training import Data, Recipe, ScratchTwin, Shadow, TorchTwin, TwinRandom, fit, torch_dtype

STREAMS = ("init", "batches", "dropout", "augment", "data")


class Streams:
    """Independent random streams spawned from one seed.

    ``streams.rng("dropout")`` returns a new Generator on the named child's seed
    each time it is called: two calls give two identical streams, which is how
    the twins get dropout masks and augmentations "seeded alike".
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        children = np.random.SeedSequence(self.seed).spawn(len(STREAMS))
        self._seqs = dict(zip(STREAMS, children))

    def rng(self, name: str) -> np.random.Generator:
        if name not in self._seqs:
            raise KeyError(f"unknown stream {name!r}; streams are {', '.join(STREAMS)}")
        return np.random.default_rng(self._seqs[name])


def train_lockstep(recipe: Recipe, data: Data, seed: int = 0, dtype=np.float64, device="cpu", log=None,
                   shadow_steps=None, parallel: bool = False):
    """Train both twins from the same weights on the same batches; returns a ``TrainResult``.

    In float32 a float64 shadow runs beside them for the first ``shadow_steps``
    steps (None: all; 0: none): the scratch twin as the float64 lockstep run of
    this seed builds it (the float64 run's first step, bit for bit), on the
    float64 data, the same batches, dropout masks and augmentations. Each twin's
    distance from it measures its own float32 round-off (``TrainResult.shadow``).
    ``parallel``: the twins take each step side by side, on two threads (``training.TwinSteps``);
    the same numbers.
    """
    dtype = np.dtype(dtype)
    streams = Streams(seed)
    shadow = None
    if dtype == np.float32 and shadow_steps != 0:
        float64 = np.dtype(np.float64)
        twin64 = ScratchTwin(recipe.scratch_model(float64, _lockstep_random(streams, init=True)), recipe)
        steps = recipe.total_steps(len(data.x_train)) if shadow_steps is None else int(shadow_steps)
        shadow = Shadow(twin64, data.astype(float64), steps, streams.rng("augment"))
    data = data.astype(dtype)
    s_model = recipe.scratch_model(dtype, _lockstep_random(streams, init=True))
    t_model = recipe.torch_model(torch_dtype(dtype), _lockstep_random(streams, init=False))
    t_model.load_state_dict(to_torch(s_model.state_dict()))
    twins = [ScratchTwin(s_model, recipe), TorchTwin(t_model, recipe, device)]
    order_rng = streams.rng("batches")
    return fit(twins, data, recipe, [order_rng.permutation], _logger(log, seed),
               augment_rngs=[streams.rng("augment")], seed=seed, mode="lockstep", shadow=shadow, parallel=parallel)


def _lockstep_random(streams: Streams, init: bool) -> TwinRandom:
    """A twin's streams in lockstep: its own copies of dropout and augment; init for the scratch builder."""
    return TwinRandom("lockstep", init=streams.rng("init") if init else None, dropout=streams.rng("dropout"),
                      augment=streams.rng("augment"))


def train_control(recipe: Recipe, data: Data, seed: int = 0, dtype=np.float64, log=None):
    """The sensitivity control: the scratch twin against itself, started 1 ulp apart.

    Same init, batches and masks as ``train_lockstep``; the second copy's floating
    parameters are moved to the next representable number (``np.nextafter``).
    When this pair drifts apart as fast as the two twins do, the drift is the
    training's own sensitivity to round-off (unstable or chaotic dynamics), not a
    difference between NumPy and PyTorch. Returns the per-step relative loss
    difference of the pair.
    """
    dtype = np.dtype(dtype)
    streams = Streams(seed)
    data = data.astype(dtype)
    models = []
    for _ in range(2):
        models.append(recipe.scratch_model(dtype, _lockstep_random(streams, init=True)))
    for p in models[1].parameters():
        p.data[...] = np.nextafter(p.data, np.inf)
    twins = [ScratchTwin(m, recipe) for m in models]
    twins[1].impl = "scratch+1ulp"

    def control_log(impl, metric, value, step, epoch):
        if impl == "diff" and log is not None:
            log("control", metric, value, step=step, epoch=epoch, seed=seed)

    result = fit(twins, data, recipe, [streams.rng("batches").permutation], control_log,
                 augment_rngs=[streams.rng("augment")], seed=seed, mode="control", progress=False)
    return result.loss_rel_diff


def train_independent(recipe: Recipe, data: Data, seed: int = 0, dtype=np.float64, device="cpu", log=None):
    """Train each twin on its own: native initialisation and random numbers. Returns one ``TrainResult``
    holding both twins' curves (each twin ran alone, so there is no step-by-step parity)."""
    dtype = np.dtype(dtype)
    data = data.astype(dtype)
    log = _logger(log, seed)
    rng = np.random.default_rng(seed)  # the scratch twin's own stream, like torch's global one
    s_model = recipe.scratch_model(dtype, TwinRandom("independent", init=rng, dropout=rng, augment=rng))
    s_result = fit([ScratchTwin(s_model, recipe)], data, recipe, [rng.permutation], log,
                   augment_rngs=[rng], seed=seed, mode="independent")

    torch.manual_seed(seed)
    t_model = recipe.torch_model(torch_dtype(dtype), TwinRandom("independent"))
    t_rng = np.random.default_rng(torch.randint(0, 2**62, ()).item())  # augmentation only: a NumPy transform

    def torch_order(n):
        return torch.randperm(n).numpy()

    t_result = fit([TorchTwin(t_model, recipe, device)], data, recipe, [torch_order], log,
                   augment_rngs=[t_rng], seed=seed, mode="independent")
    for field in ("final", "history", "evals", "time_per_step", "models", "initial"):
        getattr(s_result, field).update(getattr(t_result, field))
    s_result.torch_twin = t_result.torch_twin
    return s_result


@dataclass
class TrainUnit:
    """One training as a unit of work (experiments.distributed): a recipe, the mode and the seed.

    Its randomness is that of ``seed`` alone (``Streams(seed)`` in lockstep; ``default_rng(seed)`` and
    ``torch.manual_seed(seed)`` in independent mode), whichever process runs it and whatever ran before.
    ``light``: drop the scratch model's forward caches before the result travels back to the client.
    """

    recipe: Recipe
    mode: str
    seed: int
    dtype: str
    device: str = "cpu"
    control: bool = True
    light: bool = False
    shadow_steps: Optional[int] = None  # float32 lockstep: steps of the float64 shadow (None: all; 0: none)
    parallel: bool = False  # lockstep: the twins take each step side by side (training.TwinSteps)

    @property
    def key(self):
        return (self.recipe.tag or self.recipe.label or "training", self.mode, int(self.seed))


def train_unit(unit: TrainUnit, data: Data):
    """Run ``unit`` on ``data``: ``(TrainResult, rows)``, ``rows`` being the metrics.csv rows
    ``(impl, metric, value, step, epoch, seed)`` it logged, in order, for the client to record.
    A lockstep training out of the float64 tolerance is followed by its 1-ulp control (``train_control``)."""
    rows = []

    def log(impl, metric, value, step=None, epoch=None, seed=None):
        rows.append((impl, metric, value, step, epoch, seed))

    dtype = np.dtype(unit.dtype)
    tol = lockstep_tolerance(dtype)
    with np.errstate(**(unit.recipe.numpy_errors or {})):
        if unit.mode == "lockstep":
            result = train_lockstep(unit.recipe, data, unit.seed, dtype, unit.device, log,
                                    shadow_steps=unit.shadow_steps, parallel=unit.parallel)
        else:
            result = train_independent(unit.recipe, data, unit.seed, dtype, unit.device, log)
        result.tolerance = tol if result.mode == "lockstep" else None
        if result.mode == "lockstep" and tol is not None and unit.control and result.max_loss_rel_diff > tol:
            # Out of tolerance: is it the twins or the training? Run the scratch twin against itself.
            result.control_loss_rel_diff = train_control(unit.recipe, data, unit.seed, dtype, log)
    if unit.light:
        model = result.models.get("scratch")
        if model is not None:
            # A one-image forward in eval mode replaces the last evaluation's caches (hundreds of MB
            # for a conv net) without changing any parameter or buffer.
            was = model.training
            model.eval()
            model(np.ascontiguousarray(data.x_train[:1], dtype=dtype))
            model.train(was)
    return result, rows


def _logger(log, seed):
    if log is None:
        return lambda impl, metric, value, step, epoch: None
    return lambda impl, metric, value, step, epoch: log(impl, metric, value, step=step, epoch=epoch, seed=seed)
