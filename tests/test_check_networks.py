"""experiments.check.networks: book-style networks (tests/book_networks.py) against their torch twins."""
import json
from pathlib import Path

import numpy as np
import pytest

import book_networks as N
from experiments.__main__ import main as cli
from experiments.check.networks import (NeedsArguments, assert_network_matches_torch, build_network,
                                        check_network, check_network_named)

TESTS = Path(__file__).resolve().parent


def two_layer(**kw):
    np.random.seed(0)
    return N.TwoLayerNet(784, kw.pop("hidden", 10), 10, **kw)


def test_correct_two_layer_net_matches_torch_and_its_numerical_gradient_agrees():
    r = assert_network_matches_torch(two_layer(), batch=4)
    assert [x.name for x in r.records] == ["loss", "W1", "b1", "W2", "b2"]
    assert r.records[1].against == "Affine1.weight.grad.T" and r.located == ""
    assert r.against == "torch twin: Linear - ReLU - Linear + CrossEntropyLoss"
    assert r.numerical.startswith("its numerical_gradient(x, t) agrees with gradient()"), r.numerical


def test_scaled_gradient_in_one_layer_is_located_with_its_diagnosis():
    r = check_network(two_layer(affine2=N.HalfDbAffine), batch=4)
    assert {x.name: x.ok for x in r.records} == {"loss": True, "W1": True, "b1": True, "W2": True, "b2": False}
    assert r.located == "Affine2"
    assert r.verdict.startswith("mismatch: Affine2 (Affine, the first layer walking back from the loss that "
                                "departs from torch): db is 0.5 x torch's"), r.verdict
    assert "disagrees with gradient()" in r.numerical  # chapter 5's check sees it too, beside


def test_transposed_gradient_is_located():
    r = check_network(two_layer(affine2=N.TransposedDwAffine, hidden=6), batch=4)
    assert r.located == "Affine2" and "dW is transposed" in r.verdict, r.verdict
    assert next(x for x in r.records if x.name == "W2").verdict == "shape"


def test_wrong_input_gradient_is_located_at_the_layer_not_below_it():
    r = check_network(two_layer(relu=N.LeakyRelu), batch=4)
    assert {x.name for x in r.records if not x.ok} == {"W1", "b1"}  # the fault shows below Relu1 ...
    assert r.located == "Relu1", r.verdict  # ... and is located in it; Affine1 is right on what it saw
    assert "dx" in r.verdict


def test_gradient_dict_taken_from_the_wrong_layer_is_named():
    r = check_network(two_layer(swap_grads=True), batch=4)
    assert r.located == "" and "grads['b1'] is Affine2.db, but params['b1'] is Affine1.b" in r.verdict, r.verdict


def test_conv_net_with_inverted_dropout_matches_torch_with_shared_masks():
    np.random.seed(1)
    r = check_network(N.SmallConvNet(), batch=3)
    assert r.ok, str(r)
    assert "Dropout" in r.against and "not run: the loss draws new dropout masks" in r.numerical


def test_books_dropout_and_loss_differ_by_design():
    np.random.seed(1)
    r = check_network(N.SmallConvNet(book_dropout=True, book_loss=True), batch=3)
    assert r.verdict.startswith("differs by design: "), r.verdict
    assert "last_layer: out: the loss has eps = 1e-07" in r.verdict and "layers[5]: non-inverted dropout: out, dx are (1 - p)" in r.verdict


def test_bug_in_a_conv_net_given_as_a_list_is_located():
    np.random.seed(1)
    r = check_network(N.SmallConvNet(affine2=N.HalfDbAffine), batch=3)
    assert r.located == "layers[3]" and "db is 0.5 x torch's" in r.verdict, r.verdict


def test_constructor_arguments_guessed_and_named_when_they_cannot_be():
    net, kw = build_network(N.TwoLayerNet)
    assert kw == {"input_size": 784, "hidden_size": 10, "output_size": 10} and net.params["W1"].shape == (784, 10)
    with pytest.raises(NeedsArguments) as e:
        build_network(N.NeedsWidth)
    assert "--args width=VALUE" in str(e.value) and "check_network(NeedsWidth(input_size=784, width=..., output_size=10))" in str(e.value)
    r, _ = check_network_named("NeedsWidth", N.NeedsWidth)
    assert r.not_checked and "width" in r.refused


def test_refused_without_a_layer_sequence():
    class NoLayers:
        params = {"W": np.zeros(2)}

        def loss(self, x, t):
            return 0.0

        def gradient(self, x, t):
            return {}

    r = check_network(NoLayers())
    assert r.verdict.startswith("refused: NoLayers has no layers sequence")


def _file(tmp_path, names, body):
    f = tmp_path / "net.py"
    f.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom book_networks import {names}\n{body}\n")
    return f


def test_cli_checks_the_network_classes_of_a_file(tmp_path, capsys):
    f = _file(tmp_path, "TwoLayerNet", "class Good(TwoLayerNet):\n    pass\n")
    assert cli(["check", str(f), "--batch", "3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line and not line.startswith(" ")]
    assert [r.split()[0] for r in rows] == ["network", "TwoLayerNet", "Good"]
    assert all(r.endswith(" ok") for r in rows[1:])


def test_cli_bug_exits_1_and_json_names_the_layer(tmp_path, capsys):
    f = _file(tmp_path, "TwoLayerNet, HalfDbAffine, NeedsWidth", "class Bad(TwoLayerNet):\n    def __init__(self, input_size, hidden_size, output_size):\n"
                        "        super().__init__(input_size, hidden_size, output_size, affine2=HalfDbAffine)\n")
    assert cli(["check", str(f), "--batch", "3", "--json", "--args", "hidden_size=5"]) == 1
    records = {r["layer"]: r for r in json.loads(capsys.readouterr().out)}
    bad = records["Bad"]
    assert bad["kind"] == "network" and bad["located"] == "Affine2" and bad["ok"] is False
    assert bad["constructor"] == {"input_size": "784", "hidden_size": "5", "output_size": "10"}
    assert records["NeedsWidth"]["checked"] is False and "--args width=VALUE" in records["NeedsWidth"]["verdict"]


def test_another_authors_shape_weights_as_attributes():
    np.random.seed(3)
    r = check_network(N.AttributeNet(), batch=4)
    assert r.ok and [x.name for x in r.records] == ["loss", "W1", "b1", "W2", "b2"], str(r)
    assert r.against == "torch twin: Linear - Sigmoid - Linear + CrossEntropyLoss"
    bad = check_network(N.AttributeNet(affine2=N.HalfDbAffine), batch=4)
    assert bad.located == "layers[2]" and "db is 0.5 x torch's" in bad.verdict, bad.verdict


def test_attribute_network_trains_in_lockstep():
    from experiments.check.training import train_network

    np.random.seed(3)
    s = train_network(N.AttributeNet(), steps=5, batch=8, data="synthetic")
    assert s["ok"] and s["verdict"].startswith("lockstep parity holds"), s["verdict"]


def test_batch_norm_by_design_confirmed_on_the_whole_network_and_no_alarm_on_a_zero_gradient():
    np.random.seed(4)
    r = check_network(N.BatchNormNet(), batch=6)
    assert r.verdict.startswith("differs by design: BatchNorm1: eps = 1e-06 under the square root"), r.verdict
    assert "the torch twin with these variants applied reproduces the loss and every gradient" in r.notes
    b1 = next(x for x in r.records if x.name == "b1")
    assert b1.ok and b1.max_abs < 1e-15  # round-off around an exact 0, not a fault


def test_books_variants_are_confirmed_by_the_twin_with_them_applied():
    np.random.seed(1)
    r = check_network(N.SmallConvNet(book_dropout=True, book_loss=True), batch=3)
    assert "the torch twin with these variants applied reproduces the loss and every gradient" in r.notes, str(r)


def test_the_networks_own_code_raising_is_an_error_verdict():
    class Raises(N.TwoLayerNet):
        def gradient(self, x, t):
            raise ValueError("shapes (8,784) and (10,10) not aligned")

    np.random.seed(0)
    r = check_network(Raises(784, 10, 10), batch=2)
    assert r.verdict == "error: gradient(x, t) raised ValueError: shapes (8,784) and (10,10) not aligned"


def test_json_records_of_networks_and_optimizers_have_the_layer_records_keys(tmp_path, capsys):
    f = tmp_path / "mixed.py"
    f.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nsys.path.insert(0, "
                 f"{str(TESTS.parent / 'examples')!r})\nfrom book_layers import Relu\n"
                 "from book_networks import TwoLayerNet\nfrom test_check_optimizers import Adam\n")
    cli(["check", str(f), "--batch", "3", "--json", "--configs", "1"])
    records = json.loads(capsys.readouterr().out)
    assert [(r.get("kind", "layer"), r["layer"]) for r in records] == [("layer", "Relu"), ("network", "TwoLayerNet"),
                                                                      ("optimizer", "Adam")]
    layer_keys = set(records[0])
    for r in records[1:]:
        assert layer_keys <= set(r), layer_keys - set(r)
