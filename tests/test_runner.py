"""The runner: command line, errors, reproducibility, atomic reports (interrupted and killed runs)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from experiments import catalogue
from experiments.__main__ import main
from experiments.runner import resolve_device, run_experiment
from experiments.summary import Summary

REPO = Path(__file__).resolve().parent.parent


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def demo():
    """A throwaway experiment that can be told to fail half-way (removed from the registry afterwards)."""
    state = {"fail": None}

    @catalogue.experiment(number=900, name="runner_demo", chapter="-", shows="a test double",
                          durations={"quick": 1, "full": 1},
                          profiles={p: dict(value=1.5) for p in catalogue.PROFILES}, trained=False)
    def run(ctx):
        ctx.log("scratch", "value", ctx.config["value"] + ctx.seed, step=0)
        (ctx.dir / "partial.txt").write_text("half of a report")
        if state["fail"] is not None:
            raise state["fail"]
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, ctx.config["value"]])
        ctx.savefig(fig, "line", "a line")
        ctx.headline(f"value {ctx.config['value']}")

    yield catalogue.REGISTRY["runner_demo"], state
    catalogue.REGISTRY.pop("runner_demo", None)


# -- command line --------------------------------------------------------------------------
def test_list_shows_every_experiment_with_durations(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for e in catalogue.all_experiments():
        assert e.name in out
    assert "quick" in out and "full" in out and "~" in out
    assert main(["list", "--names"]) == 0
    assert capsys.readouterr().out.split()[:6] == ["perceptron_gates", "forward_3layer", "mlp_fit",
                                                   "softmax_stability", "two_layer_mnist", "gradient_check"]


def test_unknown_experiment_lists_the_valid_ones(capsys, tmp_path):
    assert main(["run", "no_such_thing", "--profile", "tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'no_such_thing'" in err
    assert "perceptron_gates" in err and "gradient_check" in err and "'all'" in err
    assert not list(tmp_path.iterdir())
    assert main(["run", "all", "mlp_fit", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("argv,message", [
    (["--profile", "huge"], "invalid choice: 'huge' (choose from 'tiny', 'quick', 'full')"),
    (["--mode", "sideways"], "invalid choice: 'sideways'"),
    (["--dtype", "float16"], "invalid choice: 'float16'"),
    (["--seeds", "0"], "expected a positive integer"),
])
def test_bad_options_are_clear_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(["run", "forward_3layer"] + argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_setting_lists_the_profile_settings(capsys, tmp_path):
    assert main(["run", "two_layer_mnist", "--profile", "tiny", "--set", "iters=5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown setting 'iters'" in err and "iterations" in err


def test_cli_run_with_a_setting_writes_report_and_index(tmp_path, capsys):
    assert main(["run", "forward_3layer", "--profile", "tiny", "--set", "batch=5", "--out", str(tmp_path)]) == 0
    s = Summary.read(tmp_path / "forward_3layer")
    assert s.config["batch"] == 5
    assert "[forward_3layer](forward_3layer/report.md)" in (tmp_path / "README.md").read_text()
    assert "0.31682708" in capsys.readouterr().err  # the headline is printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback when CUDA is absent")
def test_cuda_falls_back_to_cpu_with_a_warning():
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert resolve_device("cuda") == "cpu"
    assert resolve_device("cpu") == "cpu"


# -- reproducibility -----------------------------------------------------------------------
def test_same_seed_writes_the_same_metrics(tmp_path):
    exp = catalogue.get("perceptron_gates")
    a = run_experiment(exp, "tiny", seed=3, out=tmp_path / "a")
    b = run_experiment(exp, "tiny", seed=3, out=tmp_path / "b")
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    sa, sb = (Summary.read(f) for f in (a, b))
    for m in sa.models + sb.models:
        m.pop("time_per_step_s")
    assert sa.models == sb.models and sa.parity == sb.parity


def test_mode_both_keeps_the_two_passes_apart(tmp_path):
    folder = run_experiment(catalogue.get("perceptron_gates"), "tiny", mode="both", seeds=1, out=tmp_path)
    s = Summary.read(folder)
    assert sorted({m["mode"] for m in s.models}) == ["independent", "lockstep"]
    assert any(f.startswith("lockstep_") for f in s.figures) and any(f.startswith("independent_")
                                                                       for f in s.figures)
    assert len(s.figures) == len(set(s.figures))


# -- atomic reports --------------------------------------------------------------------------
def test_failed_run_leaves_the_previous_report_untouched(demo, tmp_path):
    exp, state = demo
    folder = run_experiment(exp, "tiny", out=tmp_path)
    before, index = tree(folder), (tmp_path / "README.md").read_bytes()
    assert "line.png" in before and "partial.txt" in before
    for failure in (KeyboardInterrupt(), RuntimeError("broken half-way")):
        state["fail"] = failure
        with pytest.raises(type(failure)):
            run_experiment(exp, "tiny", seed=1, out=tmp_path)
        assert tree(folder) == before
        assert (tmp_path / "README.md").read_bytes() == index
        assert sorted(p.name for p in tmp_path.iterdir()) == [".experiments-lock", ".experiments-output", "README.md",
                                                              "runner_demo"]


def test_killed_run_leaves_the_previous_report_untouched(demo, tmp_path):
    exp, state = demo
    folder = run_experiment(exp, "tiny", out=tmp_path)
    before, index = tree(folder), (tmp_path / "README.md").read_bytes()
    script = textwrap.dedent(f"""
        import os, signal, sys
        from experiments import catalogue
        from experiments.runner import run_experiment

        @catalogue.experiment(number=900, name="runner_demo", chapter="-", shows="killed",
                              durations={{"quick": 1, "full": 1}},
                              profiles={{p: dict(value=2.5) for p in catalogue.PROFILES}}, trained=False)
        def run(ctx):
            ctx.log("scratch", "value", 2.5, step=0)
            (ctx.dir / "metrics.csv").write_text("half")
            (ctx.dir / "report.md").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)

        run_experiment(catalogue.REGISTRY["runner_demo"], "tiny", out={str(tmp_path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert tree(folder) == before
    assert (tmp_path / "README.md").read_bytes() == index
    # the killed run's temporary folder (and its owner's lock file) is hidden, and the index ignores it
    own = {"README.md", "runner_demo", ".experiments-lock", ".experiments-output"}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in own]
    assert leftovers and all(name.startswith(".runner_demo.tmp") for name in leftovers)
    state["fail"] = None
    run_experiment(exp, "tiny", out=tmp_path)  # the next run still works, and removes what the killed one left
    assert "runner_demo" in (tmp_path / "README.md").read_text()
    assert {p.name for p in tmp_path.iterdir()} == own


def test_report_names_the_commit_the_run_started_from(tmp_path, monkeypatch):
    """A long run outlives commits made meanwhile: the environment is taken when the run starts."""
    import experiments.writing as writing
    head = {"commit": "abc1234"}
    monkeypatch.setattr(writing, "git_commit", lambda: head["commit"])

    @catalogue.experiment(number=901, name="runner_commit_demo", chapter="-", shows="a test double",
                          durations={"quick": 1, "full": 1},
                          profiles={p: {} for p in catalogue.PROFILES}, trained=False)
    def run(ctx):
        head["commit"] = "def5678"  # somebody commits while the experiment trains
        ctx.headline("done")

    try:
        folder = run_experiment(catalogue.REGISTRY["runner_commit_demo"], "tiny", out=tmp_path)
    finally:
        catalogue.REGISTRY.pop("runner_commit_demo", None)
    summary = Summary.read(folder)
    assert summary.environment["git_commit"] == "abc1234"
    assert "- git_commit: abc1234" in (folder / "report.md").read_text()


def test_plain_flag_trains_in_lockstep_on_the_plain_path(tmp_path, monkeypatch):
    """--plain: the scratch twin's plain path (docs/design.md, "Two paths through scratch/"), still in lockstep."""
    import scratch

    monkeypatch.delenv("SCRATCH_PLAIN", raising=False)
    fast_before = scratch.is_fast()
    assert main(["run", "simple_convnet", "--profile", "tiny", "--plain", "--out", str(tmp_path)]) == 0
    s = Summary.read(tmp_path / "simple_convnet")
    assert s.scratch_path == "plain"
    assert s.worst_loss_rel_diff is not None and s.worst_loss_rel_diff <= s.lockstep_tolerance
    assert "--plain" in (tmp_path / "simple_convnet" / "report.md").read_text()
    assert scratch.is_fast() == fast_before and "SCRATCH_PLAIN" not in os.environ, "the setting is restored"
