"""Do the twins differ? The statistics of independent mode on constructed data with known answers."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from experiments.distributed import unit_seed_sequence
from experiments.stats import compare_twins, margin_for, seeds_needed

MARGIN = 0.002  # 0.2 percentage points of accuracy


def accuracies(mean, spread, n, seed):
    return mean + spread * np.random.default_rng(seed).standard_normal(n)


def test_identical_twins_are_equivalent():
    a = accuracies(0.975, 0.0005, 10, 0)
    r = compare_twins(a, a.copy(), MARGIN)
    assert r["verdict"] == "equivalent"
    assert r["diff"] == 0.0
    assert r["ci90"][0] > -MARGIN and r["ci90"][1] < MARGIN
    assert r["seeds_needed"] is None


def test_identical_constant_twins_are_equivalent():
    r = compare_twins([0.97, 0.97, 0.97], [0.97, 0.97, 0.97], MARGIN)
    assert r["verdict"] == "equivalent"
    assert r["ci95"] == pytest.approx((0.0, 0.0), abs=1e-15)  # the variance of equal floats, to round-off


def test_a_shifted_twin_is_different():
    a = accuracies(0.975, 0.0005, 10, 1)
    b = a - 0.01  # one point of accuracy lower, same spread
    r = compare_twins(a, b, MARGIN)
    assert r["verdict"] == "different"
    assert r["ci95"][0] > MARGIN and math.isclose(r["diff"], 0.01, rel_tol=1e-9)


def test_two_noisy_seeds_are_inconclusive_and_say_how_many_would_settle_it():
    a, b = [0.970, 0.978], [0.977, 0.969]
    r = compare_twins(a, b, MARGIN)
    assert r["verdict"] == "inconclusive"
    assert r["ci95"][0] < -MARGIN and r["ci95"][1] > MARGIN  # the interval spans the margin: nothing can be said
    # |difference| 0.001 < margin: seeds to show equivalence by TOST at 5% with 80% power, normal approximation.
    z = 1.6448536269514722 + 1.2815515655446004
    expected = math.ceil(z ** 2 * (np.var(a, ddof=1) + np.var(b, ddof=1)) / (MARGIN - 0.001) ** 2)
    assert r["seeds_needed"] == expected
    assert 500 < expected < 600


def test_one_seed_is_inconclusive():
    r = compare_twins([0.97], [0.97], MARGIN)
    assert r["verdict"] == "inconclusive" and math.isnan(r["std"][0])


def test_welch_interval_is_scipys():
    """The 95% interval is Welch's, as scipy's unequal-variance t-test computes it."""
    a, b = accuracies(0.97, 0.002, 7, 4), accuracies(0.968, 0.004, 12, 5)
    r = compare_twins(a, b, MARGIN)
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert r["ci95"] == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-15)
    ci90 = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.90)
    assert r["ci90"] == pytest.approx((ci90.low, ci90.high), rel=1e-12, abs=1e-15)


def test_a_small_real_difference_inside_the_margin_is_equivalent():
    a = accuracies(0.975, 0.0002, 20, 6)
    r = compare_twins(a, a - 0.0005, MARGIN)
    assert r["verdict"] == "equivalent" and r["ci95"][0] > 0


def test_seeds_needed_grows_with_spread_and_shrinks_with_the_gap():
    assert seeds_needed(0.0, 0.002, 0.002, MARGIN) > seeds_needed(0.0, 0.001, 0.001, MARGIN)
    assert seeds_needed(0.0015, 0.001, 0.001, MARGIN) > seeds_needed(0.0, 0.001, 0.001, MARGIN)
    assert seeds_needed(0.01, 0.003, 0.003, MARGIN) < seeds_needed(0.003, 0.003, 0.003, MARGIN)


def test_margins_by_metric():
    assert margin_for("relu/test_acc", 0.97) == (0.002, "±0.2 points")
    m, _ = margin_for("test_loss", 0.5)
    assert m == pytest.approx(0.01)
    assert margin_for("last_batch_loss", 0.5)[0] is None


@pytest.mark.parametrize("a,b,margin,message", [
    ([[0.9, 0.9]], [0.9, 0.9], MARGIN, "must be 1-D"),
    ([0.9, 0.9], [0.9, 0.9], 0.0, "margin must be positive"),
])
def test_bad_input_is_refused(a, b, margin, message):
    with pytest.raises(ValueError, match=message):
        compare_twins(a, b, margin)


def test_a_units_seed_sequence_depends_on_its_key_only():
    draw = [np.random.default_rng(unit_seed_sequence(7, ("relu", k))).integers(0, 2**62) for k in range(4)]
    again = [np.random.default_rng(unit_seed_sequence(7, ("relu", k))).integers(0, 2**62) for k in reversed(range(4))]
    assert draw == again[::-1]  # order of creation does not matter
    assert len(set(draw)) == 4
    assert unit_seed_sequence(7, "a").spawn_key != unit_seed_sequence(7, "b").spawn_key
    assert unit_seed_sequence(7, "a").entropy == 7
    with pytest.raises(TypeError, match="a unit's key must be"):
        unit_seed_sequence(7, 1.5)
