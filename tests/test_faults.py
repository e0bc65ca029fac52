"""Fault injection: what a user sees after each fault (docs/design.md, "What happens when...").

Folders the runner does not own, kills between the two renames of a swap, concurrent runs, a full disk,
a scheduler that never answers, a worker killed with SIGKILL and another started, a package index that
never answers. Every socket is on 127.0.0.1; every process started here is stopped by its id.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from experiments import catalogue, writing
from experiments.__main__ import main
from experiments.runner import run_experiment
from experiments.writing import MARKER, REPORT_MARKER, OutputError

REPO = Path(__file__).resolve().parent.parent
OWN = {MARKER, ".experiments-lock", "README.md"}  # what an output folder holds besides its reports


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def demo():
    """A quick experiment whose run can be told to call a hook (to pause, fail, or signal)."""
    state = {"hook": None, "value": 1.5}

    @catalogue.experiment(number=902, name="faults_demo", chapter="-", shows="a test double",
                          durations={"quick": 1, "full": 1}, profiles={p: {} for p in catalogue.PROFILES},
                          trained=False)
    def run(ctx):
        ctx.log("scratch", "value", state["value"], step=0)
        if state["hook"] is not None:
            state["hook"](ctx)
        ctx.headline(f"value {state['value']}")

    yield catalogue.REGISTRY["faults_demo"], state
    catalogue.REGISTRY.pop("faults_demo", None)


def run_cli(out, *extra):
    return main(["run", "faults_demo", "--profile", "tiny", "--out", str(out), *extra])


# -- the runner writes only what it owns ----------------------------------------------------------------
def test_a_new_folder_becomes_the_runners_and_holds_the_marker(demo, tmp_path):
    assert run_cli(tmp_path / "new") == 0
    names = {p.name for p in (tmp_path / "new").iterdir()}
    assert names == OWN | {"faults_demo"}
    assert (tmp_path / "new" / "faults_demo" / REPORT_MARKER).is_file()
    assert "faults_demo" in (tmp_path / "new" / "README.md").read_text()
    assert run_cli(tmp_path / "new") == 0  # and its own report is replaced on the next run


def test_the_committed_reference_folders_are_marked():
    assert (REPO / "reports" / MARKER).is_file()
    assert (REPO / "reports" / "independent" / MARKER).is_file()


@pytest.mark.parametrize("where", ["", ".", "experiments", "scratch/nn", "checkout"])
def test_source_trees_and_the_empty_path_are_refused(demo, where, tmp_path, capsys):
    readme = (REPO / "README.md").read_bytes()
    if where == "checkout":
        (tmp_path / "pyproject.toml").write_text("[project]\n")
        out = str(tmp_path)
    else:
        out = where if where in ("", ".") else str(REPO / where)
    cwd = os.getcwd()
    os.chdir(REPO)  # "." is the repository
    try:
        if where == "":
            with pytest.raises(SystemExit) as e:
                run_cli(out)
            assert e.value.code == 2
            assert "--out: expected a folder, got an empty string" in capsys.readouterr().err
        else:
            assert run_cli(out) == 2
            err = capsys.readouterr().err
            assert "refusing to write reports into" in err and "give --out a folder of its own" in err
            assert "[902]" not in err  # refused before anything ran
    finally:
        os.chdir(cwd)
    assert (REPO / "README.md").read_bytes() == readme
    assert not (REPO / "faults_demo").exists() and not (REPO / MARKER).exists()


def test_a_users_folder_with_a_readme_is_refused_before_training(demo, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("my notes\n")
    ran = []
    demo[1]["hook"] = lambda ctx: ran.append(1)
    assert run_cli(folder) == 2
    err = capsys.readouterr().err
    assert f"{folder} is not empty and is not an output folder of this tool (no {MARKER} in it" in err
    assert "give --out a new or empty folder" in err
    assert not ran
    assert tree(folder) == {"README.md": b"my notes\n"} and {p.name for p in folder.iterdir()} == {"README.md"}


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_folder_or_file_named_like_the_experiment_is_not_replaced(demo, kind, tmp_path, capsys):
    assert run_cli(tmp_path) == 0  # the folder is the runner's
    target = tmp_path / "faults_demo"
    import shutil
    shutil.rmtree(target)
    if kind == "folder":
        target.mkdir()
        (target / "thesis.tex").write_text("chapter 1\n")
    else:
        target.write_text("chapter 1\n")
    before = tree(tmp_path)
    assert run_cli(tmp_path) == 2
    err = capsys.readouterr().err
    assert f"{target} exists and is a {kind} this tool did not write" in err and "nothing was written" in err
    assert tree(tmp_path) == before


def test_an_output_folder_from_before_the_markers_is_adopted(demo, tmp_path):
    assert run_cli(tmp_path) == 0
    (tmp_path / MARKER).unlink()
    (tmp_path / "faults_demo" / REPORT_MARKER).unlink()  # as written before the markers existed
    assert run_cli(tmp_path) == 0
    assert (tmp_path / MARKER).is_file() and (tmp_path / "faults_demo" / REPORT_MARKER).is_file()


def test_the_index_is_never_written_into_a_folder_the_runner_does_not_own(tmp_path):
    from experiments.results import write_index

    (tmp_path / "README.md").write_text("mine\n")
    with pytest.raises(OutputError, match="refusing to write the index"):
        write_index(tmp_path, [])
    assert (tmp_path / "README.md").read_text() == "mine\n"


# -- atomic for real ----------------------------------------------------------------------------------------
KILLED_RUN = """
import errno, os, signal, sys
from experiments import catalogue, writing
from experiments.runner import run_experiment

@catalogue.experiment(number=902, name="faults_demo", chapter="-", shows="killed", durations={"quick": 1, "full": 1},
                      profiles={p: {} for p in catalogue.PROFILES}, trained=False)
def run(ctx):
    ctx.log("scratch", "value", 2.5, step=0)
    ctx.headline("value 2.5")

def kill(*args):
    os.kill(os.getpid(), signal.SIGKILL)
"""
AFTER_EXCHANGE = """
real = writing.exchange
def exchange(a, b):
    real(a, b)
    kill()
writing.exchange = exchange
"""
BETWEEN_RENAMES = """
def exchange(a, b):
    raise OSError(errno.ENOSYS, "no exchange on this system")
writing.exchange = exchange
writing._between_renames = kill
"""


def killed_run(out: Path, patch: str):
    script = KILLED_RUN + patch + f"\nrun_experiment(catalogue.REGISTRY['faults_demo'], 'tiny', out={str(out)!r})\n"
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def headline(folder: Path) -> str:
    return json.loads((folder / "summary.json").read_text())["headline_text"]


def hidden(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name not in OWN | {MARKER} and p.name.startswith("."))


def test_killed_after_the_exchange_the_new_report_is_in_place_and_the_old_one_is_cleaned(demo, tmp_path, capsys):
    assert run_cli(tmp_path) == 0
    index = (tmp_path / "README.md").read_bytes()
    killed_run(tmp_path, AFTER_EXCHANGE)
    final = tmp_path / "faults_demo"
    assert headline(final) == "value 2.5" and (final / REPORT_MARKER).is_file()  # the new report, whole
    [left] = [n for n in hidden(tmp_path) if not n.endswith(".lock")]
    assert left.startswith(".faults_demo.tmp") and headline(tmp_path / left) == "value 1.5"  # the old one
    assert (tmp_path / "README.md").read_bytes() == index  # the killed run did not get to the index
    capsys.readouterr()
    assert run_cli(tmp_path) == 0
    assert f"cleaned: removed {tmp_path / left}, the unfinished report of a killed run" in capsys.readouterr().err
    assert hidden(tmp_path) == [] and headline(final) == "value 1.5"


def test_killed_between_the_two_renames_the_next_run_puts_the_old_report_back(demo, tmp_path, capsys):
    """Where there is no atomic exchange: the documented recovery."""
    assert run_cli(tmp_path) == 0
    final = tmp_path / "faults_demo"
    before = tree(final)
    killed_run(tmp_path, BETWEEN_RENAMES)
    assert not final.exists()
    [old] = [n for n in hidden(tmp_path) if n.startswith(".faults_demo.old")]
    assert tree(tmp_path / old) == before  # the previous report, whole, in a hidden folder
    capsys.readouterr()

    def fail(ctx):
        raise RuntimeError("broken half-way")
    demo[1]["hook"] = fail  # the next run fails: the recovered report must stay
    assert run_cli(tmp_path) == 1
    err = capsys.readouterr().err
    assert f"cleaned: recovered {final} (the previous report) from {tmp_path / old}, left by a killed run" in err
    assert "FAILED: faults_demo (its previous report, if any, is untouched)" in err
    assert tree(final) == before and hidden(tmp_path) == []


def test_the_fallback_swap_without_a_kill_leaves_nothing_behind(demo, tmp_path, monkeypatch):
    assert run_cli(tmp_path) == 0
    seen = []

    def no_exchange(a, b):
        raise OSError(errno.ENOSYS, "no exchange on this system")

    monkeypatch.setattr(writing, "exchange", no_exchange)
    monkeypatch.setattr(writing, "_between_renames", lambda old, final: seen.append(
        (old.name, final.exists(), headline(old))))
    demo[1]["value"] = 2.5
    assert run_cli(tmp_path) == 0
    assert seen == [(f".faults_demo.old{os.getpid()}", False, "value 1.5")]
    assert headline(tmp_path / "faults_demo") == "value 2.5" and hidden(tmp_path) == []


def test_there_is_no_instant_without_a_report(demo, tmp_path):
    """A reader polling the report while it is replaced five times always finds one (renameat2 exchange)."""
    assert run_cli(tmp_path) == 0
    summary = tmp_path / "faults_demo" / "summary.json"
    stop, seen = threading.Event(), {"present": 0, "missing": 0}

    def watch():
        while not stop.is_set():
            seen["present" if summary.exists() else "missing"] += 1

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for value in range(5):
            demo[1]["value"] = float(value)
            assert run_cli(tmp_path) == 0
    finally:
        stop.set()
        watcher.join()
    assert seen["missing"] == 0 and seen["present"] > 0
    assert headline(tmp_path / "faults_demo") == "value 4.0"


def test_two_runs_into_one_folder_at_once_both_complete(demo, tmp_path, capsys):
    assert run_cli(tmp_path) == 0
    both_training = threading.Barrier(2, timeout=60)
    demo[1]["hook"] = lambda ctx: both_training.wait()
    codes = []
    runs = [threading.Thread(target=lambda: codes.append(run_cli(tmp_path))) for _ in range(2)]
    for t in runs:
        t.start()
    for t in runs:
        t.join(timeout=120)
    assert codes == [0, 0]
    assert "FAILED" not in capsys.readouterr().err
    assert hidden(tmp_path) == [] and (tmp_path / "faults_demo" / "report.md").is_file()


def test_a_run_waits_for_another_runs_commit_and_says_so(demo, tmp_path, capsys, monkeypatch):
    assert run_cli(tmp_path) == 0
    held, release = threading.Event(), threading.Event()

    def other_run():
        with writing.folder_lock(tmp_path):
            held.set()
            release.wait(30)

    t = threading.Thread(target=other_run)
    t.start()
    held.wait(30)
    threading.Timer(1.0, release.set).start()
    try:
        assert run_cli(tmp_path) == 0
    finally:
        release.set()
        t.join()
    assert f"waiting for another run (pid {os.getpid()}) that is writing into {tmp_path}" in capsys.readouterr().err
    # and one that waits too long gives up with a line that says why, before anything ran
    monkeypatch.setattr(writing, "LOCK_WAIT_S", 0.5)
    release.clear()
    held.clear()
    t = threading.Thread(target=other_run)
    t.start()
    held.wait(30)
    try:
        assert run_cli(tmp_path) == 1
    finally:
        release.set()
        t.join()
    assert f"held {tmp_path / '.experiments-lock'} for 0 s" in capsys.readouterr().err


def test_a_full_disk_while_writing_the_index_says_the_report_is_in_place(demo, tmp_path, capsys, monkeypatch):
    from experiments import results

    assert run_cli(tmp_path) == 0
    index = (tmp_path / "README.md").read_bytes()

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results, "write_text_atomic", full)
    demo[1]["value"] = 2.5
    assert run_cli(tmp_path) == 1
    err = capsys.readouterr().err
    assert (f"FAILED: faults_demo: the new report is in place at {tmp_path / 'faults_demo'}, but the index in "
            f"{tmp_path} was not updated: OSError: [Errno 28] No space left on device") in err
    assert "untouched" not in err
    assert headline(tmp_path / "faults_demo") == "value 2.5" and (tmp_path / "README.md").read_bytes() == index


def test_a_full_disk_while_writing_the_report_leaves_the_previous_one(demo, tmp_path, capsys):
    assert run_cli(tmp_path) == 0
    before = tree(tmp_path)

    def full(ctx):
        (ctx.dir / "metrics.csv").write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    demo[1]["hook"] = full
    assert run_cli(tmp_path) == 1
    assert "FAILED: faults_demo (its previous report, if any, is untouched)" in capsys.readouterr().err
    assert tree(tmp_path) == before and hidden(tmp_path) == []
