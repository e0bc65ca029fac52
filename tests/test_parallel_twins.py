"""The lockstep twins side by side (experiments.training.TwinSteps; docs/paths.md, "The twins side by side").

The parallel step must give the same numbers as the serial one, bit for bit: both are compared in this
process, on this machine, so the equality does not depend on the machine's arithmetic.
"""
import numpy as np
import pytest

from experiments import catalogue
from experiments.lockstep import train_lockstep
from experiments.runner import ConfigError, parallel_twins, run_experiment
from experiments.summary import Summary
from experiments.training import Data, Recipe
from scratch.models.mlp import MLP
from torch_ref.models.mlp import MLP as TorchMLP


def blobs(n=160, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, n)
    x = rng.normal(0, 0.7, (classes, d))[t] + rng.normal(0, 1, (n, d))
    return Data(x[:120], t[:120], x[120:], t[120:])


def recipe(**kw):
    base = dict(scratch_model=lambda dtype, rand: MLP([6, 32, 3], "relu", dtype=dtype, generator=rand.init),
                torch_model=lambda dtype, rand: TorchMLP([6, 32, 3], "relu", dtype=dtype),
                optimizer="SGD", optimizer_kwargs=dict(lr=0.1, momentum=0.9), batch_size=16, epochs=3,
                param_every=4, scheduler="StepLR", scheduler_kwargs=dict(step_size=5, gamma=0.5),
                scheduler_interval="step")
    base.update(kw)
    return Recipe(**base)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_side_by_side_steps_give_the_serial_trajectories(dtype):
    serial = train_lockstep(recipe(), blobs(), seed=4, dtype=dtype)
    parallel = train_lockstep(recipe(), blobs(), seed=4, dtype=dtype, parallel=True)
    for impl in ("scratch", "torch"):
        np.testing.assert_array_equal(parallel.history[impl]["loss"], serial.history[impl]["loss"])
        assert parallel.final[impl] == serial.final[impl]
        for k, v in serial.models[impl].state_dict().items():
            np.testing.assert_array_equal(np.asarray(parallel.models[impl].state_dict()[k]), np.asarray(v))
    if dtype == np.float32:  # the float64 shadow steps beside the scratch twin
        np.testing.assert_array_equal(parallel.shadow["loss"], serial.shadow["loss"])


@pytest.mark.parametrize("mode, dtype", [("lockstep", "float64"), ("lockstep", "float32"),
                                         ("independent", "float64")])
def test_a_tiny_run_writes_the_same_metrics_either_way(tmp_path, mode, dtype):
    exp = catalogue.get("dropout_overfit")  # dropout masks drawn beside each other, in two threads
    a = run_experiment(exp, "tiny", mode=mode, dtype=dtype, seeds=2, out=tmp_path / "serial", twins="serial")
    b = run_experiment(exp, "tiny", mode=mode, dtype=dtype, seeds=2, out=tmp_path / "parallel",
                       twins="parallel")
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    assert Summary.read(b).twins == "parallel"


def test_a_twin_that_raises_stops_the_step_and_the_thread():
    class Boom(RuntimeError):
        pass

    def broken(dtype, rand):
        net = MLP([6, 32, 3], "relu", dtype=dtype, generator=rand.init)
        calls = {"n": 0}
        forward = net.forward

        def failing(x):
            calls["n"] += 1
            if calls["n"] == 5:
                raise Boom("scratch failed at its 5th forward")
            return forward(x)
        net.forward = failing
        return net

    import threading

    before = threading.active_count()
    with pytest.raises(Boom, match="5th forward"):
        train_lockstep(recipe(scratch_model=broken), blobs(), seed=0, parallel=True)
    assert threading.active_count() == before  # the twin's thread ended with the run


def test_twins_choice_and_auto():
    assert parallel_twins("parallel", 1) and not parallel_twins("serial", 1)
    with pytest.raises(ConfigError, match="--twins"):
        parallel_twins("both", 1)
    from scratch.fast.parallel import _cores

    assert parallel_twins("auto", 1) == (_cores() >= 2)
    assert not parallel_twins("auto", _cores())  # 2 x threads cores needed


@pytest.mark.parametrize("parallel", [False, True])
def test_numpy_error_settings_hold_in_the_twins_thread_and_the_unit(parallel):
    """A recipe's numpy_errors apply where the unit trains, and in the scratch twin's own thread when the twins
    step side by side (np.errstate is a context variable: a thread of a pool does not see the caller's)."""
    import warnings

    from experiments.lockstep import TrainUnit, train_unit

    blowing_up = recipe(optimizer_kwargs=dict(lr=1e30), scheduler=None, epochs=2)  # overflows within a few steps
    unit = TrainUnit(blowing_up, "lockstep", 0, "float64", parallel=parallel)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning from NumPy fails the test
        unit.recipe.numpy_errors = dict(over="ignore", invalid="ignore")
        result, _ = train_unit(unit, blobs())
    assert not np.isfinite(result.history["scratch"]["loss"]).all()  # it did overflow, quietly
    unit.recipe.numpy_errors = dict(over="raise", invalid="raise")
    with pytest.raises(FloatingPointError):
        train_unit(unit, blobs())
