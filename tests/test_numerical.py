"""Numerical differentiation and the chapter 5 computational graph."""
import numpy as np
import pytest

import scratch.nn as snn
from scratch import graph
from scratch.numerical import gradcheck, numerical_diff, numerical_gradient
from torch_ref import graph as torch_graph


def test_numerical_diff_of_the_books_function():
    # d/dx (0.01 x^2 + 0.1 x) = 0.02 x + 0.1: 0.2 at x = 5, 0.3 at x = 10.
    f = lambda x: 0.01 * x**2 + 0.1 * x  # noqa: E731
    assert abs(numerical_diff(f, 5.0) - 0.2) < 1e-9
    assert abs(numerical_diff(f, 10.0) - 0.3) < 1e-9


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 1, 4), (1, 2, 2, 3)])
def test_numerical_gradient_any_shape_and_restores_every_element(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    before = x.copy()
    seen = []

    def f(a):
        seen.append(np.count_nonzero(a != before))  # exactly one element perturbed at a time
        return np.sum(a**3)

    g = numerical_gradient(f, x)
    assert np.array_equal(x, before)  # bit for bit
    assert set(seen) == {1}
    # central differences with h = 1e-4: truncation error h^2 f'''/6 = 1e-8
    np.testing.assert_allclose(g, 3 * before**2, rtol=1e-7, atol=2e-8)


def test_numerical_gradient_refuses_integer_arrays():
    with pytest.raises(TypeError, match="floating-point"):
        numerical_gradient(lambda a: a.sum(), np.arange(3))


def test_gradcheck_reports_every_tensor_and_catches_a_wrong_gradient():
    net = snn.Sequential(snn.Linear(3, 4, dtype=np.float64), snn.Tanh(), snn.Linear(4, 2, dtype=np.float64))
    x = np.random.default_rng(1).standard_normal((5, 3))
    records = gradcheck(net, x)
    assert [r["name"] for r in records] == ["input", "0.weight", "0.bias", "2.weight", "2.bias"]
    assert max(r["scaled"] for r in records) < 1e-7

    class WrongTanh(snn.Tanh):
        def backward(self, grad_output):
            return grad_output * (1 - self.out)  # forgot the square

    bad = snn.Sequential(snn.Linear(3, 4, dtype=np.float64), WrongTanh())
    assert max(r["scaled"] for r in gradcheck(bad, x)) > 1e-2


def test_apple_shopping_graph_matches_the_book_and_autograd():
    price, grads = graph.buy_apples()
    assert price == pytest.approx(220)
    assert grads == pytest.approx({"apple": 2.2, "apple_num": 110, "tax": 200})
    t_price, t_grads = torch_graph.buy_apples()
    assert t_price == pytest.approx(price, rel=1e-15) and t_grads == pytest.approx(grads, rel=1e-15)

    price, grads = graph.buy_apples_and_oranges()
    assert price == pytest.approx(715)
    assert grads == pytest.approx({"apple": 2.2, "apple_num": 110, "orange": 3.3, "orange_num": 165, "tax": 650})
    t_price, t_grads = torch_graph.buy_apples_and_oranges()
    assert t_price == pytest.approx(price, rel=1e-15) and t_grads == pytest.approx(grads, rel=1e-15)
