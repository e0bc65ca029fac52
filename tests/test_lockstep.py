"""The lockstep and independent trainers: streams, batches, parity, dtypes, the 1-ulp control."""
import numpy as np
import pytest
import torch

import scratch.nn as snn
from experiments.lockstep import STREAMS, Streams, train_control, train_independent, train_lockstep
from experiments.threads import threads
from experiments.training import Data, Recipe, fit
from scratch.models.mlp import MLP
from torch_ref.models.mlp import MLP as TorchMLP
from torch_ref.nn import NumpyDropout


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with threads(1):
        yield


def blobs(n=120, d=6, classes=3, seed=0):
    """Three overlapping Gaussian blobs: a small classification set whose loss stays well above 0.

    (A loss near 0 is ill-conditioned for a relative comparison: -log p with p ~ 1 - 1e-7 carries an
    absolute round-off of ~1e-16, so its relative error is ~1e-9 whatever computes it.)
    """
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, n)
    centres = rng.normal(0, 0.7, (classes, d))
    x = centres[t] + rng.normal(0, 1, (n, d))
    return Data(x[: n * 3 // 4], t[: n * 3 // 4], x[n * 3 // 4:], t[n * 3 // 4:])


def mlp_recipe(**kw):
    base = dict(
        scratch_model=lambda dtype, rand: MLP([6, 16, 3], "relu", dtype=dtype, generator=rand.init),
        torch_model=lambda dtype, rand: TorchMLP([6, 16, 3], "relu", dtype=dtype),
        optimizer="SGD", optimizer_kwargs=dict(lr=0.1, momentum=0.9), loss="CrossEntropyLoss",
        batch_size=16, epochs=6, param_every=5)
    base.update(kw)
    return Recipe(**base)


class DropoutNet(snn.Module):
    def __init__(self, dtype, generator, dropout_generator):
        super().__init__()
        self.net = snn.Sequential(snn.Linear(6, 32, dtype=dtype, generator=generator), snn.ReLU(),
                                  snn.Dropout(0.3, generator=dropout_generator),
                                  snn.Linear(32, 3, dtype=dtype, generator=generator))

    def forward(self, x):
        return self.net(x)

    def backward(self, g):
        return self.net.backward(g)


class TorchDropoutNet(torch.nn.Module):
    def __init__(self, dtype, dropout_generator):
        super().__init__()
        drop = NumpyDropout(0.3, generator=dropout_generator) if dropout_generator is not None else \
            torch.nn.Dropout(0.3)
        self.net = torch.nn.Sequential(torch.nn.Linear(6, 32, dtype=dtype), torch.nn.ReLU(), drop,
                                       torch.nn.Linear(32, 3, dtype=dtype))

    def forward(self, x):
        return self.net(x)


# -- streams -------------------------------------------------------------------------
def test_streams_are_reproducible_and_independent():
    a, b = Streams(7), Streams(7)
    for name in STREAMS:
        assert np.array_equal(a.rng(name).random(5), b.rng(name).random(5))
        # Each call is a fresh copy of the same stream: how twins get masks "seeded alike".
        assert np.array_equal(a.rng(name).random(5), a.rng(name).random(5))
    draws = [Streams(7).rng(n).random(4) for n in STREAMS]
    assert len({d.tobytes() for d in draws}) == len(STREAMS)
    assert not np.array_equal(Streams(7).rng("init").random(4), Streams(8).rng("init").random(4))
    with pytest.raises(KeyError, match="streams are init, batches"):
        Streams(0).rng("nope")


# -- the epoch loop ----------------------------------------------------------------------
class RecordingTwin:
    """A twin that records which samples each step saw (x holds the sample index)."""

    impl = "scratch"
    scheduler = None

    def __init__(self):
        self.seen = []

    def step(self, x, t):
        self.seen.append(x[:, 0].astype(int))
        return 0.0

    def train(self, mode=True):
        pass

    def predict(self, x):
        return np.zeros((len(x), 2))

    def loss_of(self, out, t):
        return 0.0

    def state_dict(self):
        return {}


@pytest.mark.parametrize("n,batch", [(100, 10), (103, 10), (7, 7)])
def test_every_epoch_is_a_fresh_permutation(n, batch):
    data = Data(np.arange(n, dtype=np.float64)[:, None], np.zeros(n, dtype=np.int64))
    twin = RecordingTwin()
    recipe = Recipe(scratch_model=None, torch_model=None, batch_size=batch, epochs=4)
    rng = np.random.default_rng(0)
    fit([twin], data, recipe, [rng.permutation], lambda *a: None, progress=False)
    per_epoch = -(-n // batch)
    assert len(twin.seen) == 4 * per_epoch
    epochs = [np.concatenate(twin.seen[e * per_epoch:(e + 1) * per_epoch]) for e in range(4)]
    for e in epochs:
        assert np.array_equal(np.sort(e), np.arange(n))  # every sample once: no sampling with replacement
    if n > 7:
        assert not np.array_equal(epochs[0], epochs[1])


def test_iterations_cross_epoch_boundaries():
    data = Data(np.arange(50, dtype=np.float64)[:, None], np.zeros(50, dtype=np.int64))
    twin = RecordingTwin()
    recipe = Recipe(scratch_model=None, torch_model=None, batch_size=20, iterations=7)  # 3 steps per epoch
    res = fit([twin], data, recipe, [np.random.default_rng(1).permutation], lambda *a: None, progress=False)
    assert res.steps == 7 and len(twin.seen) == 7
    assert [len(s) for s in twin.seen] == [20, 20, 10] * 2 + [20]


# -- lockstep ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lockstep_float64_losses_agree_every_step(seed):
    rows = []
    r = train_lockstep(mlp_recipe(), blobs(seed=seed), seed=seed, log=lambda *a, **k: rows.append((a, k)))
    assert r.steps == 6 * 6
    assert r.max_loss_rel_diff <= 1e-9, r.max_loss_rel_diff
    assert r.max_param_diff <= 1e-10
    assert r.loss_rel_diff.shape == (r.steps,)
    assert np.all(r.history["scratch"]["loss"] > 0)
    assert r.final["scratch"]["test_acc"] == r.final["torch"]["test_acc"]
    # the training did something: the loss fell
    assert r.history["scratch"]["loss"][-5:].mean() < r.history["scratch"]["loss"][:5].mean()
    metrics = {a[1] for a, _ in rows}
    assert {"loss", "loss_rel_diff", "param_diff", "test_acc", "train_acc", "test_loss"} <= metrics


def test_lockstep_shares_dropout_masks():
    recipe = mlp_recipe(
        scratch_model=lambda dtype, rand: DropoutNet(dtype, rand.init, rand.dropout),
        torch_model=lambda dtype, rand: TorchDropoutNet(dtype, rand.dropout))
    r = train_lockstep(recipe, blobs(), seed=3)
    assert r.max_loss_rel_diff <= 1e-9
    # without shared masks the losses would differ at once: check the masks were random at all
    r2 = train_lockstep(recipe, blobs(), seed=4)
    assert r.history["scratch"]["loss"][0] != r2.history["scratch"]["loss"][0]


def test_lockstep_float32_keeps_float32_and_stays_close():
    r = train_lockstep(mlp_recipe(), blobs(), seed=0, dtype=np.float32)
    assert all(p.data.dtype == np.float32 for p in r.models["scratch"].parameters())
    assert all(p.dtype == torch.float32 for p in r.models["torch"].parameters())
    assert r.max_loss_rel_diff < 1e-4  # reported, not a tolerance: float32 drifts slowly


def test_lockstep_is_deterministic():
    a = train_lockstep(mlp_recipe(), blobs(), seed=5)
    b = train_lockstep(mlp_recipe(), blobs(), seed=5)
    assert np.array_equal(a.history["torch"]["loss"], b.history["torch"]["loss"])
    assert np.array_equal(a.history["scratch"]["loss"], b.history["scratch"]["loss"])


def test_full_batch_regression_and_step_scheduler():
    x = np.random.default_rng(0).uniform(-1, 1, (64, 2))
    y = (x[:, :1] * x[:, 1:]) + x[:, :1]
    recipe = Recipe(
        scratch_model=lambda dtype, rand: MLP([2, 8, 1], "tanh", dtype=dtype, generator=rand.init),
        torch_model=lambda dtype, rand: TorchMLP([2, 8, 1], "tanh", dtype=dtype),
        optimizer="Adam", optimizer_kwargs=dict(lr=0.01), loss="MSELoss", batch_size=None, iterations=30,
        eval_every=10, classification=False, scheduler="StepLR", scheduler_kwargs=dict(step_size=10, gamma=0.5),
        scheduler_interval="step")
    r = train_lockstep(recipe, Data(x, y), seed=0)
    assert r.max_loss_rel_diff <= 1e-9
    assert "train_acc" not in r.final["scratch"] and "train_loss" in r.final["scratch"]
    assert r.evals["scratch"]["step"] == [0, 10, 20, 30]


# -- the control and independent mode ---------------------------------------------------------
def test_control_of_a_stable_training_stays_at_round_off():
    diffs = train_control(mlp_recipe(), blobs(), seed=0)
    assert diffs.shape == (36,)
    assert diffs.max() <= 1e-9
    assert diffs.max() > 0  # the perturbation was real


def test_independent_twins_use_their_own_random_numbers():
    a = train_independent(mlp_recipe(epochs=2), blobs(), seed=0)
    b = train_independent(mlp_recipe(epochs=2), blobs(), seed=0)
    c = train_independent(mlp_recipe(epochs=2), blobs(), seed=1)
    assert a.loss_rel_diff is None and a.mode == "independent"
    # reproducible per twin, different between the twins (own init) and between seeds
    for impl in ("scratch", "torch"):
        assert np.array_equal(a.history[impl]["loss"], b.history[impl]["loss"])
        assert not np.array_equal(a.history[impl]["loss"], c.history[impl]["loss"])
    assert a.history["scratch"]["loss"][0] != a.history["torch"]["loss"][0]
    assert set(a.final) == {"scratch", "torch"}


def test_relative_difference_treats_shared_breakdown_as_agreement():
    from experiments.training import relative_difference

    nan, inf = float("nan"), float("inf")
    assert relative_difference(nan, nan) == 0.0  # both twins diverged at the same step
    assert relative_difference(inf, inf) == 0.0
    assert relative_difference(1.0, nan) == inf and relative_difference(nan, 1.0) == inf  # one twin only
    assert relative_difference(2.0, 1.0) == 1.0


def test_lockstep_measure_has_a_floor_of_a_thousandth_of_the_first_loss():
    from experiments.training import FLOOR, relative_difference

    assert FLOOR == 1e-3
    # a loss trained down to 1e-6 of a first loss of 2.3 is held to 1e-9 of 2.3e-3, not of itself
    assert relative_difference(1e-6 + 2.3e-12, 1e-6, floor=2.3e-3) == pytest.approx(1e-9, rel=1e-6)
    assert relative_difference(1e-6 + 2.3e-12, 1e-6) == pytest.approx(2.3e-6, rel=1e-6)
    assert relative_difference(3.0, 2.0, floor=2.3e-3) == 0.5  # above the floor, plain relative difference


def test_recorded_differences_use_the_floor():
    rows = []
    r = train_lockstep(mlp_recipe(), blobs(), seed=2, dtype=np.float32, log=lambda *a, **k: rows.append(a))
    a, b = (np.asarray(r.history[i]["loss"], dtype=np.float64) for i in ("scratch", "torch"))
    expected = np.abs(a - b) / np.maximum(np.abs(b), 1e-3 * abs(b[0]))
    np.testing.assert_allclose(r.loss_rel_diff, expected, rtol=1e-12, atol=0)
    logged = [value for impl, metric, value, *_ in rows if impl == "diff" and metric == "loss_rel_diff"]
    np.testing.assert_allclose(logged, expected, rtol=1e-12, atol=0)


def test_a_long_run_logged_to_a_file_prints_progress_lines(capsys, monkeypatch):
    from experiments import training
    # stderr is not a terminal under pytest: a run longer than the interval prints plain lines, a short one none
    train_lockstep(mlp_recipe(epochs=1), blobs(), seed=0)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(training, "PROGRESS_LINE_SECONDS", 0.0)
    r = train_lockstep(mlp_recipe(epochs=1), blobs(), seed=0)
    lines = capsys.readouterr().err.splitlines()
    steps = len(r.history["scratch"]["step"])
    assert len(lines) == steps and "\r" not in "".join(lines)
    assert lines[-1].startswith("train [scratch, torch; loss of scratch]: step 6/6 (100%), ")
    assert "min left, loss " in lines[-1]
    monkeypatch.setattr(training, "SHOW_PROGRESS", False)  # a Dask worker
    train_lockstep(mlp_recipe(epochs=1), blobs(), seed=0)
    assert capsys.readouterr().err == ""
