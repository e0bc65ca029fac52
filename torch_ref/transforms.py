"""The PyTorch twin of ``scratch.transforms``: rotation and shift with torchvision.transforms.v2.

The functional forms call ``torchvision.transforms.v2.functional.rotate`` /
``affine`` (one call per image when each image has its own parameters, since
torchvision takes one parameter set per call).

The random classes draw their parameters in one of two ways:

- lockstep: ``generator`` is a ``numpy.random.Generator`` seeded like the NumPy
  twin's; the draws are the very calls ``scratch.transforms`` makes, in the same
  order, so both twins see the same angles and shifts;
- independent: ``generator`` is None (torch's default RNG, ``torch.manual_seed``)
  or a ``torch.Generator``; the draws are torch's own.
"""
import functools
import numbers
import types

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF


def interpolation_mode(interpolation):
    """The ``InterpolationMode`` named by ``interpolation`` ("nearest", "bilinear", ...).

    An ``InterpolationMode`` or a Pillow integer constant passes through unchanged. torchvision 0.24's
    ``rotate``/``affine`` accept only those two (the oldest release pyproject.toml admits); later releases
    also take the name, converting it exactly so.
    """
    if not isinstance(interpolation, str):
        return interpolation
    try:
        return InterpolationMode(interpolation)
    except ValueError:
        raise ValueError(f"interpolation must be one of {[m.value for m in InterpolationMode]}, "
                         f"got {interpolation!r}") from None


def _named_interpolation(fn):
    """torchvision's ``fn`` itself, with ``interpolation`` also given by name on every torchvision release."""
    @functools.wraps(fn)
    def call(*args, interpolation=InterpolationMode.NEAREST, **kwargs):
        return fn(*args, interpolation=interpolation_mode(interpolation), **kwargs)
    return call


# ``v2.functional.rotate`` / ``affine`` unchanged but for the name conversion: the tests' direct reference.
torchvision_functional = types.SimpleNamespace(rotate=_named_interpolation(TF.rotate),
                                               affine=_named_interpolation(TF.affine))


def _per_image(value, n: int, width: int = 0):
    """A list of n parameter values (each a float, or a list of `width` floats)."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == (1 if width else 0):
        v = np.broadcast_to(v, (n,) + v.shape)
    if v.shape[0] != n:
        raise ValueError(f"expected one parameter set per image ({n}), got shape {v.shape}")
    return v.tolist()


def _apply(fn, img: torch.Tensor, n_params: int, per_image_args):
    """Call fn on each image with its own parameters, or once when they are shared."""
    if img.ndim == 3:
        return fn(img, *[args[0] for args in per_image_args])
    if img.ndim != 4:
        raise ValueError(f"expected an image of shape (C, H, W) or a batch (N, C, H, W), got {tuple(img.shape)}")
    shared = all(all(a == args[0] for a in args) for args in per_image_args)
    if shared:
        return fn(img, *[args[0] for args in per_image_args])
    return torch.stack([fn(img[i], *[args[i] for args in per_image_args]) for i in range(n_params)])


def affine(img: torch.Tensor, angle, translate, scale=1.0, shear=(0.0, 0.0), interpolation="nearest",
           fill=None, center=None) -> torch.Tensor:
    """``v2.functional.affine`` with a number or one value per image for each parameter."""
    n = img.shape[0] if img.ndim == 4 else 1
    if isinstance(shear, numbers.Number):
        shear = (shear, 0.0)
    interpolation = interpolation_mode(interpolation)

    def one(x, a, t, s, sh):
        return TF.affine(x, angle=a, translate=t, scale=s, shear=sh, interpolation=interpolation,
                         fill=fill, center=center)

    args = [_per_image(angle, n), _per_image(translate, n, 2), _per_image(scale, n), _per_image(shear, n, 2)]
    return _apply(one, img, n, args)


def rotate(img: torch.Tensor, angle, interpolation="nearest", center=None, fill=None) -> torch.Tensor:
    """``v2.functional.rotate`` (counter-clockwise degrees) with one angle or one per image."""
    n = img.shape[0] if img.ndim == 4 else 1
    interpolation = interpolation_mode(interpolation)

    def one(x, a):
        return TF.rotate(x, angle=a, interpolation=interpolation, center=center, fill=fill)

    return _apply(one, img, n, [_per_image(angle, n)])


def _inverse_affine_matrix():
    """torchvision's own ``_get_inverse_affine_matrix`` (private: looked up where each release keeps it)."""
    from torchvision.transforms.v2.functional import _geometry

    found = getattr(_geometry, "_get_inverse_affine_matrix", None)
    if found is None:
        from torchvision.transforms.functional import _get_inverse_affine_matrix as found
    return found


def sampling_matrices(img: torch.Tensor, angle, translate=(0.0, 0.0), scale=1.0, shear=(0.0, 0.0), center=None,
                      rotation: bool = False) -> np.ndarray:
    """The ``(N, 2, 3)`` inverse matrices torchvision's grid sampler receives, one per image.

    Computed by torchvision's own ``_get_inverse_affine_matrix`` with the arguments
    :func:`affine` (or, with ``rotation``, :func:`rotate`) passes it, and rounded to
    the sampler's dtype (the image's, float32 for integer images) as torchvision
    rounds ``theta``; returned as float64. With them,
    ``experiments.compare.source_coordinates`` gives each pixel's exact source.
    """
    n = _count(img)
    height, width = img.shape[-2:]
    dtype = img.dtype if img.is_floating_point() else torch.float32
    if isinstance(shear, numbers.Number):
        shear = (shear, 0.0)
    center_f = [0.0, 0.0] if center is None else [c - s * 0.5 for c, s in zip(center, [width, height])]
    inverse = _inverse_affine_matrix()
    mats = []
    for a, t, s, sh in zip(_per_image(angle, n), _per_image(translate, n, 2), _per_image(scale, n),
                           _per_image(shear, n, 2)):
        m = inverse(center_f, -(a % 360), [0.0, 0.0], 1.0, [0.0, 0.0]) if rotation else inverse(center_f, a, t, s, sh)
        mats.append(torch.tensor(m, dtype=dtype).reshape(2, 3).double().numpy())
    return np.stack(mats)


def _degrees_range(degrees):
    if isinstance(degrees, numbers.Number):
        if degrees < 0:
            raise ValueError("If degrees is a single number, it must be positive.")
        return -float(degrees), float(degrees)
    if len(degrees) != 2:
        raise ValueError("If degrees is a sequence, it must be of len 2.")
    return float(degrees[0]), float(degrees[1])


class _Random:
    """Draws uniform numbers from a NumPy generator (lockstep) or torch's RNG (independent)."""

    def __init__(self, generator):
        if generator is not None and not isinstance(generator, (np.random.Generator, torch.Generator)):
            raise TypeError(
                f"generator must be a numpy.random.Generator, a torch.Generator or None, got {type(generator).__name__}"
            )
        self.generator = generator

    def uniform(self, lo: float, hi: float, n: int) -> np.ndarray:
        if isinstance(self.generator, np.random.Generator):
            return self.generator.uniform(lo, hi, size=n)
        return torch.empty(n, dtype=torch.float64).uniform_(lo, hi, generator=self.generator).numpy()

    def integers(self, lo: int, hi: int, shape) -> np.ndarray:
        """Integers in [lo, hi)."""
        if isinstance(self.generator, np.random.Generator):
            return self.generator.integers(lo, hi, size=shape)
        return torch.randint(lo, hi, shape, generator=self.generator).numpy()


def _count(img: torch.Tensor) -> int:
    return img.shape[0] if img.ndim == 4 else 1


class RandomRotation(_Random):
    """``v2.RandomRotation`` with one angle per image: ``angle ~ U(lo, hi)`` degrees.

    Lockstep (``generator`` a ``numpy.random.Generator``): ``generator.uniform(lo, hi, size=N)``,
    the draw ``scratch.transforms.RandomRotation`` makes. Independent: torch's RNG.
    """

    def __init__(self, degrees, interpolation="nearest", fill=0, center=None, generator=None):
        super().__init__(generator)
        self.degrees = _degrees_range(degrees)
        self.interpolation, self.fill, self.center = interpolation, fill, center

    def sample(self, n: int) -> np.ndarray:
        return self.uniform(self.degrees[0], self.degrees[1], n)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return rotate(img, self.sample(_count(img)), self.interpolation, self.center, self.fill)


class RandomAffine(_Random):
    """``v2.RandomAffine(degrees, translate)`` with one parameter set per image.

    Draws, in this order: ``angles ~ U(lo, hi)`` (N), ``tx = round(U(-a W, a W))`` (N),
    ``ty = round(U(-b H, b H))`` (N), rounding half to even as torchvision's ``round``.
    """

    def __init__(self, degrees, translate=None, interpolation="nearest", fill=0, center=None, generator=None):
        super().__init__(generator)
        self.degrees = _degrees_range(degrees)
        if translate is not None:
            if len(translate) != 2:
                raise ValueError("translate should be a sequence of length 2.")
            if not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError("translation values should be between 0 and 1")
        self.translate = translate
        self.interpolation, self.fill, self.center = interpolation, fill, center

    def sample(self, n: int, height: int, width: int):
        angles = self.uniform(self.degrees[0], self.degrees[1], n)
        shift = np.zeros((n, 2))
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * width, self.translate[1] * height
            shift[:, 0] = np.rint(self.uniform(-max_dx, max_dx, n))
            shift[:, 1] = np.rint(self.uniform(-max_dy, max_dy, n))
        return angles, shift

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        angles, shift = self.sample(_count(img), img.shape[-2], img.shape[-1])
        return affine(img, angles, shift, interpolation=self.interpolation, fill=self.fill, center=self.center)


class RandomShift(_Random):
    """Whole-pixel shift ``(tx, ty)`` uniform in ``{-max_shift, ..., max_shift}``, one per image.

    Lockstep: ``generator.integers(-max_shift, max_shift + 1, size=(N, 2))``; independent: ``torch.randint``.
    """

    def __init__(self, max_shift: int, fill=0, generator=None):
        super().__init__(generator)
        if not isinstance(max_shift, numbers.Integral) or max_shift < 0:
            raise ValueError(f"RandomShift: max_shift must be an integer >= 0, got {max_shift!r}")
        self.max_shift, self.fill = int(max_shift), fill

    def sample(self, n: int) -> np.ndarray:
        return self.integers(-self.max_shift, self.max_shift + 1, (n, 2))

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return affine(img, 0.0, self.sample(_count(img)), fill=self.fill)
