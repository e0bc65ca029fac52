"""Generated sets: regression target, logic gates, the x^2/20 + y^2 bowl, the MNIST-like digits."""
import numpy as np
import pytest

from experiments.data import synthetic as S


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regression_set(dtype):
    x, y = S.regression(500, seed=3, dtype=dtype)
    assert x.shape == (500, 2) and y.shape == (500, 1) and x.dtype == y.dtype == dtype
    assert x.min() >= -10 and x.max() <= 10 and x.min() < -9 and x.max() > 9  # covers the square
    x64 = x.astype(np.float64)
    expected = x64[:, 0] * x64[:, 1] + x64[:, 0] + x64[:, 1]
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-6 if dtype == np.float32 else 1e-15, atol=1e-4)
    again, _ = S.regression(500, seed=3, dtype=dtype)
    np.testing.assert_array_equal(again, x)
    assert not np.array_equal(S.regression(500, seed=4)[0], S.regression(500, seed=3)[0])
    _, noisy = S.regression(2000, seed=3, noise=0.5)
    x_, clean = S.regression(2000, seed=3)
    assert 0.4 < np.std(noisy - clean) < 0.6


def test_truth_tables():
    rows = {(0, 0): 0, (1, 0): 1, (0, 1): 2, (1, 1): 3}
    written = {  # the gates by hand: (x1, x2) -> y
        "AND": {(0, 0): 0, (1, 0): 0, (0, 1): 0, (1, 1): 1},
        "NAND": {(0, 0): 1, (1, 0): 1, (0, 1): 1, (1, 1): 0},
        "OR": {(0, 0): 0, (1, 0): 1, (0, 1): 1, (1, 1): 1},
        "NOR": {(0, 0): 1, (1, 0): 0, (0, 1): 0, (1, 1): 0},
        "XOR": {(0, 0): 0, (1, 0): 1, (0, 1): 1, (1, 1): 0},
    }
    for gate, table in written.items():
        x, y = S.truth_table(gate.lower())
        assert x.shape == (4, 2) and y.shape == (4, 1)
        for (a, b), out in table.items():
            assert x[rows[(a, b)]].tolist() == [a, b] and y[rows[(a, b)], 0] == out
    with pytest.raises(ValueError, match="unknown gate 'XNAND'"):
        S.truth_table("XNAND")


def test_logic_gate_samples():
    x, y = S.logic_gate("XOR", 400, seed=1, dtype=np.float32)
    assert x.shape == (400, 2) and y.shape == (400, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0], np.logical_xor(x[:, 0], x[:, 1]))
    assert len(np.unique(x, axis=0)) == 4
    xn, yn = S.logic_gate("XOR", 400, seed=1, noise=0.1)
    np.testing.assert_array_equal(yn, y)  # the same rows, jittered inputs
    assert 0.05 < np.abs(xn - x).mean() < 0.15
    np.testing.assert_array_equal(S.logic_gate("AND", 50, seed=9)[0], S.logic_gate("AND", 50, seed=9)[0])


def test_bowl_function_and_gradient():
    assert S.bowl(-7.0, 2.0) == pytest.approx(49 / 20 + 4)
    assert S.BOWL_START == (-7.0, 2.0)
    rng = np.random.default_rng(0)
    p = rng.uniform(-10, 10, (50, 2))
    gx, gy = S.bowl_grad(p[:, 0], p[:, 1])
    h = 1e-5
    num_x = (S.bowl(p[:, 0] + h, p[:, 1]) - S.bowl(p[:, 0] - h, p[:, 1])) / (2 * h)
    num_y = (S.bowl(p[:, 0], p[:, 1] + h) - S.bowl(p[:, 0], p[:, 1] - h)) / (2 * h)
    np.testing.assert_allclose(gx, num_x, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gy, num_y, rtol=1e-7, atol=1e-9)
    xy, f = S.bowl_points(300, seed=2, xlim=(-10, 10), ylim=(-5, 5))
    assert xy.shape == (300, 2) and f.shape == (300,)
    assert np.abs(xy[:, 1]).max() <= 5 and np.abs(xy[:, 0]).max() > 9
    np.testing.assert_array_equal(f, xy[:, 0] ** 2 / 20 + xy[:, 1] ** 2)
    X, Y, Z = S.bowl_grid(11)
    assert X.shape == Y.shape == Z.shape == (11, 11) and Z.min() == 0 and Z[5, 5] == 0


def test_synthetic_mnist_shapes_dtypes_and_seed():
    x, t = S.synthetic_mnist(300, seed=0)
    assert x.shape == (300, 784) and x.dtype == np.float32 and t.shape == (300,) and t.dtype == np.int64
    assert 0 <= x.min() and x.max() <= 1 and set(np.unique(t)) == set(range(10))
    x4, t4 = S.synthetic_mnist(300, seed=0, flatten=False, dtype=np.float64)
    assert x4.shape == (300, 1, 28, 28) and x4.dtype == np.float64
    np.testing.assert_array_equal(t4, t)
    np.testing.assert_allclose(x4.reshape(300, 784), x, atol=1e-7)
    _, oh = S.synthetic_mnist(300, seed=0, one_hot_label=True)
    assert oh.shape == (300, 10) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh.argmax(1), t)
    np.testing.assert_array_equal(S.synthetic_mnist(50, seed=5)[0], S.synthetic_mnist(50, seed=5)[0])
    assert not np.array_equal(S.synthetic_mnist(50, seed=5)[0], S.synthetic_mnist(50, seed=6)[0])


def test_synthetic_mnist_is_learnable_but_not_trivial():
    """Softmax regression (NumPy, full-batch gradient descent) learns it far above chance."""
    x, t = S.synthetic_mnist(1000, seed=1, dtype=np.float64)
    xt, tt = S.synthetic_mnist(500, seed=2, dtype=np.float64)
    # the classes are not separable by brightness alone
    means = np.array([x[t == k].mean() for k in range(10)])
    assert means.std() / means.mean() < 0.5
    W, b = np.zeros((784, 10)), np.zeros(10)
    onehot = np.eye(10)[t]
    for _ in range(60):
        z = x @ W + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(x)
        W -= 0.5 * x.T @ g
        b -= 0.5 * g.sum(0)
    accuracy = ((xt @ W + b).argmax(1) == tt).mean()
    assert accuracy > 0.6, accuracy
