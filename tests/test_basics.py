"""Chapters 2 and 3: logic gates and the fixed-weight network, in both twins."""
import numpy as np
import pytest
import torch

from experiments.compare import to_torch
from scratch.models import basics as S
from torch_ref.models import basics as T

X = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)
TRUTH = {"AND": [0, 0, 0, 1], "NAND": [1, 1, 1, 0], "OR": [0, 1, 1, 1]}


@pytest.mark.parametrize("gate", sorted(TRUTH))
def test_perceptron_gates(gate):
    assert S.Perceptron.gate(gate)(X).ravel().tolist() == TRUTH[gate]
    assert T.Perceptron.gate(gate)(torch.tensor(X)).ravel().tolist() == TRUTH[gate]


def test_xor_needs_two_layers():
    assert S.XORNet.from_book()(X).ravel().tolist() == [0, 1, 1, 0]
    assert T.XORNet.from_book()(torch.tensor(X)).ravel().tolist() == [0, 1, 1, 0]


def test_unknown_gate():
    with pytest.raises(ValueError, match="gate must be one of"):
        S.Perceptron.gate("XOR")


def test_three_layer_network_gives_the_books_output():
    x = np.array([1.0, 0.5])
    book = [0.31682708, 0.69627909]  # printed in the notes, chapter 3
    np.testing.assert_allclose(S.ThreeLayerNet.from_book()(x), book, atol=5e-9)
    np.testing.assert_allclose(T.ThreeLayerNet.from_book()(torch.tensor(x)).detach().numpy(), book, atol=5e-9)


def test_three_layer_network_twins_share_state_dict_keys_and_agree():
    s = S.ThreeLayerNet(generator=np.random.default_rng(0))
    t = T.ThreeLayerNet()
    assert list(s.state_dict()) == list(t.state_dict())
    t.load_state_dict(to_torch(s.state_dict()))
    x = np.random.default_rng(1).standard_normal((6, 2))
    np.testing.assert_allclose(s(x), t(torch.tensor(x)).detach().numpy(), rtol=1e-14)
    np.testing.assert_array_equal(T.ThreeLayerNet.from_book().state_dict()["fc2.weight"].numpy(),
                                  S.ThreeLayerNet.from_book().state_dict()["fc2.weight"])
