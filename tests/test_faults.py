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
