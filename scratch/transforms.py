r"""Data augmentation of chapter 8: random rotation and shift by an affine warp.

The conventions are torchvision's (``torchvision.transforms.v2.functional``),
so that the NumPy twin and the PyTorch twin produce the same image from the
same parameters:

- Pixel ``(i, j)`` (row, column) has its centre at ``x = j - (W - 1) / 2``,
  ``y = i - (H - 1) / 2``: the warp turns about the image centre
  ``((W - 1) * 0.5, (H - 1) * 0.5)`` in index coordinates, with y pointing down.
- Each output pixel is *pulled* from the input through the inverse matrix
  (torchvision's ``_get_inverse_affine_matrix``). For the forward map
  ``M = T * C * R(angle) * S(scale) * Shear * C^-1`` the output is
  ``out(p) = img(M^-1 p)``.
- ``affine(angle)`` turns clockwise on screen (torchvision's ``affine``), ``rotate(angle)``
  counter-clockwise (torchvision's ``rotate``): ``rotate(img, a)`` is ``affine(img, -a, (0, 0))``.
  ``translate = (tx, ty)`` moves the content right by ``tx`` and down by ``ty`` pixels.
- Sampling is ``grid_sample(align_corners=False, padding_mode="zeros")``: nearest rounds half to
  even; bilinear weighs the four neighbours, reading zeros outside.
- ``fill=None`` leaves those zeros. A number (or one per channel) blends it in the
  way torchvision does, through the sampled in-bounds mask ``m``:
  ``out = (sample - fill) * m + fill`` (bilinear), ``out = fill where m < 0.5`` (nearest).

The grid is computed in the image's floating dtype (float32 for integer images)
with the same steps as torchvision's ``_affine_grid`` + ``grid_sample``, so that
nearest sampling rounds on the same side, exact rounding ties aside (see
:func:`_source_coordinates`). Images are ``(C, H, W)`` or
``(N, C, H, W)``; the parameters are one value for all images or one per image
(shape ``(N,)``, translate ``(N, 2)``), and the warp is vectorised over the batch.
"""
import numbers

import numpy as np

from scratch.random import resolve

_MODES = ("nearest", "bilinear")


# --------------------------------------------------------------------------- the warp


def _inverse_matrices(angle, translate, scale, shear, center) -> np.ndarray:
    """(N, 2, 3) float64 inverse affine matrices, term for term torchvision's formula."""
    rot = np.radians(angle)
    sx, sy = np.radians(shear[:, 0]), np.radians(shear[:, 1])
    cx, cy = center
    tx, ty = translate[:, 0], translate[:, 1]
    cos_sy, tan_sx = np.cos(sy), np.tan(sx)
    a = np.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + np.sin(rot))
    c = np.sin(rot - sy) / cos_sy
    d = np.cos(rot) - c * tan_sx
    # rotation-scale-shear inverted (its determinant is 1), then the centre and translation undone
    m0, m1, m3, m4 = d / scale, -b / scale, -c / scale, a / scale
    m2 = 0.0 + (cx - m0 * (cx + tx) - m1 * (cy + ty))
    m5 = 0.0 + (cy - m3 * (cx + tx) - m4 * (cy + ty))
    return np.stack([np.stack([m0, m1, m2], -1), np.stack([m3, m4, m5], -1)], -2)


def _source_coordinates(matrices: np.ndarray, height: int, width: int, dtype):
    """Input pixel coordinates (ix, iy), each (N, H, W), that every output pixel reads.

    torchvision normalises the grid to [-1, 1] (``_affine_grid``) and ``grid_sample``
    maps it back: ``ix = (g + 1) * W / 2 - 0.5``, with ``g = x * a + y * b + c``.
    The same steps in the same dtype round alike, so nearest sampling picks the
    same pixel except where the exact coordinate lies within a few ulps of a
    rounding tie (``k + 1/2``): there the side depends on how the machine rounds
    ``g``. torch computes it as a BLAS product, with fused multiply-adds on one
    CPU and separate roundings on another (docs/design.md, "Machine
    independence"), so no one formula matches torch on every machine. We round
    each operation once, as NumPy does everywhere, and the tests count the ties.
    """
    theta = matrices.astype(dtype)  # (N, 2, 3)
    half = np.array([0.5 * width, 0.5 * height], dtype=dtype)
    rescaled = theta.transpose(0, 2, 1) / half  # (N, 3, 2)
    xs = np.arange(width, dtype=dtype) - dtype.type((width - 1) * 0.5)
    ys = np.arange(height, dtype=dtype) - dtype.type((height - 1) * 0.5)
    coords = []
    for k, size in ((0, width), (1, height)):
        a = rescaled[:, 0, k, None, None]
        b = rescaled[:, 1, k, None, None]
        c = rescaled[:, 2, k, None, None]
        g = (xs[None, :] * a + ys[:, None] * b) + c
        coords.append((g + dtype.type(1)) * dtype.type(size / 2) - dtype.type(0.5))
    return coords


def _gather(flat: np.ndarray, iy: np.ndarray, ix: np.ndarray, width: int) -> np.ndarray:
    """flat (N, C, H*W) read at integer (iy, ix), each (N, H', W') -> (N, C, H'*W')."""
    index = (iy * width + ix).reshape(iy.shape[0], 1, -1)
    return np.take_along_axis(flat, index, axis=2)


def _warp(img: np.ndarray, matrices: np.ndarray, interpolation: str, fill) -> np.ndarray:
    """Pull every output pixel of img (N, C, H, W) through its image's inverse matrix."""
    n, c, h, w = img.shape
    work = img.dtype if np.issubdtype(img.dtype, np.floating) else np.dtype(np.float32)
    flat = img.reshape(n, c, h * w).astype(work, copy=False)
    ix, iy = _source_coordinates(matrices, h, w, work)
    one = work.type(1)
    if interpolation == "nearest":
        x0, y0 = np.rint(ix), np.rint(iy)  # half to even, as grid_sample
        inside = (x0 >= 0) & (x0 <= w - 1) & (y0 >= 0) & (y0 <= h - 1)
        xi = np.where(inside, x0, 0).astype(np.intp)
        yi = np.where(inside, y0, 0).astype(np.intp)
        mask = inside.reshape(n, 1, h * w)
        out = np.where(mask, _gather(flat, yi, xi, w), work.type(0))
        if fill is not None:
            out = np.where(mask, out, fill)
    else:
        x0, y0 = np.floor(ix), np.floor(iy)
        wx1, wy1 = ix - x0, iy - y0
        wx0, wy0 = one - wx1, one - wy1
        out = np.zeros((n, c, h * w), dtype=work)
        mask = np.zeros((n, 1, h * w), dtype=work)
        for dx, dy, weight in ((0, 0, wx0 * wy0), (1, 0, wx1 * wy0), (0, 1, wx0 * wy1), (1, 1, wx1 * wy1)):
            xc, yc = x0 + dx, y0 + dy
            inside = (xc >= 0) & (xc <= w - 1) & (yc >= 0) & (yc <= h - 1)
            weight = np.where(inside, weight, work.type(0)).reshape(n, 1, h * w)
            xi = np.where(inside, xc, 0).astype(np.intp)
            yi = np.where(inside, yc, 0).astype(np.intp)
            out += weight * _gather(flat, yi, xi, w)
            mask += weight
        if fill is not None:
            out = (out - fill) * mask + fill
    out = out.reshape(n, c, h, w)
    if work != img.dtype:  # integer images: round half to even and cast back, as torchvision
        out = np.rint(out).astype(img.dtype)
    return out


# --------------------------------------------------------------------------- argument checks


def _check_image(name: str, img) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim not in (3, 4):
        raise ValueError(f"{name}: expected an image of shape (C, H, W) or a batch (N, C, H, W), got {img.shape}")
    if not (np.issubdtype(img.dtype, np.floating) or np.issubdtype(img.dtype, np.integer)):
        raise TypeError(f"{name}: expected a float or integer image, got dtype {img.dtype}")
    return img


def _per_image(name: str, arg: str, value, n: int, batched: bool, width: int = 0) -> np.ndarray:
    """A scalar (or a width-vector) broadcast to n images, or n values for a batch."""
    v = np.asarray(value, dtype=np.float64)
    shape = (width,) if width else ()
    if v.shape == shape:
        return np.broadcast_to(v, (n,) + shape)
    if batched and v.shape == (n,) + shape:
        return v
    expected = f"{shape or 'a number'}" + (f" or {(n,) + shape} (one per image)" if batched else "")
    raise ValueError(f"{name}: {arg} must have shape {expected}, got {v.shape}")


def _check_interpolation(name: str, interpolation) -> str:
    interpolation = getattr(interpolation, "value", interpolation)  # accepts an InterpolationMode-like enum
    if interpolation not in _MODES:
        raise ValueError(f"{name}: interpolation must be one of {list(_MODES)}, got {interpolation!r}")
    return interpolation


def _check_fill(name: str, fill, channels: int, dtype):
    if fill is None:
        return None
    if isinstance(fill, numbers.Number):
        fill = [fill]
    fill = np.asarray(fill, dtype=dtype if np.issubdtype(dtype, np.floating) else np.float32)
    if fill.ndim != 1 or fill.size not in (1, channels):
        raise ValueError(
            f"{name}: fill must be a number or one value per channel ({channels}), got {fill.shape} values"
        )
    return fill.reshape(1, -1, 1)


def _center(center, height: int, width: int):
    """torchvision's centre offset: (0, 0) is the image centre."""
    if center is None:
        return 0.0, 0.0
    return float(center[0]) - width * 0.5, float(center[1]) - height * 0.5


# --------------------------------------------------------------------------- functional forms


def affine(img, angle, translate, scale=1.0, shear=(0.0, 0.0), interpolation="nearest", fill=None, center=None):
    """Affine warp with torchvision's ``v2.functional.affine`` conventions.

    Args:
        img: ``(C, H, W)`` or ``(N, C, H, W)``, float or integer.
        angle: degrees, clockwise on screen; a number or ``(N,)``.
        translate: ``(tx, ty)`` pixels (right, down); ``(2,)`` or ``(N, 2)``.
        scale: a number > 0 or ``(N,)`` (default 1.0).
        shear: degrees ``(sx, sy)`` or one number for ``(sx, 0)`` (default (0, 0)).
        interpolation: ``"nearest"`` (default) or ``"bilinear"``.
        fill: value outside the image; ``None`` (default) reads zeros, a number or
            one per channel blends through the in-bounds mask like torchvision.
        center: ``(cx, cy)`` as torchvision takes it, in coordinates where pixel
            ``j`` covers ``[j, j + 1)``: ``(4.5, 4.5)`` turns about pixel (4, 4).
            Default: the image centre.

    Returns an array of the same shape and dtype.
    """
    name = "affine"
    img = _check_image(name, img)
    interpolation = _check_interpolation(name, interpolation)
    batched = img.ndim == 4
    batch = img if batched else img[None]
    n, c, h, w = batch.shape
    if isinstance(shear, numbers.Number):
        shear = (shear, 0.0)
    angle = _per_image(name, "angle", angle, n, batched)
    translate = _per_image(name, "translate", translate, n, batched, width=2)
    scale = _per_image(name, "scale", scale, n, batched)
    shear = _per_image(name, "shear", shear, n, batched, width=2)
    if np.any(scale <= 0):
        raise ValueError(f"{name}: scale must be positive, got {scale.min()}")
    work = batch.dtype if np.issubdtype(batch.dtype, np.floating) else np.float32
    fill = _check_fill(name, fill, c, work)
    matrices = _inverse_matrices(angle, translate, scale, shear, _center(center, h, w))
    out = _warp(batch, matrices, interpolation, fill)
    return out if batched else out[0]


def rotate(img, angle, interpolation="nearest", center=None, fill=None):
    """Rotate counter-clockwise (on screen) by ``angle`` degrees about the centre, like
    torchvision's ``v2.functional.rotate`` (without ``expand``).

    As torchvision does, a rotation by a multiple of 90 degrees about the default
    centre is an exact ``rot90`` (180 always, 90 and 270 for square images).

    Args:
        img: ``(C, H, W)`` or ``(N, C, H, W)``.
        angle: degrees, a number or ``(N,)``.
        interpolation, center, fill: as in :func:`affine`.
    """
    name = "rotate"
    img = _check_image(name, img)
    interpolation = _check_interpolation(name, interpolation)
    batched = img.ndim == 4
    batch = img if batched else img[None]
    n, c, h, w = batch.shape
    angle = np.mod(_per_image(name, "angle", angle, n, batched), 360.0)  # torchvision: angle % 360
    fill = _check_fill(name, fill, c, batch.dtype if np.issubdtype(batch.dtype, np.floating) else np.float32)
    quarter = np.full(n, -1)
    if center is None:
        turns = angle / 90.0
        exact = (turns == np.round(turns)) & ((h == w) | (angle % 180 == 0))
        quarter = np.where(exact, np.round(turns).astype(int) % 4, -1)
    out = np.empty_like(batch)
    general = quarter < 0
    if general.any():
        zeros = np.zeros((int(general.sum()), 2))
        matrices = _inverse_matrices(-angle[general], zeros, np.ones(len(zeros)), zeros, _center(center, h, w))
        out[general] = _warp(batch[general], matrices, interpolation, fill)
    for k in range(4):
        pick = quarter == k
        if pick.any():
            out[pick] = np.rot90(batch[pick], k, axes=(-2, -1))
    return out if batched else out[0]


# --------------------------------------------------------------------------- random transforms


def _degrees_range(degrees):
    if isinstance(degrees, numbers.Number):
        if degrees < 0:
            raise ValueError("If degrees is a single number, it must be positive.")
        return -float(degrees), float(degrees)
    if len(degrees) != 2:
        raise ValueError("If degrees is a sequence, it must be of len 2.")
    return float(degrees[0]), float(degrees[1])


def _count(img) -> int:
    """Images in a batch (one parameter set each), or 1 for a single image."""
    return img.shape[0] if np.ndim(img) == 4 else 1


def _unbatch(params: np.ndarray, img):
    return params if np.ndim(img) == 4 else params[0]


class RandomRotation:
    """Rotate each image by an angle drawn uniformly from ``[-degrees, degrees]``
    (or ``[min, max]``), like ``torchvision.transforms.v2.RandomRotation``.

    On a batch ``(N, C, H, W)`` every image gets its own angle: ``angles =
    generator.uniform(lo, hi, size=N)``, one draw per call. The PyTorch twin
    (``torch_ref.transforms.RandomRotation``) given a generator seeded alike
    draws the very same angles.

    Args:
        degrees: a number d for ``[-d, d]``, or ``(min, max)``.
        interpolation: ``"nearest"`` (default) or ``"bilinear"``.
        fill: value outside the image (default 0, as torchvision's class).
        center: rotation centre in pixel coordinates (default: the image centre).
        generator: ``numpy.random.Generator`` (default: ``scratch.random``'s stream).
    """

    def __init__(self, degrees, interpolation="nearest", fill=0, center=None, generator=None):
        self.degrees = _degrees_range(degrees)
        self.interpolation = _check_interpolation("RandomRotation", interpolation)
        self.fill, self.center, self.generator = fill, center, generator

    def sample(self, n: int) -> np.ndarray:
        """(n,) angles in degrees."""
        return resolve(self.generator).uniform(self.degrees[0], self.degrees[1], size=n)

    def __call__(self, img):
        angles = self.sample(_count(img))
        return rotate(img, _unbatch(angles, img), self.interpolation, self.center, self.fill)

    def __repr__(self):
        return f"RandomRotation(degrees={list(self.degrees)}, interpolation={self.interpolation}, fill={self.fill})"


class RandomAffine:
    """Random rotation and shift with ``torchvision.transforms.v2.RandomAffine``'s
    parameters (no scale or shear).

    For each image: ``angle ~ U(lo, hi)``; with ``translate=(a, b)``,
    ``tx = round(U(-a * W, a * W))`` and ``ty = round(U(-b * H, b * H))`` whole
    pixels (round half to even). Drawn per call as three vectors of N values, in
    that order: angles, tx, ty.

    Args:
        degrees: a number d for ``[-d, d]``, or ``(min, max)``; 0 for no rotation.
        translate: maximal fractions ``(a, b)`` of the width and height, or None.
        interpolation, fill, center, generator: as in :class:`RandomRotation`.
    """

    def __init__(self, degrees, translate=None, interpolation="nearest", fill=0, center=None, generator=None):
        self.degrees = _degrees_range(degrees)
        if translate is not None:
            if len(translate) != 2:
                raise ValueError("translate should be a sequence of length 2.")
            if not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError("translation values should be between 0 and 1")
        self.translate = translate
        self.interpolation = _check_interpolation("RandomAffine", interpolation)
        self.fill, self.center, self.generator = fill, center, generator

    def sample(self, n: int, height: int, width: int):
        """(angles (n,), translate (n, 2)) for images of the given size."""
        rng = resolve(self.generator)
        angles = rng.uniform(self.degrees[0], self.degrees[1], size=n)
        shift = np.zeros((n, 2))
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * width, self.translate[1] * height
            shift[:, 0] = np.rint(rng.uniform(-max_dx, max_dx, size=n))
            shift[:, 1] = np.rint(rng.uniform(-max_dy, max_dy, size=n))
        return angles, shift

    def __call__(self, img):
        h, w = np.shape(img)[-2:]
        angles, shift = self.sample(_count(img), h, w)
        return affine(img, _unbatch(angles, img), _unbatch(shift, img), interpolation=self.interpolation,
                      fill=self.fill, center=self.center)

    def __repr__(self):
        return f"RandomAffine(degrees={list(self.degrees)}, translate={self.translate}, fill={self.fill})"


class RandomShift:
    """Shift each image by whole pixels, ``(tx, ty)`` drawn uniformly from
    ``{-max_shift, ..., max_shift}`` (the book's "shift" augmentation).

    One draw per call: ``generator.integers(-max_shift, max_shift + 1, size=(N, 2))``.
    A whole-pixel shift needs no interpolation: the image moves, ``fill`` comes in.

    Args:
        max_shift: the largest shift in pixels (>= 0).
        fill: value that enters at the edges (default 0).
        generator: ``numpy.random.Generator`` (default: ``scratch.random``'s stream).
    """

    def __init__(self, max_shift: int, fill=0, generator=None):
        if not isinstance(max_shift, numbers.Integral) or max_shift < 0:
            raise ValueError(f"RandomShift: max_shift must be an integer >= 0, got {max_shift!r}")
        self.max_shift, self.fill, self.generator = int(max_shift), fill, generator

    def sample(self, n: int) -> np.ndarray:
        """(n, 2) integer shifts (tx, ty)."""
        return resolve(self.generator).integers(-self.max_shift, self.max_shift + 1, size=(n, 2))

    def __call__(self, img):
        shift = self.sample(_count(img))
        return affine(img, 0.0, _unbatch(shift, img), fill=self.fill)

    def __repr__(self):
        return f"RandomShift(max_shift={self.max_shift}, fill={self.fill})"
