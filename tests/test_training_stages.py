"""The stages of experiments.training.fit, each on its own: the batch source, the lockstep measure, the
float64 shadow's bookkeeping and the evaluation schedule; and the run specification and report collector
the runner hands an experiment (experiments.runner)."""
import dataclasses

import numpy as np
import pytest

from experiments import catalogue
from experiments.runner import Context, Report, RunSpec
from experiments.training import (BatchSource, Data, Evaluation, Recipe, Shadow, ShadowRun, TwinDifference,
                                  loss_floor, relative_difference)


def data(n=10):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    return Data(x, np.arange(n), x[:4], np.arange(4))


def recipe(**kw):
    return Recipe(scratch_model=None, torch_model=None, **dict(dict(batch_size=4, epochs=2), **kw))


def reversed_order(n):
    return np.arange(n)[::-1]


# -- the batch source -------------------------------------------------------------------
def test_lockstep_batches_are_one_draw_shared_by_both_twins_with_their_rows():
    calls = []

    def order(n):
        calls.append(n)
        return reversed_order(n)

    source = BatchSource(data(), recipe(), [order], None, n_twins=2)
    batches = list(source.epoch(10))
    assert calls == [10]  # one order per epoch for both twins
    assert [b.number for b in batches] == [1, 2, 3]  # 10 rows in batches of 4: 4, 4, 2
    first = batches[0]
    np.testing.assert_array_equal(first.indices, [9, 8, 7, 6])
    assert first.per_twin[0] is first.per_twin[1]  # the same arrays, not copies alike
    np.testing.assert_array_equal(first.per_twin[0][1], [9, 8, 7, 6])
    assert len(list(source.epoch(2))) == 2  # the last epoch stops where the training does


def test_lockstep_augmentation_is_drawn_once_per_batch():
    draws = []

    def augment(x, rng):
        draws.append(rng)
        return x + 100

    rngs = [object()]
    [batch] = list(BatchSource(data(4), recipe(augment=augment), [reversed_order], rngs, 2).epoch(1))
    assert draws == rngs
    assert batch.per_twin[0][0].min() >= 100


def test_independent_batches_follow_each_twins_order_and_share_no_rows():
    source = BatchSource(data(), recipe(), [reversed_order, lambda n: np.arange(n)], None, n_twins=2)
    first = next(source.epoch(3))
    assert first.indices is None  # nothing shared: a shadow could not follow these batches
    np.testing.assert_array_equal(first.per_twin[0][1], [9, 8, 7, 6])
    np.testing.assert_array_equal(first.per_twin[1][1], [0, 1, 2, 3])


# -- the lockstep measure ---------------------------------------------------------------
class Weights:
    def __init__(self, w, impl="scratch"):
        self.w, self.impl = np.asarray(w, dtype=np.float64), impl

    def state_dict(self):
        return {"w": self.w}


def test_the_floor_is_set_by_the_first_steps_loss_of_the_second_twin():
    d = TwinDifference()
    assert d.loss(1, [2.0, 2.0 * (1 + 1e-12)]) == pytest.approx(1e-12, rel=1e-3)
    assert d.floor == loss_floor(2.0 * (1 + 1e-12))
    # a loss trained to 1e-6 is held against the floor (2e-3), not against itself
    assert d.loss(2, [1e-6 + 2e-12, 1e-6]) == pytest.approx(1e-9, rel=1e-3)
    series = d.series(np.array([2.0, 1e-6 + 2e-12]), np.array([2.0, 1e-6]))
    assert series[0] == 0.0 and series[1] == pytest.approx(relative_difference(1e-6 + 2e-12, 1e-6, d.floor))


def test_the_parameter_difference_is_measured_once_per_step():
    d = TwinDifference()
    twins = [Weights([1.0, 2.0]), Weights([1.0, 2.5])]
    assert d.params(4, twins) == pytest.approx(0.2)  # 0.5 / max |2.5|
    assert d.params(4, twins) is None  # the schedule and the evaluation can both ask at one step
    assert d.params(8, twins) == pytest.approx(0.2)
    assert [s for s, _ in d.param_diff] == [4, 8]


# -- the float64 shadow's bookkeeping ---------------------------------------------------
def test_the_shadow_takes_the_shared_rows_and_stops_after_its_steps():
    shadow = Shadow(twin=Weights([1.0]), data=data(), steps=2)
    run = ShadowRun(shadow, total=5, impls=["scratch", "torch"])
    x, t = run.batch(1, np.array([3, 1]))
    np.testing.assert_array_equal(t, [3, 1])
    assert run.batch(3, np.array([3, 1])) is None
    logged = []
    run.record(1, 0.5, 2.0, [Weights([0]), Weights([0], "torch")], [2.0, 2.002], lambda *a: logged.append(a),
               lambda k: k)
    assert run.err["scratch"][0] == 0.0 and run.err["torch"][0] == pytest.approx(1e-3)
    assert [row[:2] for row in logged] == [("float64", "loss"), ("scratch", "loss_err_vs_float64"),
                                           ("torch", "loss_err_vs_float64")]
    assert ShadowRun(None, 5, ["scratch"]).result() is None and ShadowRun(None, 5, ["scratch"]).batch(1, None) is None


# -- the evaluation schedule --------------------------------------------------------------
@pytest.mark.parametrize("every, expected", [(None, ([], [1, 2])), (2, ([2], []))])
def test_evaluation_every_n_steps_or_else_every_epoch(every, expected):
    e = Evaluation([], data(), recipe(eval_every=every), log=None)
    after_step = [s for s in range(1, 4) if e.after_step(s, total=3)]
    after_epoch = [s for s in range(1, 4) if e.after_epoch(s, total=3)]
    assert (after_step, after_epoch) == expected  # never at the last step: the final evaluation follows it


# -- the run specification and the report collector ---------------------------------------
def spec(tmp_path, **kw):
    base = dict(experiment=catalogue.get("forward_3layer"), profile="tiny", config={"batch": 5}, seed=0,
                seeds=(0, 1), dtype=np.dtype("float64"), mode="both", device="cpu", dir=tmp_path, engine=None)
    return RunSpec(**dict(base, **kw))


def test_a_run_spec_is_frozen_and_both_modes_are_two_passes(tmp_path):
    s = spec(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mode = "lockstep"
    assert [(p.mode, p.prefix) for p in s.passes()] == [("lockstep", "lockstep_"), ("independent", "independent_")]
    assert spec(tmp_path, mode="lockstep").passes() == [spec(tmp_path, mode="lockstep")]


def test_nothing_is_set_on_a_context_and_the_headline_is_the_lockstep_passes(tmp_path):
    lockstep, independent = spec(tmp_path).passes()
    report = Report("forward_3layer")
    ctx = Context(independent, report)
    with pytest.raises(AttributeError, match="cannot be set"):
        ctx.mode = "lockstep"
    ctx.headline("independent's")
    Context(lockstep, report).headline("lockstep's")
    ctx.headline("independent's again")  # the order the passes ran in does not matter
    assert report.headline_text == "lockstep's"
    ctx.keep(a=1)
    report.extra["a"] = 2  # a copy: the collector is changed only through its methods
    assert report.extra == {"a": 1}
