"""Float32 parity against a float64 shadow (docs/design.md, "Float32 parity")."""
import csv
import json

import numpy as np
import pytest
import torch

import scratch.nn as snn
from experiments import catalogue
from experiments.lockstep import train_lockstep
from experiments.runner import run_experiment
from experiments.shadow import error_ratio_verdict, shadow_steps
from experiments.training import Data, Recipe
from scratch.models.mlp import MLP
from torch_ref.models.mlp import MLP as TorchMLP


def blobs(n=160, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, n)
    x = rng.normal(0, 0.7, (classes, d))[t] + rng.normal(0, 1, (n, d))
    return Data(x[:120], t[:120], x[120:], t[120:])


def recipe(scratch_model=None, **kw):
    base = dict(scratch_model=scratch_model or (lambda dtype, rand: MLP([6, 32, 3], "relu", dtype=dtype,
                                                                         generator=rand.init)),
                torch_model=lambda dtype, rand: TorchMLP([6, 32, 3], "relu", dtype=dtype),
                optimizer="SGD", optimizer_kwargs=dict(lr=0.1, momentum=0.9), loss="CrossEntropyLoss",
                batch_size=16, epochs=5, param_every=4)
    base.update(kw)
    return Recipe(**base)


# -- the verdict on constructed error series --------------------------------------------------
def test_equal_errors_read_as_accurate():
    e = np.geomspace(1e-7, 1e-4, 50)
    v = error_ratio_verdict(e, e.copy())
    assert v["verdict"] == "as accurate" and v["median_ratio"] == 1.0 and v["steps"] == 50
    assert v["text"].startswith("scratch's float32 is as accurate as PyTorch's")


def test_ten_times_the_error_reads_less_accurate_and_a_tenth_more():
    e = np.geomspace(1e-6, 1e-3, 50)
    assert error_ratio_verdict(10 * e, e)["verdict"] == "less accurate"
    assert error_ratio_verdict(10 * e, e)["median_ratio"] == pytest.approx(10)
    assert error_ratio_verdict(e / 10, e)["verdict"] == "more accurate"
    assert "less accurate than PyTorch's" in error_ratio_verdict(10 * e, e)["text"]


def test_errors_below_float32_resolution_cannot_be_told_apart():
    # 3e-8 against 1e-9: both below eps32 (1.2e-7), the rounding of the loss itself
    assert error_ratio_verdict(np.full(10, 3e-8), np.full(10, 1e-9))["verdict"] == "as accurate"
    nan = float("nan")
    v = error_ratio_verdict([nan, 1e-5, 2e-5], [nan, 1e-5, 2e-5])  # NaN: not measured at that step
    assert v["steps"] == 2
    with pytest.raises(ValueError, match="two 1-D series of one length"):
        error_ratio_verdict([1.0, 2.0], [1.0])


# -- the shadow itself ----------------------------------------------------------------------
def test_shadow_is_the_float64_run_bit_for_bit():
    r32 = train_lockstep(recipe(), blobs(), seed=2, dtype=np.float32)
    r64 = train_lockstep(recipe(), blobs(), seed=2, dtype=np.float64)
    assert r64.shadow is None
    shadow = r32.shadow
    assert shadow["steps"] == r32.steps == 40
    assert shadow["loss"][0] == r64.history["scratch"]["loss"][0]  # the same code path, the same first step
    np.testing.assert_array_equal(shadow["loss"], r64.history["scratch"]["loss"])
    for impl in ("scratch", "torch"):
        loss = r32.history[impl]["loss"]
        expected = np.abs(loss - shadow["loss"]) / np.maximum(np.abs(shadow["loss"]), 1e-3 * shadow["loss"][0])
        np.testing.assert_allclose(shadow["err"][impl], expected, rtol=1e-12, atol=0)
        assert 0 < np.median(shadow["err"][impl]) < 1e-4  # float32 round-off, not a different trajectory
        assert [s for s, _ in shadow["param_err"][impl]][:3] == [0, 4, 8]


def test_shadow_prefix_and_profiles():
    r = train_lockstep(recipe(), blobs(), seed=1, dtype=np.float32, shadow_steps=7)
    assert r.shadow["steps"] == 7 and len(r.shadow["err"]["torch"]) == 7 and r.steps == 40
    assert train_lockstep(recipe(), blobs(), seed=1, dtype=np.float32, shadow_steps=0).shadow is None
    assert shadow_steps("full") == 2000 and shadow_steps("quick") is None and shadow_steps("tiny") is None


class Float16Sum(snn.Linear):
    """A deliberately degraded Linear: in float32 it multiplies and sums in float16."""

    def forward(self, x):
        out = super().forward(x)
        if x.dtype == np.float32:
            low = (x.astype(np.float16) @ self.weight.data.T.astype(np.float16)).astype(np.float32)
            out = low + self.bias.data
        return out


def test_a_degraded_float32_layer_reads_less_accurate():
    def degraded(dtype, rand):
        net = MLP([6, 32, 3], "relu", dtype=dtype, generator=rand.init)
        for i in (0, 2):  # net.layers: Linear, ReLU, Linear (state-dict keys layers.0.*, layers.2.*)
            good = net.layers[i]
            bad = Float16Sum(good.in_features, good.out_features, dtype=dtype)
            bad.load_state_dict(good.state_dict())
            net.layers.add_module(str(i), bad)  # replaces the layer in place
        return net

    healthy = train_lockstep(recipe(), blobs(), seed=3, dtype=np.float32)
    worse = train_lockstep(recipe(degraded), blobs(), seed=3, dtype=np.float32)
    assert error_ratio_verdict(healthy.shadow["err"]["scratch"], healthy.shadow["err"]["torch"])["verdict"] == \
        "as accurate"
    v = error_ratio_verdict(worse.shadow["err"]["scratch"], worse.shadow["err"]["torch"])
    assert v["verdict"] == "less accurate", v["text"]


# -- in a report -------------------------------------------------------------------------------
def test_a_float32_report_carries_the_verdict(tmp_path):
    exp = catalogue.get("two_layer_mnist")
    run_experiment(exp, profile="tiny", dtype="float32", out=tmp_path)
    run_experiment(exp, profile="tiny", dtype="float64", out=tmp_path / "f64")
    summary = json.loads((tmp_path / exp.name / "summary.json").read_text())
    verdicts = [m["float32_vs_shadow"] for m in summary["models"]]
    assert all(v and v["verdict"] in ("as accurate", "less accurate", "more accurate") for v in verdicts)
    assert "float32 vs float64 shadow: scratch" in (tmp_path / "README.md").read_text()
    report = (tmp_path / exp.name / "report.md").read_text()
    assert "float32 error against the float64 shadow" in report and "float64_shadow.png" in report

    def first_loss(path, impl):
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["impl"] == impl and r["step"] == "1"
                    and r["metric"].endswith("loss") and r["metric"].startswith("relu")]
        return float(rows[0]["value"])

    # the shadow's first step is the float64 run's first step
    assert first_loss(tmp_path / exp.name / "metrics.csv", "float64") == first_loss(
        tmp_path / "f64" / exp.name / "metrics.csv", "scratch")
