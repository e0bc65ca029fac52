"""The experiment catalogue: one file per experiment, found automatically.

Every module in this package registers one experiment with ``@experiment``;
``all_experiments()`` imports them all and returns them in catalogue order
(``number``). ``python -m experiments list`` prints the table,
``python -m experiments run NAME`` runs one.

Adding an experiment
--------------------
Create ``experiments/catalogue/<name>.py`` (nothing else to edit)::

    import numpy as np

    from experiments.catalogue import experiment
    from experiments.training import Data, Recipe
    from scratch.models.mine import MyNet          # the NumPy twin
    from torch_ref.models.mine import MyNet as TorchMyNet

    @experiment(
        number=25, name="my_experiment", chapter="6",   # the next free number (`experiments list`)
        shows="One line: what the learner sees in the report.",
        durations={"quick": 15, "full": 300},     # rough seconds on 2 cores, for `list`
        profiles={                                  # ctx.config is the chosen profile's dict
            "tiny": dict(n_train=200, iterations=30),       # the test suite: seconds, no real MNIST
            "quick": dict(n_train=60000, iterations=1000),  # `run all --profile quick`: ~20 s each
            "full": dict(n_train=60000, iterations=10000),  # the book's numbers
        },
    )
    def run(ctx):
        data = Data(x_train, t_train, x_test, t_test)        # NumPy arrays
        recipe = Recipe(
            scratch_model=lambda dtype, rand: MyNet(dtype=dtype, generator=rand.init),
            torch_model=lambda dtype, rand: TorchMyNet(dtype=dtype),
            optimizer="SGD", optimizer_kwargs=dict(lr=0.1),  # same name in scratch.optim and torch.optim
            loss="CrossEntropyLoss", batch_size=100, iterations=ctx.config["iterations"])
        [result, *_] = ctx.train(recipe, data)   # lockstep or independent, as asked on the command line
        ctx.headline(f"test accuracy {result.final['scratch']['test_acc']:.2%}")
        ctx.section("What it shows", "Markdown text for report.md.")
        ctx.savefig(fig, "my_plot", "caption")   # a matplotlib figure -> my_plot.png

``ctx.train`` records the metrics, the side-by-side table, the parity figures,
the timings and the standard plot; the runner writes the report atomically.

What ``ctx`` offers (``experiments.runner.Context``: one pass's settings, a frozen
``RunSpec``, and the ways to record into the run's ``Report``; nothing is set on it):

- ``ctx.config`` (the profile's dict, ``--set`` applied), ``ctx.profile``,
  ``ctx.seed``, ``ctx.seeds`` (independent mode), ``ctx.dtype`` (NumPy),
  ``ctx.mode`` ("lockstep" or "independent"), ``ctx.device`` (torch twin's),
  ``ctx.dir`` (where files go), ``ctx.streams.rng("data")`` (seeded streams:
  init, batches, dropout, augment, data).
- ``ctx.train(recipe, data)``: a list of ``TrainResult`` (one in lockstep, one
  per seed in independent mode); ``result.final[impl]``, ``result.models[impl]``,
  ``result.history``, ``result.evals``. A lockstep run out of tolerance is
  followed by the 1-ulp control (see ``experiments.lockstep.train_control``).
- ``ctx.train_each([recipe, ...], data)``: ``ctx.train`` for several variants at
  once, one list of results per recipe. Every (recipe, seed) is a unit of work
  that ``--workers N`` / ``--scheduler`` run in parallel (README, "Beyond one
  machine"); ``ctx.map(fn, items, keys=)`` does the same for any function
  ``fn(item, rng)``, each unit seeded by its key. Units run in other processes:
  they must not count on side effects in this one (a model builder filling a
  dict of the experiment, say); use what the results carry
  (``result.initial[impl]``: the state dict before the first step).
- ``ctx.log(impl, metric, value, step=, epoch=)``: a row of metrics.csv
  (keep timings out: metrics.csv must be the same on a re-run).
- ``ctx.parity(name, value, tolerance)``: a parity figure of your own (a
  tolerance of None: reported only); the tests hold every figure that has one.
- ``ctx.headline(text)``, ``ctx.section(title, markdown)``,
  ``ctx.savefig(fig, name, caption)`` (returns the file name, to embed as
  ``![...](name.png)`` in a section), ``ctx.keep(key=value)`` (summary.json's
  ``extra``), ``ctx.add_results(results)`` (results trained with ``record=False``
  put into the standard tables after all).

Rules of thumb: the ``tiny`` profile runs in a few seconds on generated data
(``experiments.catalogue._data.mnist(ctx)`` with ``synthetic=True``), ``quick``
in about 20 s (the whole catalogue in 10 minutes on 2 cores), ``full`` gives the
book's numbers. An experiment that trains nothing sets ``trained=False``.
Modules whose name starts with "_" are helpers, not experiments.
"""
import importlib
import pkgutil
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable

PROFILES = ("tiny", "quick", "full")


@dataclass
class Experiment:
    number: int
    name: str
    chapter: str
    shows: str
    durations: dict  # profile -> rough seconds
    profiles: dict  # profile -> config dict
    run: Callable  # run(ctx) -> None
    trained: bool = True  # trains in lockstep (its losses are held to the lockstep tolerance)
    module: str = field(default="", repr=False)


REGISTRY: "dict[str, Experiment]" = {}


def experiment(number: int, name: str, chapter: str, shows: str, durations: dict, profiles: dict,
               trained: bool = True):
    """Register ``run(ctx)`` as experiment ``name`` of the catalogue."""
    missing = [p for p in PROFILES if p not in profiles]
    if missing:
        raise ValueError(f"experiment {name!r}: profiles {missing} are missing (every experiment has {PROFILES})")

    def decorator(run):
        if name in REGISTRY and REGISTRY[name].module != run.__module__:
            raise ValueError(f"experiment {name!r} is registered twice ({REGISTRY[name].module}, {run.__module__})")
        REGISTRY[name] = Experiment(number, name, chapter, shows, dict(durations), dict(profiles), run, trained,
                                    run.__module__)
        return run
    return decorator


_loaded = False
LOAD_ERRORS: "dict[str, str]" = {}  # module -> traceback of an entry that failed to import


def load_all() -> None:
    """Import every entry module. One broken entry is reported (``LOAD_ERRORS``, a warning) and
    leaves the others usable, so that `list` and `run` keep working while it is fixed."""
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        name = f"{__name__}.{info.name}"
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - reported, not hidden
            LOAD_ERRORS[name] = traceback.format_exc()
            warnings.warn(f"experiment module {name} failed to import and is left out:\n{LOAD_ERRORS[name]}",
                          stacklevel=2)
    _loaded = True


def all_experiments() -> list:
    load_all()
    return sorted(REGISTRY.values(), key=lambda e: (e.number, e.name))


def get(name: str) -> Experiment:
    load_all()
    if name not in REGISTRY:
        valid = ", ".join(e.name for e in all_experiments())
        broken = f"; modules that failed to import: {', '.join(LOAD_ERRORS)}" if LOAD_ERRORS else ""
        raise KeyError(f"unknown experiment {name!r}; valid experiments are: {valid} (or 'all'){broken}")
    return REGISTRY[name]
