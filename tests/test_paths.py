"""The switch between scratch's plain and fast paths (docs/design.md, "Two paths through scratch/").

The layers' agreement on both paths is tested by the layer catalogue (tests/test_layers.py), the
optimizers' by tests/test_optim.py, training by tests/test_convnets.py; here: the switch itself.
"""
import copy
import os
import subprocess
import sys

import numpy as np
import pytest

import scratch
import scratch.nn as snn
import scratch.optim
from scratch.nn.parameter import Parameter


@pytest.fixture(autouse=True)
def restore_path():
    before = scratch.is_fast()
    yield
    scratch.set_fast(before)


def test_set_fast_and_the_context_manager():
    scratch.set_fast(True)
    assert scratch.is_fast()
    with scratch.plain():
        assert not scratch.is_fast()
        with scratch.paths.using(fast=True):
            assert scratch.is_fast()
        assert not scratch.is_fast()
    assert scratch.is_fast(), "the setting before the block is restored"
    with pytest.raises(ZeroDivisionError), scratch.plain():
        1 / 0
    assert scratch.is_fast(), "restored after an exception too"
    scratch.set_fast(False)
    assert not scratch.is_fast()
    with pytest.raises(TypeError, match="set_fast expects True or False"):
        scratch.set_fast("no")


def _is_fast_in_a_fresh_process(value):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("SCRATCH_PLAIN", None)
    if value is not None:
        env["SCRATCH_PLAIN"] = value
    return subprocess.run([sys.executable, "-c", "import scratch; print(scratch.is_fast())"], env=env,
                          capture_output=True, text=True)


@pytest.mark.parametrize("value,fast", [(None, True), ("1", False), ("0", True), ("true", False), ("", True)])
def test_environment_variable_read_at_import(value, fast):
    result = _is_fast_in_a_fresh_process(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(fast)


def test_a_bad_environment_value_is_refused_by_name():
    result = _is_fast_in_a_fresh_process("maybe")
    assert result.returncode != 0 and "SCRATCH_PLAIN must be 1" in result.stderr


@pytest.mark.parametrize("make", [lambda: snn.Conv2d(3, 4, 3, padding=1, dtype=np.float64),
                                  lambda: snn.Linear(5, 4, dtype=np.float64), lambda: snn.MaxPool2d(2),
                                  lambda: snn.BatchNorm2d(3, dtype=np.float64), snn.ReLU,
                                  lambda: snn.AvgPool2d(2)], ids=["Conv2d", "Linear", "MaxPool2d", "BatchNorm2d",
                                                                  "ReLU", "AvgPool2d"])
def test_backward_takes_the_path_its_forward_took(make):
    """Switching between a forward and its backward changes nothing: each path keeps its own cache."""
    first = make()
    x = np.random.default_rng(0).standard_normal((2, 5) if isinstance(first, snn.Linear) else (2, 3, 6, 6))
    grads = {}
    for forward_fast in (True, False):
        layer = copy.deepcopy(first)  # the same weights
        with scratch.paths.using(forward_fast):
            out = layer(x)
        g = np.random.default_rng(1).standard_normal(out.shape)
        with scratch.paths.using(not forward_fast):  # the other path is set when backward runs
            grads[forward_fast] = layer.backward(g)
    np.testing.assert_allclose(grads[True], grads[False], rtol=1e-12, atol=1e-12)


def test_adam_single_tensor_rule_equals_the_fused_one():
    """Adam's plain rule and the fast in-place one do the same operations in the same order: the same bits."""
    rng = np.random.default_rng(3)
    start = rng.standard_normal((300, 7))
    params = {}
    for fast in (True, False):
        p = Parameter(start.copy())
        opt = scratch.optim.Adam([p], lr=0.01, amsgrad=True, weight_decay=0.1)
        grads = np.random.default_rng(4)
        with scratch.paths.using(fast):
            for _ in range(50):
                p.grad = grads.standard_normal(p.shape)
                opt.step()
        params[fast] = p.data
    np.testing.assert_array_equal(params[True], params[False])


def test_the_plain_path_never_enters_scratch_fast(monkeypatch):
    """A training step of each CNN on the plain path with every function of scratch.fast made to fail."""
    import inspect

    from scratch import fast
    from scratch.models.convnets import DeepConvNet, SimpleConvNet

    def refuse(*args, **kwargs):
        raise AssertionError("the plain path entered scratch.fast")

    for module in (fast.parallel, fast.linear, fast.conv, fast.pooling, fast.activation, fast.batchnorm, fast.loss,
                   fast.optim, fast.im2col, fast.channels):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__:
                monkeypatch.setattr(module, name, refuse)
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((4, 1, 28, 28)), rng.integers(0, 10, 4)
    for net in (SimpleConvNet(dtype=np.float64, generator=rng), DeepConvNet(dtype=np.float64, generator=rng)):
        opt = scratch.optim.Adam(net.parameters())
        with scratch.plain():
            net.loss(x, t)
            net.loss_backward()
            opt.step()
    with scratch.plain():
        for layer in (snn.BatchNorm2d(1, dtype=np.float64), snn.AvgPool2d(2)):
            layer.backward(np.ones_like(layer(x)))
        loss = snn.CrossEntropyLoss()
        loss(rng.standard_normal((4, 10)), t)  # one-hot targets: the fast path's shortcut, not taken here
        loss.backward()
    with pytest.raises(AssertionError, match="entered scratch.fast"):  # the check itself works
        SimpleConvNet(dtype=np.float64, generator=rng).loss(x, t)
