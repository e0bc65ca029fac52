"""Training the twins: a recipe, two twins behind one interface, and the epoch loop.

A ``Recipe`` says what to train (a model builder for each twin, the optimizer and
loss by their shared PyTorch names, batch size, steps). ``ScratchTwin`` and
``TorchTwin`` wrap a model, its optimizer and its loss behind the same three
calls (``step``, ``predict``, ``state_dict``), so one loop, ``fit``, drives
either or both. ``experiments.lockstep`` decides where the weights and the random
numbers come from; ``fit`` only walks the epochs:

    for each epoch:            order = a fresh permutation of the training set
        for each mini-batch:   every twin takes one step on the same batch
        at the epoch's end:    accuracy and loss on the whole train and test sets

Each epoch is a permutation (PyTorch's ``shuffle=True``), not the book's sampling
with replacement, so every image is seen once per epoch.
"""
import contextvars
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from tqdm import tqdm

import scratch.nn as snn
from experiments.compare import compare_arrays
from torch_ref import precision
from torch_ref.nn import torch_dtype  # noqa: F401  (re-exported: the trainers and experiments take it from here)


# -- what to train -------------------------------------------------------------
@dataclass
class TwinRandom:
    """The random streams a model builder may draw from.

    Lockstep: ``init`` is the shared init stream (scratch builder only: the torch
    twin receives the scratch weights), ``dropout`` and ``augment`` are copies of
    the shared streams, one per twin, so both draw the same masks.
    Independent: the scratch builder gets its own generators, the torch builder
    gets ``None`` everywhere and uses torch's global RNG (``torch.manual_seed``)
    and native layers (``nn.Dropout``).
    """

    mode: str
    init: Optional[np.random.Generator] = None
    dropout: Optional[np.random.Generator] = None
    augment: Optional[np.random.Generator] = None


@dataclass
class Recipe:
    """One model trained in both twins.

    ``scratch_model(dtype, rand) -> scratch Module`` and
    ``torch_model(torch_dtype, rand) -> torch.nn.Module`` build the same
    architecture with the same state-dict keys (``rand``: a ``TwinRandom``).
    ``optimizer`` and ``loss`` are names found both in ``scratch.optim`` /
    ``scratch.nn`` and in ``torch.optim`` / ``torch.nn``, with the same keyword
    arguments. Training runs ``iterations`` steps, or ``epochs`` epochs when
    ``iterations`` is None; ``batch_size=None`` is full-batch.
    ``scheduler`` names a class of ``lr_scheduler`` in both twins, stepped every
    epoch (``scheduler_interval="epoch"``) or every step ("step").
    ``augment(x, rng) -> x`` transforms each training batch.
    ``param_groups(model) -> list of dicts`` gives the optimizer parameter groups
    instead of ``model.parameters()`` (e.g. weight decay on the weights only).
    ``tag`` prefixes the metric names ("relu/test_acc") when an experiment
    trains several models; ``label`` names the model in the report.
    """

    scratch_model: Callable
    torch_model: Callable
    optimizer: str = "SGD"
    optimizer_kwargs: dict = field(default_factory=dict)
    loss: str = "CrossEntropyLoss"
    loss_kwargs: dict = field(default_factory=dict)
    batch_size: Optional[int] = 100
    iterations: Optional[int] = None
    epochs: Optional[int] = None
    eval_every: Optional[int] = None  # steps between evaluations; None: at every epoch's end
    param_every: int = 100  # steps between parameter comparisons (lockstep)
    scheduler: Optional[str] = None
    scheduler_kwargs: dict = field(default_factory=dict)
    scheduler_interval: str = "epoch"
    augment: Optional[Callable] = None
    param_groups: Optional[Callable] = None  # model -> the optimizer's parameter groups (default: all parameters)
    classification: bool = True  # accuracy is measured; otherwise only the loss
    eval_train: bool = True  # also evaluate on the whole training set (False: test set only)
    # np.errstate while the unit trains, in whatever process and thread it runs (e.g. over="ignore" where
    # the overflow is the experiment's point): an experiment's own ``with np.errstate`` does not reach a worker
    numpy_errors: Optional[dict] = None
    tag: str = ""
    label: str = ""

    def metric(self, name: str) -> str:
        return f"{self.tag}/{name}" if self.tag else name

    def steps_per_epoch(self, n: int) -> int:
        return 1 if self.batch_size is None else math.ceil(n / self.batch_size)

    def total_steps(self, n: int) -> int:
        if self.iterations is not None:
            return int(self.iterations)
        if self.epochs is None:
            raise ValueError("Recipe: give iterations or epochs")
        return int(self.epochs) * self.steps_per_epoch(n)


@dataclass
class Data:
    """Training and test arrays (NumPy). Inputs are cast to the run's dtype; targets stay as given."""

    x_train: np.ndarray
    t_train: np.ndarray
    x_test: Optional[np.ndarray] = None
    t_test: Optional[np.ndarray] = None

    def astype(self, dtype) -> "Data":
        def cast(a, floating_only=False):
            if a is None or (floating_only and not np.issubdtype(a.dtype, np.floating)):
                return a
            return np.ascontiguousarray(a, dtype=dtype)
        return Data(cast(self.x_train), cast(self.t_train, True), cast(self.x_test), cast(self.t_test, True))


@dataclass
class Shadow:
    """A float64 run beside float32 twins (docs/design.md, "Float32 parity").

    ``twin``: the scratch twin exactly as a float64 lockstep run builds it (the
    same init, dropout and augment streams), ``data``: the float64 data; it takes
    the twins' batches, in the same order, for the first ``steps`` steps.
    ``augment_rng``: its own copy of the augment stream (``recipe.augment``).
    """

    twin: "ScratchTwin"
    data: Data
    steps: int
    augment_rng: Optional[np.random.Generator] = None


# -- the twins -----------------------------------------------------------------
class ScratchTwin:
    """The NumPy twin: model, optimizer and loss from ``scratch``."""

    impl = "scratch"

    def __init__(self, model, recipe: Recipe):
        import scratch.optim as optim

        self.model = model
        params = recipe.param_groups(model) if recipe.param_groups else model.parameters()
        self.optimizer = getattr(optim, recipe.optimizer)(params, **recipe.optimizer_kwargs)
        self.criterion = getattr(snn, recipe.loss)(**recipe.loss_kwargs)
        self.scheduler = None
        if recipe.scheduler:
            self.scheduler = getattr(optim.lr_scheduler, recipe.scheduler)(self.optimizer, **recipe.scheduler_kwargs)

    def step(self, x, t) -> float:
        out = self.model(x)
        loss = self.criterion(out, t)
        self.model.backward(self.criterion.backward())
        self.optimizer.step()
        self.optimizer.zero_grad()
        return float(loss)

    def train(self, mode=True):
        self.model.train(mode)

    def predict(self, x) -> np.ndarray:
        return self.model(x)

    def loss_of(self, out, t) -> float:
        return float(self.criterion(out, t))

    def state_dict(self) -> dict:
        return {k: np.array(v) for k, v in self.model.state_dict().items()}


class TorchTwin:
    """The PyTorch twin: model, ``torch.optim`` optimizer and ``torch.nn`` loss, on ``device``."""

    impl = "torch"

    def __init__(self, model, recipe: Recipe, device="cpu"):
        self.device = torch.device(device)
        if self.device.type == "cuda":
            precision.exact_float32()  # a reference comparison: IEEE float32, no TF32 (torch_ref.precision)
        self.settings = precision.settings(self.device)  # what the report records of its arithmetic
        self.model = model.to(self.device)
        params = recipe.param_groups(self.model) if recipe.param_groups else self.model.parameters()
        self.optimizer = getattr(torch.optim, recipe.optimizer)(params, **recipe.optimizer_kwargs)
        self.criterion = getattr(torch.nn, recipe.loss)(**recipe.loss_kwargs)
        self.scheduler = None
        if recipe.scheduler:
            cls = getattr(torch.optim.lr_scheduler, recipe.scheduler)
            self.scheduler = cls(self.optimizer, **recipe.scheduler_kwargs)

    def _tensor(self, a):
        a = np.ascontiguousarray(a)
        if a.flags.writeable:
            return torch.from_numpy(a).to(self.device)
        # Data a Dask worker keeps read-only for later maps (experiments.packing): torch only reads the
        # batches and evaluation sets it is given, so its warning about non-writable arrays says nothing here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
            return torch.from_numpy(a).to(self.device)

    def step(self, x, t) -> float:
        out = self.model(self._tensor(x))
        loss = self.criterion(out, self._tensor(t))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def train(self, mode=True):
        self.model.train(mode)

    def predict(self, x) -> np.ndarray:
        with torch.no_grad():
            return self.model(self._tensor(x)).cpu().numpy()

    def loss_of(self, out, t) -> float:
        with torch.no_grad():
            return self.criterion(torch.from_numpy(out), torch.from_numpy(np.asarray(t))).item()

    def state_dict(self) -> dict:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}


# -- measuring -------------------------------------------------------------------
EVAL_CHUNK = 2000  # rows per forward pass in evaluation: bounds memory for conv nets


def evaluate(twin, x, t, classification: bool) -> dict:
    """Mean loss (and accuracy) of ``twin`` on the whole of ``x``, in eval mode, chunk by chunk."""
    twin.train(False)
    n = len(x)
    loss_sum, correct = 0.0, 0
    for i in range(0, n, EVAL_CHUNK):
        out = twin.predict(x[i:i + EVAL_CHUNK])
        tb = t[i:i + EVAL_CHUNK]
        # A mean loss over a chunk, weighted by its rows, adds up to the mean over the set.
        loss_sum += twin.loss_of(out, tb) * len(out)
        if classification:
            correct += int(np.sum(out.argmax(axis=1) == tb))
    twin.train(True)
    result = {"loss": loss_sum / n}
    if classification:
        result["acc"] = correct / n
    return result


def param_difference(a: dict, b: dict) -> float:
    """Largest parameter/buffer difference, each scaled by the largest |value| of its tensor."""
    worst = 0.0
    for k, v in a.items():
        if np.issubdtype(np.asarray(v).dtype, np.floating):
            worst = max(worst, compare_arrays(k, v, b[k]).scaled)
    return worst


def relative_difference(a: float, b: float, floor: float = 0.0) -> float:
    """|a - b| / max(|b|, floor); both nan (or the same infinity) is agreement, nan on one side only is inf.

    The lockstep measure (docs/design.md, "Tolerances") takes ``floor`` = 1e-3 x the
    first step's loss, so that a loss trained down to ~0 is not held to 1e-9 of itself.
    """
    if a == b or (np.isnan(a) and np.isnan(b)):
        return 0.0
    if np.isnan(a) or np.isnan(b):
        return float("inf")
    return abs(a - b) / max(abs(b), floor, np.finfo(np.float64).tiny)


FLOOR = 1e-3  # of the first step's loss: the lockstep measure's smallest denominator


def loss_floor(first_loss: float) -> float:
    """The lockstep measure's floor for a run whose first step's loss is ``first_loss`` (0 if not finite)."""
    return FLOOR * abs(first_loss) if np.isfinite(first_loss) else 0.0


@dataclass
class TrainResult:
    """What one training of one or both twins produced."""

    label: str
    tag: str
    mode: str
    seed: int
    steps: int
    final: dict  # impl -> {"train_loss", "train_acc", "test_loss", "test_acc"}
    history: dict  # impl -> {"step": [...], "loss": [...]} (per step)
    evals: dict  # impl -> {"step": [...], "epoch": [...], "train_acc": [...], ...}
    loss_rel_diff: Optional[np.ndarray] = None  # per step (lockstep)
    param_diff: Optional[list] = None  # [(step, diff)] (lockstep)
    time_per_step: dict = field(default_factory=dict)  # impl -> seconds
    models: dict = field(default_factory=dict)  # impl -> trained model (not saved)
    tolerance: Optional[float] = None  # what the loss difference is held to (lockstep, float64)
    control_loss_rel_diff: Optional[np.ndarray] = None  # scratch vs scratch 1 ulp apart (lockstep.train_control)
    # float32 lockstep: the float64 shadow's "steps", "loss" (per step), "err" (impl -> per-step loss error
    # against the shadow) and "param_err" (impl -> [(step, scaled parameter error)])
    shadow: Optional[dict] = None
    initial: dict = field(default_factory=dict)  # impl -> state dict before the first step
    torch_twin: Optional[dict] = None  # the torch twin's device and float32 settings (torch_ref.precision)

    def first_step_above(self, tol, diffs=None):
        """The first step whose relative loss difference exceeds ``tol`` (None if none does)."""
        diffs = self.loss_rel_diff if diffs is None else diffs
        if diffs is None or tol is None:
            return None
        above = np.flatnonzero(np.asarray(diffs) > tol)
        return int(above[0]) + 1 if above.size else None

    @property
    def max_loss_rel_diff(self):
        return None if self.loss_rel_diff is None or not len(self.loss_rel_diff) else float(
            np.max(self.loss_rel_diff))

    @property
    def max_param_diff(self):
        return None if not self.param_diff else float(max(d for _, d in self.param_diff))


# -- the loop ----------------------------------------------------------------------
SHOW_PROGRESS = True  # False in a Dask worker: the client's bar counts units (experiments.distributed)


PROGRESS_LINE_SECONDS = 120  # stderr not a terminal: a plain progress line at most this often


class ProgressLines:
    """tqdm's ``update`` / ``set_postfix`` / ``close`` as a plain line on stderr every ``every`` seconds.

    For a long run whose stderr is a log file (``make reference > log``, nohup): a tqdm bar there is one
    endless line of carriage returns, and no bar at all leaves hours without a sign of life. A run shorter
    than ``every`` (a test, the quick profile's experiments) prints nothing.
    """

    def __init__(self, total: int, desc: str, every: Optional[float] = None):
        self.total, self.desc = total, desc
        self.every = PROGRESS_LINE_SECONDS if every is None else every
        self.n, self.postfix = 0, {}
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            elapsed = now - self.start
            left = elapsed * (self.total - self.n) / self.n
            extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
            print(f"{self.desc}: step {self.n}/{self.total} ({100 * self.n / self.total:.0f}%), "
                  f"{elapsed / 60:.1f} min, about {left / 60:.0f} min left{extra}", file=sys.stderr, flush=True)

    def set_postfix(self, **values) -> None:
        self.postfix = values

    def close(self) -> None:
        pass


def progress_bars(twins, total: int, label: str):
    """One tqdm bar per twin on a terminal; elsewhere (a log file, CI, tests) one ``ProgressLines`` for the
    first twin, quiet unless the run is long; nothing in a Dask worker (the client counts units)."""
    if not SHOW_PROGRESS:
        return []
    if not sys.stderr.isatty():
        return [ProgressLines(total, f"{label or 'train'} [{', '.join(tw.impl for tw in twins)}; "
                                     f"loss of {twins[0].impl}]")]
    return [tqdm(total=total, desc=f"{label or 'train'} [{tw.impl}]", position=i, leave=False,
                 dynamic_ncols=True) for i, tw in enumerate(twins)]


class TwinSteps:
    """One training step of each twin, and of the float64 shadow: one after another, or side by side.

    Side by side (``parallel``, a scratch twin beside a torch twin): the scratch twin steps on a thread
    of its own while the calling thread steps the torch twin and then the shadow; the step ends when
    both have. Both twins spend their time in code that releases the GIL (NumPy's BLAS and loops,
    torch's kernels), so on two free cores a lockstep step takes about the longer twin's time instead
    of the sum. The numbers are the same bits: each twin computes on its own arrays with its own
    generators, with the threads it has either way (torch keeps its intra-op threads in the calling
    thread, where ``torch.set_num_threads`` set them; scratch's parts and OpenBLAS's count are
    process-wide), and everything shared (the batch, the augmentation draw, the logs) happens in the
    calling thread, before or after, in the same order. Each twin's time is its own step's wall time,
    measured in its thread (with the other twin running beside it).
    """

    def __init__(self, twins, recipe: Recipe, shadow_twin=None, parallel: bool = False):
        self.twins, self.recipe, self.shadow_twin = twins, recipe, shadow_twin
        self.pool, self.aside = None, None
        torch_twins = [k for k, tw in enumerate(twins) if isinstance(tw, TorchTwin)]
        if parallel and len(twins) == 2 and len(torch_twins) == 1:
            from concurrent.futures import ThreadPoolExecutor

            self.aside = 1 - torch_twins[0]
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{twins[self.aside].impl}-twin")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def _one(self, twin, batch):
        t0 = time.perf_counter()
        loss = twin.step(*batch)
        if twin.scheduler is not None and self.recipe.scheduler_interval == "step":
            twin.scheduler.step()
        return loss, time.perf_counter() - t0

    def step(self, batches, shadow_batch=None):
        """``([(loss, seconds)] per twin, the shadow's loss or None)`` after one step on ``batches``."""
        if self.pool is None:
            out = [self._one(tw, b) for tw, b in zip(self.twins, batches)]
            return out, None if shadow_batch is None else self._one(self.shadow_twin, shadow_batch)[0]
        from concurrent.futures import wait

        # In a copy of this thread's context: np.errstate is a context variable, and the caller's settings
        # must hold in the other twin's step as in this one's.
        future = self.pool.submit(contextvars.copy_context().run, self._one, self.twins[self.aside],
                                  batches[self.aside])
        try:
            out = {k: self._one(tw, b) for k, (tw, b) in enumerate(zip(self.twins, batches)) if k != self.aside}
            loss64 = None if shadow_batch is None else self._one(self.shadow_twin, shadow_batch)[0]
        finally:
            wait([future])  # never leave the other twin mid-step, whatever happened here
        out[self.aside] = future.result()
        return [out[k] for k in range(len(self.twins))], loss64


# -- the stages of fit ----------------------------------------------------------------
@dataclass
class Batch:
    """One step's input: ``per_twin`` holds each twin's ``(x, t)``; ``indices`` the rows of the training set
    all twins share (lockstep), None where each twin drew its own (independent). ``number``: 1, 2, ...
    within the epoch."""

    number: int
    per_twin: list
    indices: Optional[np.ndarray]


class BatchSource:
    """Each epoch's batches, in the order the twins see them.

    ``orders[i](n) -> permutation``: twin i's batch order for an epoch; one function for all twins in
    lockstep (one call per epoch, so they see the same batches). ``recipe.augment`` is drawn once per
    batch in lockstep (every twin sees the same draw, ``augment_rngs[0]``) and once per twin otherwise.
    """

    def __init__(self, data: Data, recipe: Recipe, orders, augment_rngs, n_twins: int):
        self.data, self.recipe, self.orders, self.augment_rngs = data, recipe, orders, augment_rngs
        self.n_twins = n_twins
        self.shared = len(orders) == 1
        n = len(data.x_train)
        self.n, self.per_epoch = n, recipe.steps_per_epoch(n)
        self.size = n if recipe.batch_size is None else recipe.batch_size

    def epoch(self, steps: int):
        """The next epoch's first ``steps`` batches (at most an epoch's), drawn as they are asked for."""
        twin_orders = [self.orders[0](self.n)] * self.n_twins if self.shared else [o(self.n) for o in self.orders]
        for b in range(min(steps, self.per_epoch)):
            rows = [order[b * self.size:(b + 1) * self.size] for order in twin_orders]
            if self.shared:
                yield Batch(b + 1, [self._draw(rows[0], 0)] * self.n_twins, rows[0])
            else:
                yield Batch(b + 1, [self._draw(r, k) for k, r in enumerate(rows)], None)

    def _draw(self, rows, k):
        x, t = self.data.x_train[rows], self.data.t_train[rows]
        if self.recipe.augment is not None:
            x = self.recipe.augment(x, self.augment_rngs[k])
        return x, t


class TwinDifference:
    """The lockstep measure of two twins (docs/design.md, "Tolerances"): their relative loss difference at
    every step, against a floor set by the first step's loss, and their largest parameter difference
    whenever :meth:`params` is called (once per step at most)."""

    def __init__(self):
        self.floor = 0.0
        self.param_diff = []  # [(step, difference)]

    def loss(self, step: int, losses) -> float:
        if step == 1:
            self.floor = loss_floor(losses[1])
        return relative_difference(*losses, self.floor)

    def params(self, step: int, twins) -> Optional[float]:
        """The parameter difference at ``step``; None when it was measured at this step already."""
        if self.param_diff and self.param_diff[-1][0] == step:
            return None
        d = param_difference(twins[0].state_dict(), twins[1].state_dict())
        self.param_diff.append((step, d))
        return d

    def series(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Every step's loss difference at once, with the floor set at step 1 (as :meth:`loss` logged it)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a == b, 0.0, np.abs(a - b) / np.maximum(np.abs(b),
                                                                    max(self.floor, np.finfo(np.float64).tiny)))


class ShadowRun:
    """The float64 shadow beside float32 twins for its first ``steps`` steps (``Shadow``): its batch at each
    step (the twins' rows, from the float64 data, its own augment draw), its loss, each twin's loss error
    against it and, when asked, each twin's parameter error against it."""

    def __init__(self, shadow: Optional[Shadow], total: int, impls, augment=None):
        self.shadow, self.augment = shadow, augment
        self.steps = 0 if shadow is None else min(int(shadow.steps), total)
        self.twin = shadow.twin if self.steps else None
        self.impls = impls
        self.loss = np.full(self.steps, np.nan)
        self.err = {i: np.full(self.steps, np.nan) for i in impls}
        self.param_err = {i: [] for i in impls}
        self.floor = 0.0

    def batch(self, step: int, indices):
        """The shadow's ``(x, t)`` for ``step`` (the twins' shared rows), or None once it has stopped."""
        if step > self.steps:
            return None
        x, t = self.shadow.data.x_train[indices], self.shadow.data.t_train[indices]
        if self.augment is not None:
            x = self.augment(x, self.shadow.augment_rng)
        return x, t

    def record(self, step: int, epoch: float, loss: float, twins, losses, log, m) -> None:
        self.loss[step - 1] = loss
        log("float64", m("loss"), loss, step, epoch)
        if step == 1:
            self.floor = loss_floor(loss)
        for tw, twin_loss in zip(twins, losses):
            e = relative_difference(twin_loss, loss, self.floor)
            self.err[tw.impl][step - 1] = e
            log(tw.impl, m("loss_err_vs_float64"), e, step, epoch)

    def params(self, step: int, epoch: float, twins, log, m) -> None:
        done = self.param_err[self.impls[0]]
        if not self.steps or step > self.steps or (done and done[-1][0] == step):
            return
        reference = self.twin.state_dict()
        for tw in twins:
            e = param_difference(tw.state_dict(), reference)
            self.param_err[tw.impl].append((step, e))
            log(tw.impl, m("param_err_vs_float64"), e, step, epoch)

    def result(self) -> Optional[dict]:
        if self.shadow is None:
            return None
        return {"steps": self.steps, "loss": self.loss, "err": self.err, "param_err": self.param_err}


class Evaluation:
    """Each twin on the whole training and test sets (``evaluate``), on the recipe's schedule: before the
    first step, every ``recipe.eval_every`` steps (else at the end of every epoch), and after the last.
    ``evals[impl]`` keeps every evaluation, ``final[impl]`` the latest."""

    def __init__(self, twins, data: Data, recipe: Recipe, log):
        self.twins, self.data, self.recipe, self.log = twins, data, recipe, log
        self.evals = {tw.impl: {"step": [], "epoch": []} for tw in twins}
        self.final = {tw.impl: {} for tw in twins}

    def after_step(self, step: int, total: int) -> bool:
        every = self.recipe.eval_every
        return bool(every) and step % every == 0 and step < total

    def after_epoch(self, step: int, total: int) -> bool:
        return not self.recipe.eval_every and step < total

    def run(self, step: int, epoch: float) -> None:
        for tw in self.twins:
            row = {}
            for split, x, t in (("train", self.data.x_train, self.data.t_train),
                                ("test", self.data.x_test, self.data.t_test)):
                if x is None or (split == "train" and not self.recipe.eval_train):
                    continue
                for k, v in evaluate(tw, x, t, self.recipe.classification).items():
                    row[f"{split}_{k}"] = v
            for k, v in row.items():
                self.log(tw.impl, self.recipe.metric(k), v, step, epoch)
                self.evals[tw.impl].setdefault(k, []).append(v)
            self.evals[tw.impl]["step"].append(step)
            self.evals[tw.impl]["epoch"].append(epoch)
            self.final[tw.impl] = row


def fit(twins, data: Data, recipe: Recipe, orders, log, augment_rngs=None, seed: int = 0,
        mode: str = "lockstep", progress: bool = True, shadow: Optional[Shadow] = None,
        parallel: bool = False) -> TrainResult:
    """Train ``twins`` (one or two) on ``data`` following ``recipe``.

    ``orders[i](n) -> permutation`` gives twin i's batch order for each epoch; in
    lockstep all twins share one call per epoch (``orders`` holds one function),
    so they see the same batches. ``log(impl, metric, value, step, epoch)`` records
    a metric. With two twins the loss difference is recorded after every step and
    the parameter difference every ``recipe.param_every`` steps. ``shadow`` (lockstep
    only) runs beside them for its first steps, and each twin's loss and parameter
    errors against it are recorded (``loss_err_vs_float64``, ``param_err_vs_float64``).
    ``parallel``: a scratch twin and a torch twin take each step side by side (``TwinSteps``).
    The stages (``BatchSource``, ``TwinSteps``, ``TwinDifference``, ``ShadowRun``, ``Evaluation``)
    are each tested on their own (tests/test_training_stages.py).
    """
    if shadow is not None and len(orders) != 1:
        raise ValueError("fit: a float64 shadow needs the twins' shared batch order (lockstep)")
    m, impls = recipe.metric, [tw.impl for tw in twins]
    batches = BatchSource(data, recipe, orders, augment_rngs, len(twins))
    total, per_epoch = recipe.total_steps(batches.n), batches.per_epoch
    difference = TwinDifference() if len(twins) == 2 else None
    shadow_run = ShadowRun(shadow, total, impls, recipe.augment)
    evaluation = Evaluation(twins, data, recipe, log)
    losses = {i: np.empty(total) for i in impls}
    spent = {i: 0.0 for i in impls}

    def parameters(step, epoch):  # each twin's against the shadow, and the twins' difference
        shadow_run.params(step, epoch, twins, log, m)
        if difference is not None:
            d = difference.params(step, twins)
            if d is not None:
                log("diff", m("param_diff"), d, step, epoch)

    def evaluate_all(step, epoch):
        evaluation.run(step, epoch)
        parameters(step, epoch)

    # -- start: the twins' initial state, and an evaluation before the first step
    initial = {tw.impl: tw.state_dict() for tw in twins}  # copies: what the twins started from
    bars = progress_bars(twins, total, recipe.label or recipe.tag) if progress else []
    for tw in twins + ([shadow_run.twin] if shadow_run.twin is not None else []):
        tw.train(True)
    evaluate_all(0, 0.0)
    step, epoch = 0, 0
    with TwinSteps(twins, recipe, shadow_run.twin, parallel) as stepper:
        while step < total:
            for batch in batches.epoch(total - step):
                step += 1
                at = epoch + batch.number / per_epoch
                # -- step: every twin (and the shadow, while it runs) on this batch
                shadow_batch = shadow_run.batch(step, batch.indices)
                stepped, loss64 = stepper.step(batch.per_twin, shadow_batch)
                step_losses = [loss for loss, _ in stepped]
                for tw, (loss, seconds) in zip(twins, stepped):
                    spent[tw.impl] += seconds
                    losses[tw.impl][step - 1] = loss
                    log(tw.impl, m("loss"), loss, step, at)
                # -- the lockstep measure: the twins' relative loss difference
                if difference is not None:
                    log("diff", m("loss_rel_diff"), difference.loss(step, step_losses), step, at)
                # -- the float64 shadow: its loss and each twin's error against it
                if shadow_batch is not None:
                    shadow_run.record(step, at, loss64, twins, step_losses, log, m)
                # -- progress
                for tw, loss, bar in zip(twins, step_losses, bars):
                    if step % 50 == 0 or step == total:
                        acc = evaluation.final[tw.impl].get("test_acc", evaluation.final[tw.impl].get("train_acc"))
                        bar.set_postfix(loss=f"{loss:.4f}", acc="-" if acc is None else f"{acc:.4f}")
                    bar.update(1)
                # -- parameters and evaluation, on their schedules
                if step % recipe.param_every == 0:
                    parameters(step, at)
                if evaluation.after_step(step, total):
                    evaluate_all(step, at)
            # -- end of the epoch: the epoch schedulers, the evaluation
            epoch += 1
            for tw in twins + ([shadow_run.twin] if step < shadow_run.steps else []):
                if tw.scheduler is not None and recipe.scheduler_interval == "epoch":
                    tw.scheduler.step()
            if evaluation.after_epoch(step, total):
                evaluate_all(step, float(epoch))
    # -- end: the last evaluation
    evaluate_all(step, epoch - 1 + (((step - 1) % per_epoch) + 1) / per_epoch if step else 0.0)
    for bar in bars:
        bar.close()

    final = evaluation.final
    for i in impls:
        final[i]["last_batch_loss"] = float(losses[i][-1]) if total else float("nan")
    return TrainResult(
        label=recipe.label or recipe.tag or "model", tag=recipe.tag, mode=mode, seed=seed, steps=total,
        final=final, history={i: {"step": np.arange(1, total + 1), "loss": losses[i]} for i in impls},
        evals=evaluation.evals,
        loss_rel_diff=None if difference is None else difference.series(losses[impls[0]], losses[impls[1]]),
        param_diff=None if difference is None else difference.param_diff,
        time_per_step={i: spent[i] / max(total, 1) for i in impls},
        models={tw.impl: getattr(tw, "model", None) for tw in twins}, initial=initial,
        torch_twin=next((tw.settings for tw in twins if isinstance(tw, TorchTwin)), None),
        shadow=shadow_run.result(),
    )
