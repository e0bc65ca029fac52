"""scratch.transforms (NumPy affine warp) against torchvision.transforms.v2 (torch_ref.transforms).

Nearest sampling is compared with ``experiments.compare.compare_nearest``: every
pixel whose exact source coordinate lies farther than a few ulps from a rounding
tie must be equal; at the ties either neighbour is right (torch itself takes one
side on one CPU and the other on another, docs/design.md "Machine independence"),
so there both twins must give a neighbour's value, and the ties are counted.
"""
import numpy as np
import pytest
import torch
from torch_ref.transforms import torchvision_functional as TF  # v2.functional, interpolation by name on every release

from experiments.compare import compare_nearest, source_coordinates
from scratch import transforms as T
from torch_ref import transforms as TT

# Every whole degree from -180 to 180, multiples of 45 and 90 included (exact ties
# of nearest sampling, rot90 fast paths), angles past a full turn, and random angles.
ANGLES = np.concatenate([np.arange(-180.0, 181.0), [225.0, 270.0, 315.0, 360.0, 405.0, -270.0, -360.0, 721.5],
                         np.random.default_rng(7).uniform(-180, 180, 100)])


def images(rng, n, c=1, h=28, w=28, dtype=np.float32):
    return rng.random((n, c, h, w)).astype(dtype)


def assert_nearest(ours, ref, img, fill=None, **params):
    """ours == ref away from rounding ties; at ties each gives a neighbour. Returns the record."""
    img4 = img if img.ndim == 4 else img[None]
    theta = TT.sampling_matrices(torch.from_numpy(img4), **params)
    ix, iy = source_coordinates(theta, *img4.shape[-2:])
    record = compare_nearest("warp", ours if ours.ndim == 4 else ours[None], ref if ref.ndim == 4 else ref[None],
                             img4, ix, iy, fill=fill)
    print(record)  # the tie count, in the test's captured output
    assert record.ok, str(record)
    return record


def torch_per_image(fn, img, *per_image, **kwargs):
    """torchvision on each image with its own parameters (the reference, loop on purpose)."""
    t = torch.from_numpy(img)
    return torch.stack([fn(t[i], *[p[i] for p in per_image], **kwargs) for i in range(len(t))]).numpy()


@pytest.mark.parametrize("fill", [None, 0, 0.5])
def test_rotate_nearest_equal_to_torchvision(fill):
    rng = np.random.default_rng(0)
    img = images(rng, len(ANGLES))
    ours = T.rotate(img, ANGLES, interpolation="nearest", fill=fill)
    ref = torch_per_image(lambda x, a: TF.rotate(x, float(a), interpolation="nearest", fill=fill), img, ANGLES)
    assert ours.dtype == np.float32
    assert_nearest(ours, ref, img, fill=fill, angle=ANGLES, rotation=True)


@pytest.mark.parametrize("fill", [None, 0, 0.25])
def test_affine_nearest_equal_to_torchvision(fill):
    rng = np.random.default_rng(1)
    n = len(ANGLES)
    img = images(rng, n)
    # whole-pixel shifts (the augmentation) and fractional ones
    shift = np.where(rng.random((n, 1)) < 0.5, rng.integers(-6, 7, (n, 2)), rng.uniform(-6, 6, (n, 2)))
    ours = T.affine(img, ANGLES, shift, interpolation="nearest", fill=fill)
    ref = torch_per_image(
        lambda x, a, s: TF.affine(x, float(a), s.tolist(), 1.0, [0.0, 0.0], interpolation="nearest", fill=fill),
        img, ANGLES, shift)
    assert_nearest(ours, ref, img, fill=fill, angle=ANGLES, translate=shift)


@pytest.mark.parametrize("fill", [None, 0, 0.5])
def test_bilinear_within_1e_5_of_torchvision(fill):
    rng = np.random.default_rng(2)
    n = len(ANGLES)
    img = images(rng, n)
    shift = rng.uniform(-5, 5, (n, 2))
    ours = T.affine(img, ANGLES, shift, interpolation="bilinear", fill=fill)
    ref = torch_per_image(
        lambda x, a, s: TF.affine(x, float(a), s.tolist(), 1.0, [0.0, 0.0], interpolation="bilinear", fill=fill),
        img, ANGLES, shift)
    assert np.abs(ours - ref).max() <= 1e-5
    ours = T.rotate(img, ANGLES, interpolation="bilinear", fill=fill)
    ref = torch_per_image(lambda x, a: TF.rotate(x, float(a), interpolation="bilinear", fill=fill), img, ANGLES)
    assert np.abs(ours - ref).max() <= 1e-5


def test_float64_keeps_dtype_and_matches():
    rng = np.random.default_rng(3)
    angles = rng.uniform(-180, 180, 64)
    shift = rng.uniform(-4, 4, (64, 2))
    img = images(rng, 64, dtype=np.float64)
    for mode, tol in (("bilinear", 1e-12), ("nearest", None)):
        ours = T.affine(img, angles, shift, interpolation=mode, fill=0)
        ref = torch_per_image(
            lambda x, a, s: TF.affine(x, float(a), s.tolist(), 1.0, [0.0, 0.0], interpolation=mode, fill=0),
            img, angles, shift)
        assert ours.dtype == np.float64
        if mode == "nearest":
            assert_nearest(ours, ref, img, fill=0, angle=angles, translate=shift)
        else:
            assert np.abs(ours - ref).max() <= tol


def test_non_square_multichannel_uint8_and_scale_shear():
    rng = np.random.default_rng(4)
    img = (rng.random((12, 3, 20, 31)) * 255).astype(np.uint8)
    angles = np.array([90.0, 270.0, 180.0, 0.0, 45.0, -30.0, 12.5, 135.0, 90.0, -90.0, 3.0, 200.0])
    fill = [10, 20, 30]
    ours = T.rotate(img, angles, interpolation="nearest", fill=fill)
    ref = torch_per_image(lambda x, a: TF.rotate(x, float(a), interpolation="nearest", fill=fill), img, angles)
    assert ours.dtype == np.uint8
    record = assert_nearest(ours, ref, img, fill=fill, angle=angles, rotation=True)
    assert record.ties > 0  # the quarter turns of a 20 x 31 image sample exactly between two pixels
    # bilinear on integers rounds at the end: allow one grey level where a value sits on .5
    ours = T.rotate(img, angles, interpolation="bilinear", fill=fill)
    ref = torch_per_image(lambda x, a: TF.rotate(x, float(a), interpolation="bilinear", fill=fill), img, angles)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1
    # scale, shear and a centre of rotation, one set for the whole batch
    f = img.astype(np.float32) / 255
    ours = T.affine(f, 25.0, (1.5, -2.0), scale=0.8, shear=(10.0, -5.0), interpolation="bilinear", fill=0,
                    center=(9.0, 4.0))
    ref = TF.affine(torch.from_numpy(f), 25.0, [1.5, -2.0], 0.8, [10.0, -5.0], interpolation="bilinear", fill=0,
                    center=[9.0, 4.0]).numpy()
    assert np.abs(ours - ref).max() <= 1e-5


def test_single_image_and_shared_parameters():
    rng = np.random.default_rng(5)
    img = images(rng, 5, c=2)
    one = T.rotate(img[0], 33.0, interpolation="bilinear")
    assert one.shape == (2, 28, 28)
    np.testing.assert_allclose(one, TF.rotate(torch.from_numpy(img[0]), 33.0, interpolation="bilinear").numpy(),
                               atol=1e-5, rtol=0)
    batch = T.rotate(img, 33.0, interpolation="bilinear")  # one angle for all, as torchvision on a batch
    np.testing.assert_array_equal(batch[0], one)
    np.testing.assert_allclose(batch, TT.rotate(torch.from_numpy(img), 33.0, interpolation="bilinear").numpy(),
                               atol=1e-5, rtol=0)


def test_known_answers_without_torch():
    rng = np.random.default_rng(6)
    img = images(rng, 3, h=9, w=9)
    # a quarter turn counter-clockwise is numpy's rot90, also through the general warp (centre given)
    np.testing.assert_array_equal(T.rotate(img, 90.0), np.rot90(img, 1, axes=(-2, -1)))
    np.testing.assert_array_equal(T.rotate(img, 90.0, center=(4.5, 4.5)), np.rot90(img, 1, axes=(-2, -1)))
    np.testing.assert_array_equal(T.rotate(img, -90.0, center=(4.5, 4.5)), np.rot90(img, 3, axes=(-2, -1)))
    # a whole-pixel shift moves the content right by tx and down by ty, zeros come in
    expected = np.zeros_like(img)
    expected[:, :, :-1, 2:] = img[:, :, 1:, :-2]
    np.testing.assert_array_equal(T.affine(img, 0.0, (2, -1), fill=0), expected)
    # bilinear lands on the pixels up to the float32 round-off of the normalised grid
    out = T.affine(img, 0.0, (2, -1), interpolation="bilinear", fill=0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
    # rotate is affine with the opposite angle
    np.testing.assert_array_equal(T.rotate(img, 37.0), T.affine(img, -37.0, (0, 0)))


def test_lockstep_random_twins_draw_the_same():
    rng = np.random.default_rng(8)
    img = images(rng, 32)
    timg = torch.from_numpy(img)
    pairs = [
        (T.RandomRotation(15, generator=np.random.default_rng(11)),
         TT.RandomRotation(15, generator=np.random.default_rng(11)), np.random.default_rng(11)),
        (T.RandomAffine(10, translate=(0.1, 0.1), generator=np.random.default_rng(12)),
         TT.RandomAffine(10, translate=(0.1, 0.1), generator=np.random.default_rng(12)), np.random.default_rng(12)),
        (T.RandomShift(3, generator=np.random.default_rng(13)),
         TT.RandomShift(3, generator=np.random.default_rng(13)), np.random.default_rng(13)),
    ]
    for ours, theirs, replay in pairs:
        for _ in range(3):  # the streams stay in step call after call
            a, b = ours(img), theirs(timg).numpy()
            # the parameters both drew, replayed from a third generator seeded alike
            if isinstance(ours, T.RandomRotation):
                params = dict(angle=replay.uniform(*ours.degrees, size=32), rotation=True)
            elif isinstance(ours, T.RandomAffine):
                params = dict(angle=replay.uniform(*ours.degrees, size=32))
                params["translate"] = np.stack([np.rint(replay.uniform(-2.8, 2.8, size=32)),
                                                np.rint(replay.uniform(-2.8, 2.8, size=32))], 1)
            else:
                params = dict(angle=np.zeros(32), translate=replay.integers(-3, 4, size=(32, 2)))
            assert_nearest(a, b, img, fill=0, **params)
    bil = (T.RandomRotation((-20, 5), interpolation="bilinear", generator=np.random.default_rng(3)),
           TT.RandomRotation((-20, 5), interpolation="bilinear", generator=np.random.default_rng(3)))
    assert np.abs(bil[0](img) - bil[1](timg).numpy()).max() <= 1e-5


def test_random_parameters_ranges_and_independent_torch_stream():
    r = T.RandomAffine((-7, 3), translate=(0.1, 0.2), generator=np.random.default_rng(0))
    angles, shift = r.sample(2000, 28, 20)
    assert angles.min() >= -7 and angles.max() < 3
    assert np.all(shift == np.round(shift))
    assert np.abs(shift[:, 0]).max() == 2 and np.abs(shift[:, 1]).max() == 6  # 0.1 * 20, round(0.2 * 28)
    s = T.RandomShift(2, generator=np.random.default_rng(0)).sample(1000)
    assert set(np.unique(s)) == {-2, -1, 0, 1, 2}
    # independent mode: torch's own RNG, reproducible under torch.manual_seed, not the NumPy stream
    torch.manual_seed(0)
    a = TT.RandomRotation(30).sample(500)
    torch.manual_seed(0)
    b = TT.RandomRotation(30).sample(500)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= -30 and a.max() < 30 and a.std() > 10
    assert not np.allclose(a, T.RandomRotation(30, generator=np.random.default_rng(0)).sample(500))
    g = torch.Generator().manual_seed(5)
    img = torch.rand(4, 1, 28, 28)
    out = TT.RandomShift(2, generator=g)(img)
    assert out.shape == img.shape


def test_clear_errors():
    img = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"\(C, H, W\) or a batch \(N, C, H, W\)"):
        T.rotate(np.zeros((8, 8)), 10.0)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        T.affine(img, 0.0, (0, 0), interpolation="bicubic")
    with pytest.raises(ValueError, match=r"angle must have shape"):
        T.rotate(img, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"translate must have shape"):
        T.affine(img, 0.0, (1, 2, 3))
    with pytest.raises(ValueError, match="fill must be a number or one value per channel"):
        T.rotate(img, 10.0, fill=[1, 2])
    with pytest.raises(ValueError, match="scale must be positive"):
        T.affine(img, 0.0, (0, 0), scale=0.0)
    with pytest.raises(ValueError, match="max_shift"):
        T.RandomShift(-1)
    with pytest.raises(TypeError, match="generator"):
        T.RandomRotation(5, generator=3)(img)
