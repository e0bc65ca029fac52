"""experiments check FILE --train: book-style networks (tests/book_networks.py) trained in lockstep with their twins.

Tiny runs on generated MNIST-like digits (``--data synthetic``): no network, no MNIST cache needed.
"""
import json
from pathlib import Path

import numpy as np

import book_networks as N
from experiments.__main__ import main as cli
from experiments.check.training import train_network
from test_check_optimizers import Adam

TESTS = Path(__file__).resolve().parent
TINY = ["--train", "--data", "synthetic", "--steps", "12", "--train-batch", "16"]


def _file(tmp_path, body):
    f = tmp_path / "mynet.py"
    f.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom book_networks import TwoLayerNet, "
                 f"HalfDbAffine\n{body}\n")
    return f


def test_correct_network_trains_in_lockstep_exit_0_with_a_report(tmp_path, capsys):
    f = _file(tmp_path, "class Net(TwoLayerNet):\n    pass\n")
    assert cli(["check", str(f), *TINY, "--network", "Net", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "Net: lockstep parity holds: the loss difference stays within 1e-09 (relative) over all 12 steps" in out
    folder = tmp_path / "out" / "Net"
    # the report folder carries the runner's ownership marker (docs/design.md, "Output folders")
    assert sorted(p.name for p in folder.iterdir()) == [".experiments-report", "losses.png", "report.md",
                                                        "summary.json"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["ok"] is True and summary["first_above"] is None and summary["steps"] == 12
    assert "lockstep parity holds" in (folder / "report.md").read_text()


def test_planted_bug_exits_1_with_the_step_and_the_layer(tmp_path, capsys):
    f = _file(tmp_path, "class Bad(TwoLayerNet):\n    def __init__(self, input_size, hidden_size, output_size):\n"
                        "        super().__init__(input_size, hidden_size, output_size, affine2=HalfDbAffine)\n")
    assert cli(["check", str(f), *TINY, "--network", "Bad", "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    # step 1's loss is computed before the first update, so the halved db shows from step 2 on
    assert "Bad: the runs part at step 2: loss difference" in out, out
    assert "located: Affine2 (Affine, the first layer walking back from the loss" in out
    assert "db is 0.5 x torch's" in out


def test_books_optimizer_form_is_applied_to_the_twin_and_parity_holds():
    np.random.seed(0)
    s = train_network(N.TwoLayerNet(784, 10, 10), steps=10, batch=16, data="synthetic",
                      optimizer=Adam(eps=1e-7, bias="folded"))
    assert s["ok"] and s["verdict"].startswith("lockstep parity holds"), s["verdict"]
    assert any("the optimizer's by-design form (bias correction folded" in a for a in s["applied"]), s["applied"]


def test_dropout_masks_are_shared():
    np.random.seed(2)
    s = train_network(N.SmallConvNet(filter_num=2, hidden_size=6), steps=6, batch=8, data="synthetic")
    assert s["ok"] and s["verdict"].startswith("lockstep parity holds"), s["verdict"]


def test_float32_run_reports_the_shadow_verdict_with_the_same_dropout_masks():
    np.random.seed(2)
    s = train_network(N.SmallConvNet(filter_num=2, hidden_size=6), steps=10, batch=8, data="synthetic",
                      dtype=np.float32)
    assert s["dtype"] == "float32" and s["ok"]
    assert "against the float64 shadow your float32 run is" in s["verdict"] and s["shadow"]["steps"] == 10
    # the shadow replays np.random as the float32 network had it: other masks would put it O(1) away
    assert s["shadow"]["yours_median_error"] < 1e-5 and s["shadow"]["torch_median_error"] < 1e-5, s["shadow"]


def test_train_without_a_network_class_exits_2(tmp_path, capsys):
    f = tmp_path / "none.py"
    f.write_text("X = 1\n")
    assert cli(["check", str(f), *TINY]) == 2
    assert "--train needs a network class" in capsys.readouterr().err


def test_books_batch_norm_eps_applied_to_the_twin_and_parity_holds():
    np.random.seed(4)
    s = train_network(N.BatchNormNet(), steps=8, batch=16, data="synthetic")
    assert s["ok"] and s["verdict"].startswith("lockstep parity holds"), s["verdict"]
    assert "BatchNorm1: batch-norm eps = 1e-06" in s["applied"]


def test_optimizer_from_another_file(tmp_path, capsys):
    f = _file(tmp_path, "class Net(TwoLayerNet):\n    pass\n")
    opt = tmp_path / "opt.py"
    opt.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom test_check_optimizers import Momentum\n")
    assert cli(["check", str(f), *TINY, "--network", "Net", "--optimizer", f"{opt}:Momentum", "--lr", "0.05",
                "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "Net" / "summary.json").read_text())
    assert summary["optimizer"] == "Momentum, against torch.optim.SGD(lr=0.05, momentum=0.9)", summary["optimizer"]
    assert "lockstep parity holds" in capsys.readouterr().out


def test_train_refuses_a_folder_it_does_not_own_before_training(tmp_path, capsys):
    f = _file(tmp_path, "class Net(TwoLayerNet):\n    pass\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes\n")
    assert cli(["check", str(f), *TINY, "--network", "Net", "--out", str(mine)]) == 2
    out = capsys.readouterr().out
    assert "not an output folder of this tool" in out and "lockstep parity" not in out
    assert sorted(p.name for p in mine.iterdir()) == ["README.md"]
    assert (mine / "README.md").read_text() == "my notes\n"
