"""Float32 parity against a float64 shadow (docs/design.md, "Float32 parity")."""
import csv

import numpy as np
import pytest
import torch

import scratch.nn as snn
from experiments import catalogue
from experiments.lockstep import train_lockstep
from experiments.runner import run_experiment
from experiments import shadow
from experiments.shadow import error_ratio_verdict, shadow_steps
from experiments.summary import Summary
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


# -- the median's interval --------------------------------------------------------------------
def ratio_series(median, n=400, seed=0, spread=1.0, phi=0.6):
    """Errors whose ratio scratch / torch is log-normal about ``median``, correlated from step to step
    (AR(1) on the log scale, as a twin knocked off by a discrete event stays off for a while)."""
    rng = np.random.default_rng(seed)
    z = np.empty(n)
    z[0] = rng.normal()
    for i in range(1, n):
        z[i] = phi * z[i - 1] + np.sqrt(1 - phi ** 2) * rng.normal()
    torch_err = np.geomspace(1e-6, 1e-3, n)
    return torch_err * median * np.exp(spread * z), torch_err


@pytest.mark.parametrize("median, expected", [(0.2, "more accurate"), (1.0, "as accurate"),
                                              (5.0, "less accurate"), (2.0, "inconclusive"),
                                              (0.5, "inconclusive")])
def test_the_interval_decides_and_a_median_on_a_boundary_is_inconclusive(median, expected):
    v = error_ratio_verdict(*ratio_series(median))
    assert v["verdict"] == expected, v["text"]
    assert v["ci_low"] <= v["median_ratio"] <= v["ci_high"] and v["resamples"] == shadow.RESAMPLES
    if expected == "inconclusive":
        assert v["ci_low"] < median < v["ci_high"] and v["text"].startswith("inconclusive")
        assert "about" in v["text"] and "steps would settle it" in v["text"] or "median sits" in v["text"]
    else:
        assert v["steps_to_settle"] is None and "interval [" in v["text"]


def test_steps_to_settle_shrinks_the_crossing_side_to_the_boundary():
    # log scale: median 1.6, low end 1.2 is inside, high end 2.5 crosses 2 -> (log(2.5/1.6) / log(2/1.6))^2 = 4.0
    assert shadow.steps_to_settle(1.6, 1.2, 2.5, 100) == 400
    assert shadow.steps_to_settle(2.0, 1.5, 2.5, 100) is None  # on the boundary: no number of steps settles it
    # and it does settle: the same process over that many steps reads as accurate
    v = error_ratio_verdict(*ratio_series(1.45, n=300, seed=4))
    assert v["verdict"] == "inconclusive", v["text"]
    longer = error_ratio_verdict(*ratio_series(1.45, n=3 * v["steps_to_settle"], seed=4))
    assert longer["verdict"] == "as accurate", (v["text"], longer["text"])


def test_the_interval_is_reproducible_and_independent_of_other_random_draws():
    a, b = ratio_series(1.5, seed=2)
    first = error_ratio_verdict(a, b)
    np.random.default_rng().normal(size=100)  # other random draws in between change nothing
    np.random.seed(123)
    again = error_ratio_verdict(a.copy(), b.copy())
    assert (first["ci_low"], first["ci_high"], first["block"]) == (again["ci_low"], again["ci_high"], again["block"])


def test_block_length_follows_the_correlation():
    rng = np.random.default_rng(0)
    assert shadow.block_length(rng.normal(size=1000)) <= 3
    z = np.zeros(1000)
    for i in range(1, 1000):
        z[i] = 0.95 * z[i - 1] + rng.normal()
    assert shadow.block_length(z) >= 15
    assert shadow.block_length(np.ones(50)) == 1


def test_blocks_keep_the_interval_honest_on_correlated_steps():
    # The true median of the log ratio is 0 (ratio 1). Over 60 correlated series the block bootstrap's 95%
    # interval must hold it about 95% of the time; one-step blocks (an i.i.d. bootstrap) are far too narrow.
    covered = {"blocks": 0, "one-step blocks": 0}
    for seed in range(60):
        ratio = np.divide(*ratio_series(1.0, n=300, seed=100 + seed, phi=0.8))
        for name, block in (("blocks", None), ("one-step blocks", 1)):
            low, high, _ = shadow.median_interval(ratio, block=block, resamples=400)
            covered[name] += low <= 1.0 <= high
    assert covered["blocks"] >= 50, covered  # >= 83%
    assert covered["one-step blocks"] < covered["blocks"] - 8, covered


def test_the_cluster_bootstrap_is_the_median_of_the_drawn_groups_joined():
    # Groups of unequal size (a Linear without bias has fewer tensors): each resample's median, read from
    # weights on the sorted values, must be np.median of the drawn groups' values joined, draw for draw.
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(7), [1, 2, 5, 3, 4, 2, 6])
    values = np.exp(rng.normal(size=len(labels)))
    draws = np.random.default_rng(shadow.BOOTSTRAP_SEED).integers(0, 7, size=(500, 7))
    joined = [np.median(np.concatenate([values[labels == g] for g in row])) for row in draws]
    low, high, block = shadow.median_interval(values, clusters=labels * 10 + 1, resamples=500)  # any labels
    tail = (1 - shadow.CONFIDENCE) / 2
    assert (low, high) == tuple(np.quantile(joined, [tail, 1 - tail])) and block is None
    # every value its own group: the ordinary bootstrap, i.e. one-value blocks
    assert shadow.median_interval(values, clusters=np.arange(len(values)))[:2] == \
        shadow.median_interval(values, block=1)[:2]


def test_the_cluster_bootstrap_keeps_the_interval_honest_on_correlated_groups():
    # 20 groups of 5 values that share their group's draw (configurations' tensors): the true median of the
    # log ratio is 0 (ratio 1). Resampling groups holds it about 95% of the time; resampling values one by
    # one (as if the 100 were independent) is far too narrow.
    covered = {"groups": 0, "values": 0}
    labels = np.repeat(np.arange(20), 5)
    for seed in range(60):
        rng = np.random.default_rng([7, seed])
        ratio = np.exp(rng.normal(0, 1, 20)[labels] + rng.normal(0, 0.5, len(labels)))
        for name, kw in (("groups", dict(clusters=labels)), ("values", dict(block=1))):
            low, high, _ = shadow.median_interval(ratio, resamples=400, **kw)
            covered[name] += low <= 1.0 <= high
    assert covered["groups"] >= 50, covered  # >= 83%
    assert covered["values"] < covered["groups"] - 8, covered


def test_the_cluster_bootstrap_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="block or clusters, not both"):
        shadow.median_interval([1.0, 2.0], block=1, clusters=[0, 1])
    with pytest.raises(ValueError, match="one label per value"):
        shadow.median_interval([1.0, 2.0, 3.0], clusters=[0, 1])


def test_a_summary_written_before_intervals_still_reads():
    from experiments.index import parity_cells
    from experiments.summary import Summary

    old = Summary("demo", models=[{"float32_vs_shadow": {"steps": 120, "median_ratio": 1.6, "p90_ratio": 4.0,
                                                         "verdict": "as accurate"}}])
    assert parity_cells(old) == {
        "lockstep parity": "float32 vs float64 shadow: median error ratio scratch / torch 1.6 (median alone: the "
                           "report predates its interval)",
        "tolerance": "0.5 to 2", "parity verdict": "holds (scratch as accurate as torch)"}
    new = Summary("demo", models=[{"float32_vs_shadow": dict(old.models[0]["float32_vs_shadow"], ci_low=1.1,
                                                             ci_high=2.4, verdict="inconclusive")}])
    assert parity_cells(new) == {
        "lockstep parity": "float32 vs float64 shadow: median error ratio scratch / torch 1.6, 95% interval [1.1, 2.4]",
        "tolerance": "0.5 to 2", "parity verdict": "inconclusive"}


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
    verdicts = [m["float32_vs_shadow"] for m in Summary.read(tmp_path / exp.name).models]
    assert all(v and v["verdict"] in ("as accurate", "less accurate", "more accurate", "inconclusive")
               and v["ci_low"] <= v["median_ratio"] <= v["ci_high"] for v in verdicts)
    assert "| float32 vs float64 shadow: median error ratio scratch / torch" in (tmp_path / "README.md").read_text()
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
