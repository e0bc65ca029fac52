"""Generated data sets, each from an explicit seed (``numpy.random.default_rng(seed)``).

- :func:`regression`: y = x1 * x2 + x1 + x2, x uniform on [-10, 10]^2 (the notes' regression target).
- :func:`truth_table` / :func:`logic_gate`: AND, NAND, OR, NOR, XOR (chapter 2's perceptrons).
- :func:`bowl`, :func:`bowl_grad`, :func:`bowl_points`, :func:`bowl_grid`:
  f(x, y) = x^2 / 20 + y^2, the function of chapter 6's optimizer paths, started at (-7, 2).
- :func:`synthetic_mnist`: a small MNIST-like set of the same shapes, so that tests
  and the tiny profile need neither the network nor the real data.
"""
import numpy as np

# ----------------------------------------------------------------------------- regression


def regression(n: int, seed: int, dtype=np.float64, noise: float = 0.0):
    """x (n, 2) uniform on [-10, 10]^2, y (n, 1) = x1 * x2 + x1 + x2 (+ N(0, noise^2))."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-10.0, 10.0, size=(n, 2))
    y = x[:, :1] * x[:, 1:] + x[:, :1] + x[:, 1:]
    if noise:
        y = y + rng.normal(0.0, noise, size=y.shape)
    return x.astype(dtype), y.astype(dtype)


# ----------------------------------------------------------------------------- logic gates

GATES = {
    "AND": (0, 0, 0, 1),
    "NAND": (1, 1, 1, 0),
    "OR": (0, 1, 1, 1),
    "NOR": (1, 0, 0, 0),
    "XOR": (0, 1, 1, 0),
}
INPUTS = ((0, 0), (1, 0), (0, 1), (1, 1))  # the book's order of rows


def truth_table(gate: str, dtype=np.float64):
    """x (4, 2) the inputs, y (4, 1) the gate's output."""
    key = gate.upper()
    if key not in GATES:
        raise ValueError(f"truth_table: unknown gate {gate!r}; expected one of {list(GATES)}")
    return np.array(INPUTS, dtype=dtype), np.array(GATES[key], dtype=dtype).reshape(4, 1)


def logic_gate(gate: str, n: int, seed: int, noise: float = 0.0, dtype=np.float64):
    """n rows drawn from the truth table, inputs jittered by N(0, noise^2): x (n, 2), y (n, 1)."""
    x_table, y_table = truth_table(gate, np.float64)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 4, size=n)
    x = x_table[rows] + (rng.normal(0.0, noise, size=(n, 2)) if noise else 0.0)
    return x.astype(dtype), y_table[rows].astype(dtype)


# ----------------------------------------------------------------------------- f(x, y) = x^2/20 + y^2

BOWL_START = (-7.0, 2.0)  # where the book starts every optimizer


def bowl(x, y):
    """f(x, y) = x^2 / 20 + y^2: stretched along x, so plain SGD zig-zags."""
    return x**2 / 20.0 + y**2


def bowl_grad(x, y):
    """(df/dx, df/dy) = (x / 10, 2 y)."""
    return x / 10.0, 2.0 * y


def bowl_points(n: int, seed: int, xlim=(-10.0, 10.0), ylim=(-10.0, 10.0), dtype=np.float64):
    """n points uniform in the box and their heights: xy (n, 2), f (n,)."""
    rng = np.random.default_rng(seed)
    xy = np.column_stack([rng.uniform(*xlim, size=n), rng.uniform(*ylim, size=n)])
    return xy.astype(dtype), bowl(xy[:, 0], xy[:, 1]).astype(dtype)


def bowl_grid(steps: int = 101, xlim=(-10.0, 10.0), ylim=(-5.0, 5.0)):
    """X, Y, Z = f(X, Y), each (steps, steps), for a contour plot."""
    X, Y = np.meshgrid(np.linspace(*xlim, steps), np.linspace(*ylim, steps))
    return X, Y, bowl(X, Y)


# ----------------------------------------------------------------------------- MNIST-like

# Seven-segment digits on a 28 x 28 canvas: segment -> (rows, columns) of its stroke.
_SEGMENTS = {
    "a": (slice(4, 6), slice(8, 20)),
    "b": (slice(4, 14), slice(18, 20)),
    "c": (slice(14, 24), slice(18, 20)),
    "d": (slice(22, 24), slice(8, 20)),
    "e": (slice(14, 24), slice(8, 10)),
    "f": (slice(4, 14), slice(8, 10)),
    "g": (slice(13, 15), slice(8, 20)),
}
_DIGITS = ("abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg")
_MAX_SHIFT = 3


def _templates() -> np.ndarray:
    """(10, 28, 28) clean digits, in a margin wide enough for the shifts."""
    pad = _MAX_SHIFT
    t = np.zeros((10, 28 + 2 * pad, 28 + 2 * pad))
    for digit, segments in enumerate(_DIGITS):
        for s in segments:
            rows, cols = _SEGMENTS[s]
            t[digit, rows.start + pad:rows.stop + pad, cols.start + pad:cols.stop + pad] = 1.0
    return t


def synthetic_mnist(n: int, seed: int = 0, *, flatten: bool = True, one_hot_label: bool = False,
                    dtype=np.float32):
    """A generated MNIST-like set: seven-segment digits, shifted, dimmed and noisy.

    Each image is its class's seven-segment digit, moved by up to 3 pixels each
    way, scaled by a brightness in [0.5, 1], with 10 % of the stroke pixels
    dropped and Gaussian noise (sd 0.15) added, clipped to [0, 1]. A small
    network learns it far above chance (10 %) but not instantly.

    Returns (x, t): x (n, 784) or, with ``flatten=False``, (n, 1, 28, 28) in
    [0, 1] of ``dtype``; t (n,) int64 labels, or (n, 10) one-hot of ``dtype``.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    dy, dx = (rng.integers(-_MAX_SHIFT, _MAX_SHIFT + 1, size=(2, n)))
    brightness = rng.uniform(0.5, 1.0, size=n)
    keep = rng.random((n, 28, 28)) >= 0.1
    noise = rng.normal(0.0, 0.15, size=(n, 28, 28))
    # each image is a 28 x 28 window of its padded template, moved by (dy, dx)
    rows = np.arange(28)[None, :, None] + _MAX_SHIFT - dy[:, None, None]
    cols = np.arange(28)[None, None, :] + _MAX_SHIFT - dx[:, None, None]
    x = _templates()[labels[:, None, None], rows, cols]
    x = np.clip(x * keep * brightness[:, None, None] + noise, 0.0, 1.0).astype(dtype)
    x = x.reshape(n, 784) if flatten else x.reshape(n, 1, 28, 28)
    t = np.eye(10, dtype=dtype)[labels] if one_hot_label else labels.astype(np.int64)
    return x, t
