"""``python -m experiments check PATH.py``: exit status, table and JSON fields."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "examples" / "book_layers.py"
LOAD_BOOK = f"""
import importlib.util
_spec = importlib.util.spec_from_file_location("book_layers", {str(BOOK)!r})
B = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(B)
"""


def run_json(capsys, *argv):
    code = main(["check", *map(str, argv), "--json", "--configs", "2"])
    return code, {r["layer"]: r for r in json.loads(capsys.readouterr().out)}


def test_the_books_file_exits_1_with_its_by_design_differences(capsys):
    code, records = run_json(capsys, BOOK)
    assert code == 1
    assert list(records) == ["Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
                             "Convolution", "Pooling"]
    for r in records.values():
        assert {"layer", "against", "ok", "worst", "diagnosis"} <= set(r)
    for name in ("Relu", "Sigmoid", "Affine", "Convolution", "Pooling"):
        assert records[name]["ok"] is True and records[name]["diagnosis"] == ""
        assert records[name]["worst"] < 1e-10
    assert records["Affine"]["against"] == "torch.nn.Linear"
    assert records["Dropout"]["ok"] is False and "non-inverted dropout" in records["Dropout"]["diagnosis"]
    assert "eps = 1e-07" in records["SoftmaxWithLoss"]["diagnosis"]
    assert "eps = 1e-06" in records["BatchNormalization"]["diagnosis"]
    assert all(r["verdict"].startswith("differs by design") for r in records.values() if not r["ok"])


def test_float32_flags_the_books_float64_im2col(capsys):
    code, records = run_json(capsys, BOOK, "--dtype", "float32", "--layers", "Convolution", "Affine")
    assert code == 1 and list(records) == ["Convolution", "Affine"]
    assert records["Affine"]["ok"] is True
    assert "float32 in, float64 out" in records["Convolution"]["diagnosis"]


def test_correct_layers_exit_0_and_an_unknown_class_is_listed_not_checked(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text(LOAD_BOOK + """
Relu, Affine, Convolution, Pooling = B.Relu, B.Affine, B.Convolution, B.Pooling
from scratch.nn import Linear, ReLU, Conv2d, BatchNorm2d, MaxPool2d, Dropout


class Mystery:
    def forward(self, x):
        return x

    def backward(self, dout):
        return dout
""")
    code, records = run_json(capsys, path)
    assert code == 0, records
    assert records["Mystery"]["ok"] is None and records["Mystery"]["against"] is None
    assert records["Mystery"]["verdict"].startswith("not checked: no torch counterpart known")
    assert "assert_matches_torch(Mystery(...)" in records["Mystery"]["diagnosis"]  # the API that would check it
    checked = {n: r for n, r in records.items() if n != "Mystery"}
    assert set(checked) == {"Relu", "Affine", "Convolution", "Pooling", "Linear", "ReLU", "Conv2d", "BatchNorm2d",
                            "MaxPool2d", "Dropout"}
    assert all(r["ok"] is True for r in checked.values()), checked
    assert records["BatchNorm2d"]["against"] == "torch.nn.BatchNorm2d"


def test_a_broken_layer_exits_1_with_its_diagnosis(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text(LOAD_BOOK + """
import numpy as np


class Affine(B.Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.db = np.mean(dout, axis=0)
        return dx
""")
    code, records = run_json(capsys, path)
    assert code == 1 and records["Affine"]["ok"] is False
    assert records["Affine"]["diagnosis"].startswith("db is torch's divided by the batch size N")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "mismatch\n    db is torch's divided by" in out and "db             bias.grad" in out


def test_a_book_style_tanh_is_checked_against_torch_tanh(tmp_path, capsys):
    path = tmp_path / "act.py"
    path.write_text("""
import numpy as np


class Tanh:
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1 - self.out ** 2)


class TanhLayer:  # a learner's slip: the derivative without its square
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1 - self.out)
""")
    code, records = run_json(capsys, path)
    assert code == 1
    assert records["Tanh"]["against"] == records["TanhLayer"]["against"] == "torch.nn.Tanh"
    assert records["Tanh"]["ok"] is True and records["Tanh"]["worst"] < 1e-10
    assert records["TanhLayer"]["ok"] is False and records["TanhLayer"]["verdict"].startswith("mismatch")


def test_an_error_on_one_configuration_does_not_hide_a_mismatch_on_another(tmp_path, capsys):
    path = tmp_path / "affine2d.py"
    path.write_text("""
class Affine:  # takes 2-D input only, and leaves dW as a list
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = (self.x.T @ dout).tolist()
        self.db = dout.sum(axis=0)
        return dout @ self.W.T
""")
    code, records = run_json(capsys, path)
    assert code == 1 and records["Affine"]["ok"] is False
    verdict = records["Affine"]["verdict"]
    assert verdict.startswith("error: forward(x) raised ValueError"), verdict
    assert "; on another configuration: dW is a list, not an ndarray" in verdict


def test_a_file_that_fails_to_import_gives_one_line(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("import numpy as np\nclass Relu(:\n")
    p = subprocess.run([sys.executable, "-m", "experiments", "check", str(path)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "cannot import" in p.stderr and "SyntaxError" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("argv, message", [(["--layers", "Nope"], "has no layer class Nope"),
                                           (["--configs", "0"], "--configs must be >= 1")])
def test_bad_arguments_exit_2(argv, message, capsys):
    assert main(["check", str(BOOK), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_file_without_known_layers_exits_2(tmp_path, capsys):
    path = tmp_path / "none.py"
    path.write_text("X = 1\n")
    assert main(["check", str(path)]) == 2
    assert "no layer class or function it knows" in capsys.readouterr().err


def test_gradcheck_points_to_check_for_a_users_layer_name():
    with pytest.raises(SystemExit, match=r"unknown layer\(s\) Affine.*python -m experiments check PATH.py"):
        main(["gradcheck", "--layers", "Affine"])


def test_the_docs_table_is_what_the_command_prints_on_a_book_style_common_package(tmp_path):
    """docs/checking.md quotes the command on the book's own common/layers.py; this repo has no copy of the book,
    so the same command runs on examples/book_layers.py placed where the book keeps its layers (a common/ package
    importing common.functions), and each layer's line of the docs must be what it prints. The command runs as
    the console script does (python -P: the current folder is not on sys.path), from outside the package root."""
    common = tmp_path / "book" / "common"
    common.mkdir(parents=True)
    (common / "__init__.py").write_text("")
    (common / "functions.py").write_text("def identity_function(x):\n    return x\n")
    (common / "layers.py").write_text("from common.functions import *  # noqa: F401,F403\n" + BOOK.read_text())
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-P", "-m", "experiments", "check", "book/common/layers.py"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env)
    assert p.returncode == 1, p.stderr
    docs = (ROOT / "docs" / "checking.md").read_text()
    quoted = docs.split("experiments check common/layers.py\n", 1)[1].split("$ echo $?\n1\n", 1)[0]

    def rows(text):  # each layer's line without its worst-error column: layer, against, configs, verdict
        return [(r.split()[:3], r.split()[4:]) for r in text.splitlines() if r and not r.startswith(" ")]
    assert rows(p.stdout) == rows(quoted)
    assert len(rows(quoted)) == 9  # the header and the book's eight layers
