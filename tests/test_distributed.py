"""Units of work on Dask: the same metrics serially, on a local cluster and on a scheduler with two
``dask worker`` processes; a killed worker loses nothing; a failing unit is retried, then recorded.

Every socket here is on 127.0.0.1 (marker ``loopback``); every process the tests start is stopped by them.
"""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments import catalogue
from experiments.__main__ import main
from experiments.summary import Summary

pytestmark = pytest.mark.loopback

REPO = Path(__file__).resolve().parent.parent
RUN = ["run", "two_layer_mnist", "--profile", "tiny", "--mode", "both", "--seeds", "2"]
START_TIMEOUT = 120  # seconds for a scheduler and two workers to come up on a loaded machine


def metrics(folder: Path) -> bytes:
    # metrics.csv holds no timings (experiments.results): the whole file must be the same.
    return (folder / "two_layer_mnist" / "metrics.csv").read_bytes()


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    assert main(RUN + ["--out", str(out)]) == 0
    return out


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: int, options=()):
    """``dask scheduler`` and ``workers`` x ``dask worker`` (one thread each, with a nanny) on 127.0.0.1,
    stopped (their whole process groups) when the block ends. Yields the scheduler's address."""
    scheduler_file = folder / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(folder / "log.txt", "w")
    common = dict(cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(scheduler_file), *options], **common)]
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.exists():
            assert procs[0].poll() is None, (folder / "log.txt").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        for _ in range(workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(scheduler_file), "--host",
                 "127.0.0.1", "--nthreads", "1", "--no-dashboard", "--memory-limit", "0",
                 "--preload", "experiments.worker", *options], **common))
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith(("tcp://127.0.0.1:", "tls://127.0.0.1:"))
        yield address
    finally:
        for p in reversed(procs):  # workers first, then the scheduler
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers on 127.0.0.1, unencrypted (loopback only), shared by the tests below."""
    from distributed import Client

    with dask_cluster(tmp_path_factory.mktemp("cluster"), 2) as address:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield address


def test_local_cluster_writes_the_same_metrics_as_serial(serial_run, tmp_path, capsys):
    assert main(RUN + ["--out", str(tmp_path), "--workers", "2"]) == 0
    assert metrics(tmp_path) == metrics(serial_run)
    err = capsys.readouterr().err
    assert "Dask: local cluster, 2 workers; dashboard http://127.0.0.1:" in err
    summary = Summary.read(tmp_path / "two_layer_mnist")
    assert summary.engine == "local cluster, 2 workers"
    assert summary.verdict  # independent mode's statistics are in the report and the index
    assert "Do the twins differ? (independent)" in (tmp_path / "two_layer_mnist" / "report.md").read_text()
    assert "twins over seeds (independent)" in (tmp_path / "README.md").read_text()


def test_scheduler_and_two_dask_workers_write_the_same_metrics(serial_run, cluster, tmp_path, capsys):
    assert main(RUN + ["--out", str(tmp_path), "--scheduler", cluster]) == 0
    assert metrics(tmp_path) == metrics(serial_run)
    summary = Summary.read(tmp_path / "two_layer_mnist")
    assert summary.engine == f"scheduler {cluster}, 2 workers"
    assert "warning" not in capsys.readouterr().err  # loopback tcp://: no warning about an open scheduler


def test_a_worker_killed_mid_run_loses_nothing(cluster, tmp_path):
    """Kill -9 a worker while it runs a unit: the scheduler runs that unit again elsewhere, same metrics."""
    from distributed import Client

    slow = RUN[:-1] + ["1", "--mode", "independent", "--set", "iterations=300"]
    assert main(slow + ["--out", str(tmp_path / "serial")]) == 0
    status = {}
    runner = threading.Thread(target=lambda: status.update(rc=main(slow + ["--out", str(tmp_path / "dask"),
                                                                           "--scheduler", cluster])))
    with Client(cluster, timeout="60s") as client:
        runner.start()
        victim = None
        deadline = time.monotonic() + START_TIMEOUT
        while victim is None and time.monotonic() < deadline and runner.is_alive():
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                time.sleep(0.5)  # let the unit get going
                victim = busy[0]
                pid = client.run(os.getpid, workers=[victim])[victim]
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        runner.join(timeout=600)
        assert victim is not None, "no unit was seen running"
        assert victim not in client.scheduler_info()["workers"]  # it really died
        client.wait_for_workers(2, timeout=START_TIMEOUT)  # the nanny restarted it, for the next tests
    assert status.get("rc") == 0
    assert metrics(tmp_path / "dask") == metrics(tmp_path / "serial")


@pytest.fixture
def faulty(tmp_path):
    """An experiment of ctx.map units: key 'flaky' fails once (then succeeds), key 'broken' always fails."""
    attempts = tmp_path / "attempts"
    attempts.mkdir()

    def unit(item, rng):
        marker = attempts / f"{item}-{len(list(attempts.glob(f'{item}-*')))}"
        marker.touch()  # a file, not memory: units may run in other processes
        if item == "broken" or (item == "flaky" and marker.name.endswith("-0")):
            raise ValueError(f"unit {item} cannot go on")
        return float(rng.standard_normal())

    @catalogue.experiment(number=901, name="units_demo", chapter="-", shows="a test double",
                          durations={"quick": 1, "full": 1}, profiles={p: {} for p in catalogue.PROFILES},
                          trained=False)
    def run(ctx):
        items = ["a", "flaky", "broken", "b"]
        for item, value in zip([i for i in items if i != "broken"], ctx.map(unit, items)):
            ctx.log("scratch", f"draw_{item}", value, step=0)
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        ctx.savefig(fig, "nothing", "an empty plot")
        ctx.headline("drew")

    yield attempts
    catalogue.REGISTRY.pop("units_demo", None)


@pytest.mark.parametrize("where", ["serial", "scheduler"])
def test_a_failing_unit_is_retried_once_then_recorded(faulty, where, request, tmp_path, capsys):
    extra = ["--scheduler", request.getfixturevalue("cluster")] if where == "scheduler" else []
    assert main(["run", "units_demo", "--profile", "tiny", "--out", str(tmp_path / "out")] + extra) == 1
    tries = sorted(p.name for p in faulty.iterdir())
    assert tries == ["a-0", "b-0", "broken-0", "broken-1", "flaky-0", "flaky-1"]  # once, and once more
    folder = tmp_path / "out" / "units_demo"
    summary = Summary.read(folder)
    [failure] = summary.failed_units
    assert failure["unit"] == "'broken'" and failure["attempts"] == 2
    assert "ValueError: unit broken cannot go on" in failure["error"]
    report = (folder / "report.md").read_text()
    assert "## Failed units" in report and "unit broken cannot go on" in report
    rows = (folder / "metrics.csv").read_text()
    assert "draw_a" in rows and "draw_flaky" in rows and "draw_b" in rows  # the others completed
    assert "FAILED units of units_demo: 'broken'" in capsys.readouterr().err


def test_map_values_depend_on_keys_not_on_where_units_run(faulty, cluster, tmp_path):
    """The draws of ctx.map's units are the same serially and on the cluster (each seeded by its key)."""
    outs = []
    for name, extra in (("serial", []), ("dask", ["--scheduler", cluster])):
        for p in faulty.iterdir():
            p.unlink()
        main(["run", "units_demo", "--profile", "tiny", "--out", str(tmp_path / name)] + extra)
        outs.append((tmp_path / name / "units_demo" / "metrics.csv").read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("argv,code,message", [
    (["--scheduler", "http://127.0.0.1:8786"], 1, "--scheduler expects tcp://HOST:PORT or tls://HOST:PORT"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], 2, "give one of them"),
    (["--tls-ca-file", __file__], 2, "--tls-* options go with --scheduler tls://"),
    (["--scheduler", "tls://127.0.0.1:8786", "--tls-cert", "/no/such/cert.pem"], 2, "no such file"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--tls-ca-file", __file__, "--tls-cert", __file__, "--tls-key",
      __file__], 1, "use tls://HOST:PORT to encrypt"),
    (["--scheduler", "tls://127.0.0.1:8786", "--tls-ca-file", __file__], 1, "together"),
    (["--scheduler", "tls://127.0.0.1:8786"], 1, "a tls:// scheduler needs --tls-ca-file"),
])
def test_bad_engine_options_are_clear_errors(argv, code, message, tmp_path, capsys):
    assert main(["run", "forward_3layer", "--profile", "tiny", "--out", str(tmp_path)] + argv) == code
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_tls_cluster_with_certificates_as_the_readme_makes_them(serial_run, tmp_path, capsys):
    """docs/scale-out.md's TLS set-up: a CA, one certificate it signs; the run over tls:// writes the same metrics,
    and a client that speaks tcp:// to it gets a one-line error."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca", "-keyout",
            "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test", "-keyout", "node.key", "-out", "node.csr")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
            "-out", "node.pem")
    tls = ["--tls-ca-file", str(tmp_path / "ca.pem"), "--tls-cert", str(tmp_path / "node.pem"),
           "--tls-key", str(tmp_path / "node.key")]
    with dask_cluster(tmp_path, 1, ["--protocol", "tls", *tls]) as address:
        assert address.startswith("tls://127.0.0.1:")
        assert main(RUN + ["--out", str(tmp_path / "out"), "--scheduler", address] + tls) == 0
        assert metrics(tmp_path / "out") == metrics(serial_run)
        capsys.readouterr()
        plain = address.replace("tls://", "tcp://")
        assert main(RUN + ["--out", str(tmp_path / "refused"), "--scheduler", plain]) == 1
        assert "could not reach the Dask scheduler" in capsys.readouterr().err
        assert not (tmp_path / "refused").exists()


def test_variants_are_units_and_a_local_cluster_writes_the_same_report(tmp_path):
    """dropout_overfit's two variants (no dropout, dropout) train as two units: serially here, then on two
    workers, with the same metrics; summary.json and report.md say how many units ran, and where."""
    run = ["run", "dropout_overfit", "--profile", "tiny"]
    assert main(run + ["--out", str(tmp_path / "serial")]) == 0
    assert main(run + ["--out", str(tmp_path / "dask"), "--workers", "2"]) == 0
    serial, dask = (tmp_path / kind / "dropout_overfit" for kind in ("serial", "dask"))
    assert (serial / "metrics.csv").read_bytes() == (dask / "metrics.csv").read_bytes()
    units = [Summary.read(f).units for f in (serial, dask)]
    assert {k: units[0][k] for k in ("ran", "failed", "engine", "where")} == {
        "ran": 2, "failed": 0, "engine": "serial (this process)", "where": {"this process": 2}}
    assert units[1]["ran"] == 2 and units[1]["engine"] == "local cluster, 2 workers"
    assert "this process" not in units[1]["where"] and sum(units[1]["where"].values()) == 2
    for u in units:  # each unit's time is measured inside its map's, so no place is busy more than all the time
        assert 0 < u["unit_seconds"] and 0 < u["busy"] <= 1
        assert u["busy"] == pytest.approx(u["unit_seconds"] / (len(u["where"]) * u["map_seconds"]), abs=0.01)
    assert "| serial (this process): 2 units |" in (serial / "report.md").read_text()
    assert re.search(r"local cluster, 2 workers: 2 units in \d worker process(es)?, busy \d+% of the time",
                     (dask / "report.md").read_text())


def test_local_workers_import_what_units_need_before_they_join():
    """The preload (experiments.worker): torch, its dynamo, the trainers and every catalogue entry are imported
    by the time the local cluster is up, so no unit pays for them."""
    from experiments.distributed import engine

    def imported():
        return [m for m in ("experiments.worker", "torch._dynamo", "experiments.lockstep",
                            "experiments.catalogue.two_layer_mnist") if m in sys.modules]

    with engine(2, dashboard=False) as eng:
        for modules in eng.client.run(imported).values():
            assert modules == ["experiments.worker", "torch._dynamo", "experiments.lockstep",
                               "experiments.catalogue.two_layer_mnist"]
