"""The checker on a corpus of planted bugs, correct layers under unusual names, and hostile files.

tests/check_corpus/: planted_book.py (book-style classes), planted_cs231n.py (CS231n-style functions), each bug
with the diagnosis it must get; cs231n_layers.py and unusual_names.py (correct: every layer must read "ok");
hostile/ (files that raise, exit, loop or print), checked through the command line.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.__main__ import main
from experiments.check import check_class
from experiments.check.layer import run_case
from experiments.check.recognize import FUNCTIONS, LOSSES

CORPUS = Path(__file__).resolve().parent / "check_corpus"
sys.path.insert(0, str(CORPUS))
import planted_book  # noqa: E402
import planted_cs231n  # noqa: E402


def configs_for(name):
    # exact zeros and ties, batch size 1, one random configuration: three, as the command's first three
    return 3


@pytest.mark.parametrize("cls, name, code", planted_book.CASES, ids=[c.__name__ for c, _, _ in planted_book.CASES])
def test_planted_book_bug_is_diagnosed(cls, name, code):
    record, results = check_class(name, cls, np.dtype(np.float64), configs=configs_for(name), seed=0)
    assert record["verdict"].startswith("mismatch: "), record["verdict"]
    assert code in record["codes"], (record["codes"], record["verdict"])


@pytest.mark.parametrize("forward, backward, kind, code", planted_cs231n.CASES,
                         ids=[f"{(b or f).__name__}" for f, b, _, _ in planted_cs231n.CASES])
def test_planted_cs231n_bug_is_diagnosed(forward, backward, kind, code):
    case = LOSSES[kind] if backward is None else FUNCTIONS[kind]
    target = forward if backward is None else (forward, backward)
    record, results = run_case(kind, case, target, np.dtype(np.float64), configs=3, seed=0)
    assert record["verdict"].startswith("mismatch: "), record["verdict"]
    assert code in record["codes"], (record["codes"], record["verdict"])


def test_the_corpus_is_large_enough():
    assert len(planted_book.CASES) + len(planted_cs231n.CASES) >= 30


# -- correct layers under unusual names: no false alarm --------------------------------------------------------
def run_cli(capsys, path, *argv):
    code = main(["check", str(path), "--json", "--configs", "3", *map(str, argv)])
    out = capsys.readouterr()
    return code, {r["layer"]: r for r in json.loads(out.out)}, out.err


@pytest.mark.parametrize("path", ["unusual_names.py", "cs231n_layers.py"])
def test_correct_layers_under_unusual_names_and_function_pairs_all_match(path, capsys):
    code, records, _ = run_cli(capsys, CORPUS / path)
    assert code == 0, {n: r["verdict"] for n, r in records.items() if not r["ok"]}
    assert all(r["ok"] and r["checked"] for r in records.values())
    if path == "unusual_names.py":
        assert {n: r["against"] for n, r in records.items()} == {
            "ReLu": "torch.nn.ReLU", "Dense": "torch.nn.Linear", "FullyConnectedLayer": "torch.nn.Linear",
            "DropoutLayer": "torch.nn.Dropout", "MaxPooling": "torch.nn.MaxPool2d", "Mul": "torch.mul",
            "AddLayer": "torch.add"}
    else:  # every CS231n pair of the file is recognised, and the private helpers are not listed
        assert len(records) == 11 and not any(n.startswith("_") for n in records)


def test_a_correct_layer_computing_in_float32_inside(capsys):
    code, records, _ = run_cli(capsys, CORPUS / "float32_inside.py", "--dtype", "float32", "--configs", "5")
    assert code == 0 and records["Sigmoid"]["ok"], records["Sigmoid"]["verdict"]  # as accurate as torch's float32
    code, records, _ = run_cli(capsys, CORPUS / "float32_inside.py")
    assert code == 1 and "precision" in records["Sigmoid"]["codes"]  # in float64 it is less accurate, and said so


# -- hostile files: never a pass, never hiding the other layers --------------------------------------------------
HOSTILE = CORPUS / "hostile"


@pytest.mark.parametrize("name, message", [
    ("import_error", "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'"),
    ("exit_at_import", "the file's code called sys.exit(0)"),
    ("os_exit_at_import", "the process exited with code 0 while importing it")])
def test_a_file_that_cannot_be_imported_exits_2_with_the_reason(name, message, capsys):
    assert main(["check", str(HOSTILE / f"{name}.py")]) == 2
    out = capsys.readouterr()
    assert out.out == "" and message in out.err and out.err.count("\n") == 1


@pytest.mark.parametrize("name, errors", [("os_exit_in_forward", {"Sigmoid": "exited with code 0"}),
                                          ("raises_and_exits", {"Sigmoid": "backward(dout) raised ValueError",
                                                                "Affine": "called sys.exit(3)"}),
                                          ("loop_in_backward", {"Sigmoid": "did not finish within 2 s"})])
def test_an_exit_a_crash_or_a_loop_is_that_layers_error_and_the_others_are_checked(name, errors, capsys):
    code, records, _ = run_cli(capsys, HOSTILE / f"{name}.py", "--timeout", "2", "--configs", "2")
    assert code == 1
    assert records["Relu"]["ok"] is True  # checked all the same
    for layer, text in errors.items():
        assert records[layer]["verdict"].startswith("error: ") and text in records[layer]["verdict"]
    if name == "raises_and_exits":  # the traceback's tail is the user's frame, not the checker's
        assert "raises_and_exits.py" in records["Sigmoid"]["traceback"]
        assert "experiments/check" not in records["Sigmoid"]["traceback"]


def test_what_the_file_prints_goes_to_stderr_and_the_json_stays_whole(capfd):
    code, records, err = run_cli(capfd, HOSTILE / "prints.py")
    assert code == 0 and list(records) == ["Relu"] and "hello from the learner's file" in err


def test_each_line_is_printed_as_soon_as_its_layer_is_checked(tmp_path, sigint_reaches_children):
    """The table streams: the first layer's line is on stdout while the second layer still loops."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen([sys.executable, "-m", "experiments", "check", str(HOSTILE / "loop_in_backward.py"),
                             "--configs", "1", "--timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env=_env())
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0].startswith("layer") and lines[1].startswith("Relu") and lines[1].rstrip().endswith("ok")
        time.sleep(0.5)
        assert proc.poll() is None  # still checking Sigmoid, whose backward loops
    finally:
        proc.send_signal(signal.SIGINT)  # the command, by its id: it kills its child before it exits
        proc.communicate(timeout=30)
    assert proc.returncode != 0


def _env():
    import os
    return dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
