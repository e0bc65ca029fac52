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
import math
import sys
import time
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
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

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

        future = self.pool.submit(self._one, self.twins[self.aside], batches[self.aside])
        try:
            out = {k: self._one(tw, b) for k, (tw, b) in enumerate(zip(self.twins, batches)) if k != self.aside}
            loss64 = None if shadow_batch is None else self._one(self.shadow_twin, shadow_batch)[0]
        finally:
            wait([future])  # never leave the other twin mid-step, whatever happened here
        out[self.aside] = future.result()
        return [out[k] for k in range(len(self.twins))], loss64


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
    """
    n = len(data.x_train)
    total = recipe.total_steps(n)
    per_epoch = recipe.steps_per_epoch(n)
    bs = n if recipe.batch_size is None else recipe.batch_size
    shared = len(orders) == 1
    impls = [tw.impl for tw in twins]
    losses = {i: np.empty(total) for i in impls}
    evals = {i: {"step": [], "epoch": []} for i in impls}
    final = {i: {} for i in impls}
    spent = {i: 0.0 for i in impls}
    param_diff = [] if len(twins) == 2 else None
    m = recipe.metric
    if shadow is not None and not shared:
        raise ValueError("fit: a float64 shadow needs the twins' shared batch order (lockstep)")
    shadow_steps = 0 if shadow is None else min(int(shadow.steps), total)
    shadow_loss = np.full(shadow_steps, np.nan)
    shadow_err = {i: np.full(shadow_steps, np.nan) for i in impls}
    shadow_param = {i: [] for i in impls}
    shadow_floor = 0.0

    def run_evaluation(step, epoch):
        for tw in twins:
            row = {}
            for split, x, t in (("train", data.x_train, data.t_train), ("test", data.x_test, data.t_test)):
                if x is None or (split == "train" and not recipe.eval_train):
                    continue
                for k, v in evaluate(tw, x, t, recipe.classification).items():
                    row[f"{split}_{k}"] = v
            for k, v in row.items():
                log(tw.impl, m(k), v, step, epoch)
                evals[tw.impl].setdefault(k, []).append(v)
            evals[tw.impl]["step"].append(step)
            evals[tw.impl]["epoch"].append(epoch)
            final[tw.impl] = row
        record_param_diff(step, epoch)

    def record_param_diff(step, epoch):
        if shadow_steps and step <= shadow_steps and not (shadow_param[impls[0]] and
                                                          shadow_param[impls[0]][-1][0] == step):
            reference = shadow.twin.state_dict()
            for tw in twins:
                e = param_difference(tw.state_dict(), reference)
                shadow_param[tw.impl].append((step, e))
                log(tw.impl, m("param_err_vs_float64"), e, step, epoch)
        if param_diff is None or (param_diff and param_diff[-1][0] == step):
            return
        d = param_difference(twins[0].state_dict(), twins[1].state_dict())
        param_diff.append((step, d))
        log("diff", m("param_diff"), d, step, epoch)

    def walk_epochs(stepper):
        nonlocal step, floor, epoch, shadow_floor
        while step < total:
            if shared:
                order = orders[0](n)
                twin_orders = [order] * len(twins)
            else:
                twin_orders = [o(n) for o in orders]
            for b in range(per_epoch):
                if step >= total:
                    break
                step += 1
                ep = epoch + (b + 1) / per_epoch
                step_losses = []
                if shared:
                    idx = twin_orders[0][b * bs:(b + 1) * bs]
                    x, t = data.x_train[idx], data.t_train[idx]
                    if recipe.augment is not None:
                        x = recipe.augment(x, augment_rngs[0])  # one draw, seen by every twin
                    batches = [(x, t)] * len(twins)
                else:
                    batches = []
                    for k in range(len(twins)):
                        idx = twin_orders[k][b * bs:(b + 1) * bs]
                        x, t = data.x_train[idx], data.t_train[idx]
                        if recipe.augment is not None:
                            x = recipe.augment(x, augment_rngs[k])
                        batches.append((x, t))
                shadow_batch = None
                if step <= shadow_steps:
                    x64, t64 = shadow.data.x_train[idx], shadow.data.t_train[idx]
                    if recipe.augment is not None:
                        x64 = recipe.augment(x64, shadow.augment_rng)
                    shadow_batch = (x64, t64)
                stepped, loss64 = stepper.step(batches, shadow_batch)
                for k, tw in enumerate(twins):
                    loss, seconds = stepped[k]
                    spent[tw.impl] += seconds
                    losses[tw.impl][step - 1] = loss
                    step_losses.append(loss)
                    log(tw.impl, m("loss"), loss, step, ep)
                if len(twins) == 2:
                    if step == 1:
                        floor = loss_floor(step_losses[1])
                    log("diff", m("loss_rel_diff"), relative_difference(*step_losses, floor), step, ep)
                if shadow_batch is not None:
                    shadow_loss[step - 1] = loss64
                    log("float64", m("loss"), loss64, step, ep)
                    if step == 1:
                        shadow_floor = loss_floor(loss64)
                    for k, tw in enumerate(twins):
                        e = relative_difference(step_losses[k], loss64, shadow_floor)
                        shadow_err[tw.impl][step - 1] = e
                        log(tw.impl, m("loss_err_vs_float64"), e, step, ep)
                for k, bar in enumerate(bars):
                    if step % 50 == 0 or step == total:
                        acc = final[twins[k].impl].get("test_acc", final[twins[k].impl].get("train_acc"))
                        bar.set_postfix(loss=f"{step_losses[k]:.4f}", acc="-" if acc is None else f"{acc:.4f}")
                    bar.update(1)
                if step % recipe.param_every == 0:
                    record_param_diff(step, ep)
                if recipe.eval_every and step % recipe.eval_every == 0 and step < total:
                    run_evaluation(step, ep)
            epoch += 1
            for tw in twins + ([shadow.twin] if step < shadow_steps else []):
                if tw.scheduler is not None and recipe.scheduler_interval == "epoch":
                    tw.scheduler.step()
            if not recipe.eval_every and step < total:
                run_evaluation(step, float(epoch))

    initial = {tw.impl: tw.state_dict() for tw in twins}  # copies: what the twins started from
    bars = progress_bars(twins, total, recipe.label or recipe.tag) if progress else []
    for tw in twins + ([shadow.twin] if shadow_steps else []):
        tw.train(True)
    run_evaluation(0, 0.0)
    step, floor = 0, 0.0
    epoch = 0
    with TwinSteps(twins, recipe, shadow.twin if shadow_steps else None, parallel) as stepper:
        walk_epochs(stepper)
    run_evaluation(step, epoch - 1 + (((step - 1) % per_epoch) + 1) / per_epoch if step else 0.0)
    for bar in bars:
        bar.close()

    loss_rel = None
    if len(twins) == 2:
        a, b = losses[impls[0]], losses[impls[1]]  # floor: set at step 1 from b[0], as logged
        with np.errstate(divide="ignore", invalid="ignore"):
            loss_rel = np.where(a == b, 0.0, np.abs(a - b) / np.maximum(np.abs(b),
                                                                         max(floor, np.finfo(np.float64).tiny)))
    for i in impls:
        final[i]["last_batch_loss"] = float(losses[i][-1]) if total else float("nan")
    return TrainResult(
        label=recipe.label or recipe.tag or "model", tag=recipe.tag, mode=mode, seed=seed, steps=total,
        final=final, history={i: {"step": np.arange(1, total + 1), "loss": losses[i]} for i in impls},
        evals=evals, loss_rel_diff=loss_rel, param_diff=param_diff,
        time_per_step={i: spent[i] / max(total, 1) for i in impls},
        models={tw.impl: getattr(tw, "model", None) for tw in twins}, initial=initial,
        torch_twin=next((tw.settings for tw in twins if isinstance(tw, TorchTwin)), None),
        shadow=None if shadow is None else {"steps": shadow_steps, "loss": shadow_loss, "err": shadow_err,
                                            "param_err": shadow_param},
    )
