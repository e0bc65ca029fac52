"""experiments.compare.compare_nearest: exact away from rounding ties, ties counted and explained."""
import numpy as np
import pytest

from experiments.compare import compare_nearest, source_coordinates


def shift_half_pixel():
    """A 1 x 1 x 4 x 5 image read half a pixel to the right: every x coordinate is a tie."""
    img = np.arange(20, dtype=np.float32).reshape(1, 1, 4, 5)
    theta = np.array([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]])
    ix, iy = source_coordinates(theta, 4, 5)
    assert np.all(ix - np.floor(ix) == 0.5) and np.all(iy == np.arange(4)[None, :, None])
    left = img.copy()  # x = j (round down), the rightmost column reads j = 4 + 0.5 -> 4
    right = np.concatenate([img[..., 1:], np.zeros((1, 1, 4, 1), np.float32)], -1)  # x = j + 1, outside -> 0
    return img, ix, iy, left, right


def test_the_two_sides_of_a_tie_are_both_right_and_counted():
    img, ix, iy, left, right = shift_half_pixel()
    record = compare_nearest("half", left, right, img, ix, iy)
    assert record.ok and record.ties == 20 and record.ties_differ == 20 and record.differ == 0
    assert "20 values lie within" in str(record)


def test_a_tie_value_that_is_no_neighbours_is_unexplained():
    img, ix, iy, left, right = shift_half_pixel()
    bad = left.copy()
    bad[0, 0, 2, 1] = 99
    record = compare_nearest("half", bad, right, img, ix, iy)
    assert not record.ok and record.unexplained == 1 and record.where == (0, 0, 2, 1)


def test_away_from_ties_every_value_must_be_equal():
    img = np.arange(20, dtype=np.float32).reshape(1, 1, 4, 5)
    theta = np.array([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])  # one whole pixel: no ties
    ix, iy = source_coordinates(theta, 4, 5)
    ours = np.concatenate([img[..., 1:], np.zeros((1, 1, 4, 1), np.float32)], -1)
    assert compare_nearest("one", ours, ours.copy(), img, ix, iy).ok
    other = ours.copy()
    other[0, 0, 3, 0] += 1
    record = compare_nearest("one", ours, other, img, ix, iy)
    assert not record.ok and record.differ == 1 and record.ties == 0 and record.where == (0, 0, 3, 0)


def test_fill_is_a_neighbour_outside_and_the_band_is_a_few_ulps():
    img, ix, iy, left, right = shift_half_pixel()
    right[..., -1] = 7.0
    assert compare_nearest("fill", left, right, img, ix, iy, fill=7.0).ok
    assert not compare_nearest("fill", left, right, img, ix, iy).ok  # 7 is nobody's value without the fill
    near = ix + 1e-3  # a thousandth of a pixel off the tie is no tie: the right side only
    assert compare_nearest("off", right, right, img, near, iy).ties == 0
    assert not compare_nearest("off", left, right, img, near, iy).ok


def test_shapes_are_checked():
    img, ix, iy, left, right = shift_half_pixel()
    with pytest.raises(ValueError, match=r"ix and iy must have shape \(1, 4, 5\)"):
        compare_nearest("x", left, right, img, ix[:, :2], iy)
    with pytest.raises(ValueError, match="same N and C"):
        compare_nearest("x", left[0], right, img, ix, iy)
