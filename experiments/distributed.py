"""Units of work, and where they run: in this process, on a local Dask cluster, or on an existing one.

An experiment's independent sub-runs (seeds, variants, search trials) are *units*:
a function, one item, and a key that names the unit (``("relu", 3)``). A unit's
randomness comes from its key (``unit_seed_sequence``), never from the order in
which units run, so a run writes the same metrics whether its units ran one after
another here, in local worker processes or on a cluster. Only the client (the
process that runs ``experiments run``) writes reports, from the gathered results.

Three engines behind one ``map``:

- ``SerialEngine`` (``--workers 1``, the default): one unit after another, in
  this process, as before units existed.
- ``DaskEngine`` on a ``distributed.LocalCluster`` (``--workers N``): N worker
  processes of one thread each, listening on 127.0.0.1 only.
- ``DaskEngine`` on an existing scheduler (``--scheduler tcp://|tls://HOST:PORT``),
  started with ``dask scheduler`` / ``dask worker`` or dask-jobqueue (README,
  "Beyond one machine").

Dask (``distributed``) does the scheduling and the transport: a worker that dies
mid-unit has its units run again on another worker (the scheduler's
``distributed.scheduler.allowed-failures``); data shared by the units of a map
(the training set) is sent to every worker once (``Client.scatter(broadcast=True)``),
so a lost worker does not lose the only copy. The client does the rest
(``DaskEngine.map``): a unit that raises is sent once more (``RETRIES``); a unit
lost with the cluster's last worker (whose scattered data Dask cannot recompute,
so it cancels the units that need them) is sent again with the data scattered
again once a worker is there, up to ``MAX_LOSSES`` times. A unit that fails is
returned as a ``UnitFailure`` (its key, the error, the traceback, what was tried)
while the others complete; the runner records it in the report and exits
non-zero.

Every wait has a deadline and says what it waits for: reaching a scheduler,
handshake included (``probe_scheduler``, ``CONNECT_TIMEOUT_S``), and a cluster
without workers (``wait_for_workers``, ``WAIT_WORKERS_S``, a line every
``PROGRESS_EVERY_S``); both raise ``EngineError``, one line for the user.
"""
import contextlib
import hashlib
import ipaddress
import sys
import traceback
import uuid
import warnings
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

import numpy as np

RETRIES = 1  # a unit that raises runs once more before it is recorded as failed
CONNECT_TIMEOUT_S = 30  # reaching a scheduler: the TCP connect, TLS and the first exchange of messages
MAX_LOSSES = 3  # a unit lost with its worker (not failed) is sent again this many times
WAIT_WORKERS_S = 120  # waiting for a worker to join (at the start, and after the last one was lost)
PROGRESS_EVERY_S = 10  # a line every this many seconds while waiting
PRELOAD = "experiments.worker"  # the module a worker imports as it starts (dask worker --preload)


def unit_seed_sequence(seed: int, key) -> np.random.SeedSequence:
    """The ``SeedSequence`` of the unit named ``key`` in a run of seed ``seed``.

    A child of ``SeedSequence(seed)`` whose spawn key is a hash of ``repr(key)``
    (BLAKE2b, not Python's salted ``hash``), so it is the same in every process,
    on every machine and whatever other units exist or run first. ``key``: str,
    int, or tuples of them.
    """
    _check_key(key)
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
    words = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))
    return np.random.SeedSequence(int(seed), spawn_key=words)


def _check_key(key):
    if isinstance(key, tuple):
        for k in key:
            _check_key(k)
    elif isinstance(key, bool) or not isinstance(key, (str, int)):
        raise TypeError(f"a unit's key must be a str, an int or a tuple of them, got {type(key).__name__} {key!r}")


@dataclass
class UnitFailure:
    """A unit that raised on every attempt, or was lost with its worker too often: which one, and why."""

    key: object
    error: str  # "ValueError: ..." (the last attempt's), or why it was given up
    traceback: str
    attempts: int  # times it ran and raised
    lost: int = 0  # times it was lost with a worker (killed, or its data gone) and sent again

    def describe(self) -> str:
        lost = f" (lost with a worker {self.lost} times)" if self.lost else ""
        if self.attempts == 0:
            return f"unit {self.key!r}: {self.error}"
        return f"unit {self.key!r} failed {self.attempts} times{lost}: {self.error}"


@dataclass
class UnitOutput:
    """What a unit sends back: its value and the warnings it raised (re-issued on the client)."""

    value: object
    warnings: list  # (category, message text, filename, lineno)


class Boxed:
    """An item carried to a worker untouched: Dask (before 2024.12) reads a tuple whose first element is
    callable, anywhere in a task's arguments, as a task of its own and calls it."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __getstate__(self):
        return (self.value,)  # a tuple, never false: pickle skips __setstate__ for a false state

    def __setstate__(self, state):
        (self.value,) = state


def execute_unit(fn: Callable, item, shared: tuple, threads: Optional[int], remote: bool) -> UnitOutput:
    """Run ``fn(item, *shared)`` as one unit, with ``threads`` threads per twin (experiments.threads).

    ``remote``: in a worker process, where progress bars are off (the client's bar counts units)
    and warnings are recorded to be re-issued by the client, where the experiment can see them.
    """
    from experiments import training
    from experiments.threads import threads as thread_limit

    item = item.value if isinstance(item, Boxed) else item

    if not remote:
        with thread_limit(threads):
            return UnitOutput(fn(item, *shared), [])
    training.SHOW_PROGRESS = False
    undo_malloc_trim()
    shared = tuple(align(a) for a in shared)
    with thread_limit(threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn(item, *shared)
    return UnitOutput(value, [(w.category, str(w.message), w.filename, w.lineno) for w in caught])


def undo_malloc_trim() -> None:
    """Give a worker's heap back glibc's usual behaviour, when Dask's nanny has set MALLOC_TRIM_THRESHOLD_.

    The nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` for the worker it starts (to return memory to the
    system). Setting it also turns off glibc's adaptive mmap threshold, so every mini-batch array of a
    few hundred KB is mapped and unmapped afresh, page faults and all: measured here, a TwoLayerNet step
    took 1.9 ms instead of 0.9 ms. Static thresholds at glibc's own adaptive maximum (32 MiB) restore
    the speed. The numbers do not change (allocations stay 16-byte aligned either way). Other C
    libraries: nothing to do.
    """
    import os

    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: its own allocator, its own behaviour


ALIGNMENT = 64


def aligned_empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting on a 64-byte boundary (``align``'s reason)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def align(obj):
    """``obj`` with every array on a 64-byte boundary: arrays are copied, dataclasses (``Data``) updated in place.

    Why: MKL, under torch's matrix products, takes another path for an operand that is not 16-byte aligned,
    and its sums then differ in the last bits (seen: one evaluation loss in a few hundred). NumPy's own
    arrays are at least 16-byte aligned; an array Dask deserialised from a message may sit at any 8-byte
    offset. In place, so that a worker aligns the data it holds for a map once, not once per unit.
    """
    import dataclasses

    if isinstance(obj, np.ndarray):
        if obj.ctypes.data % ALIGNMENT == 0 or obj.size == 0:
            return obj
        out = aligned_empty(obj.shape, obj.dtype)
        out[...] = obj
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, np.ndarray):
                setattr(obj, f.name, align(value))
        return obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(align(v) for v in obj)
    return obj


def keyed_unit(job, *shared):
    """A ``ctx.map`` unit: ``fn(item, rng, *shared)`` with the generator of the unit's own SeedSequence."""
    fn, item, seq = job
    return fn(item, np.random.default_rng(seq), *shared)


class UnitsFailed(RuntimeError):
    """Every unit of a training failed twice: nothing is left to report for it."""


def failures_markdown(failures) -> str:
    """The report's "Failed units" section."""
    from experiments.writing import markdown_table

    rows = [{"unit": f"`{f.key!r}`", "raised": f.attempts, "lost with a worker": f.lost,
             "error": f.error.splitlines()[0][:200]} for f in failures]
    return ("These units of work raised on every attempt, or were lost with their workers too often; the report "
            "is built from the others, and the command exits non-zero. Tracebacks are in summary.json "
            "(`failed_units`).\n\n" + markdown_table(rows))


def dashboard_note() -> str:
    import importlib.util

    return "" if importlib.util.find_spec("bokeh") else " (served once bokeh>=3.1 is installed: pip install bokeh)"


def reissue(output: UnitOutput) -> None:
    for category, message, filename, lineno in output.warnings:
        warnings.warn_explicit(message, category, filename, lineno)


class SerialEngine:
    """Units one after another in this process (``--workers 1``)."""

    description = "serial (this process)"
    dashboard = None

    def map(self, fn, items, keys, shared=(), threads=None, label="units") -> list:
        """``[fn(item, *shared) or UnitFailure]`` in the order of ``items``."""
        out = []
        for item, key in zip(items, keys):
            for attempt in range(1, RETRIES + 2):
                try:
                    out.append(execute_unit(fn, item, shared, threads, remote=False).value)
                    break
                except Exception as e:  # noqa: BLE001 - retried, then recorded; KeyboardInterrupt passes
                    if attempt > RETRIES:
                        out.append(UnitFailure(key, f"{type(e).__name__}: {e}", traceback.format_exc(), attempt))
        return out

    def close(self):
        pass


class DaskEngine:
    """Units on a Dask cluster, through a ``distributed.Client``."""

    def __init__(self, client, description: str, cluster=None, wait_workers: float = None):
        self.client = client
        self.cluster = cluster
        self.description = description
        self.dashboard = getattr(client, "dashboard_link", None)
        self.wait_workers = WAIT_WORKERS_S if wait_workers is None else wait_workers
        self.where = getattr(getattr(client, "scheduler", None), "address", None) or description
        self._no_worker_since = None

    @staticmethod
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def map(self, fn, items, keys, shared=(), threads=None, label="units") -> list:
        """``[fn(item, *shared) or UnitFailure]`` in the order of ``items``, the units run on the cluster.

        A unit that raises is sent once more (``RETRIES``). A unit lost with its worker (the worker died
        while it ran, or the shared data it needed died with the cluster's last worker) is sent again when
        a worker is there, up to ``MAX_LOSSES`` times; while the cluster has no worker, a line says so every
        few seconds, and after ``wait_workers`` seconds ``EngineError`` ends the run.
        """
        from concurrent.futures import CancelledError

        from distributed import wait
        from tqdm import tqdm

        items, keys = list(items), list(keys)
        if not items:
            return []
        tag = uuid.uuid4().hex[:8]
        shared_futures = []
        raised, lost, sent = [0] * len(items), [0] * len(items), [0] * len(items)

        def submit(i):
            nonlocal shared_futures
            if shared and (not shared_futures or any(f.status != "finished" for f in shared_futures)):
                # broadcast: every worker holds a copy, so a lost worker does not lose the only one
                # (unless it was the last: then the data are sent again, to the worker that joins).
                for attempt in range(3):
                    wait_for_workers(self.client, self.where, self.wait_workers, self.say)
                    try:
                        shared_futures = self.client.scatter(list(shared), broadcast=True, hash=False)
                        break
                    except TimeoutError:  # "No valid workers found": the worker left again meanwhile
                        if attempt == 2:
                            raise EngineError(f"could not send the data to a worker of {self.where}: "
                                              "workers keep leaving") from None
            sent[i] += 1
            return self.client.submit(execute_unit, fn, Boxed(items[i]), tuple(shared_futures), threads, True,
                                      key=f"{label}-{i}-{_key_text(keys[i])}-{tag}-{sent[i]}", retries=0,
                                      pure=False)

        running = {submit(i): i for i in range(len(items))}
        out = [None] * len(items)
        bar = tqdm(total=len(items), desc=f"{label} ({self.description})", unit="unit",
                   disable=not sys.stderr.isatty(), dynamic_ncols=True)
        self._no_worker_since = None
        try:
            while running:
                done = [f for f in running if f.done()]
                if not done:
                    try:
                        wait(list(running), timeout=PROGRESS_EVERY_S, return_when="FIRST_COMPLETED")
                    except (TimeoutError, CancelledError):  # a cancelled future: a lost unit, handled below
                        pass
                    done = [f for f in running if f.done()]
                if not done:
                    self._check_workers(len(running))
                for future in done:
                    i = running.pop(future)
                    outcome = self._outcome(future, keys[i], raised, lost, i)
                    if outcome is None:  # sent again
                        running[submit(i)] = i
                        continue
                    out[i] = outcome
                    bar.update(1)
        except BaseException:
            self.client.cancel(list(running))
            raise
        finally:
            bar.close()
            del shared_futures
        return out

    def _outcome(self, future, key, raised, lost, i):
        """The unit's value or ``UnitFailure``; None when it is to be sent again."""
        from concurrent.futures import CancelledError

        from distributed import KilledWorker

        status = future.status
        if status == "finished":
            try:
                output = future.result()
            except CancelledError:  # its result died with its worker before it reached this process
                status = "cancelled"
            else:
                reissue(output)
                return output.value
        if status == "cancelled":  # lost: the data it needed (or its result) died with the last worker
            lost[i] += 1
            if lost[i] > MAX_LOSSES:
                return UnitFailure(key, f"lost with its worker {lost[i]} times; given up (MAX_LOSSES = "
                                        f"{MAX_LOSSES})", "", raised[i], lost[i])
            self.say(f"  unit {key!r} was lost with its worker; sent again when a worker is there "
                     f"(loss {lost[i]} of at most {MAX_LOSSES})")
            return None
        error = future.exception()
        tb = future.traceback()
        text = "".join(traceback.format_tb(tb)) if tb is not None else ""
        if isinstance(error, KilledWorker):  # its workers died while running it, again and again
            return UnitFailure(key, f"KilledWorker: the workers running it died "
                                    f"{_allowed_failures() + 1} times (distributed.scheduler.allowed-failures)",
                               text, raised[i], lost[i] + 1)
        raised[i] += 1
        if raised[i] <= RETRIES:
            return None
        return UnitFailure(key, f"{type(error).__name__}: {error}", text, raised[i], lost[i])

    def _check_workers(self, pending: int) -> None:
        """Nothing finished for a while: with no worker left, say so, and give up after ``wait_workers``."""
        import time

        if self.client.scheduler_info().get("workers"):
            self._no_worker_since = None
            return
        now = time.monotonic()
        if self._no_worker_since is None:
            self._no_worker_since = now
            self.say(f"  no worker left on {self.where}: {pending} units wait for one to join (up to "
                     f"{self.wait_workers:g} s; --wait-workers)")
        elif now - self._no_worker_since > self.wait_workers:
            raise EngineError(f"no worker on {self.where} for {self.wait_workers:g} s (--wait-workers); "
                              f"{pending} units were not done")
        else:
            self.say(f"  still no worker after {now - self._no_worker_since:.0f} s")

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _allowed_failures() -> int:
    import dask

    return int(dask.config.get("distributed.scheduler.allowed-failures", 3))


def _key_text(key) -> str:
    text = "_".join(map(str, key)) if isinstance(key, tuple) else str(key)
    return "".join(c if c.isalnum() or c in "._" else "_" for c in text)[:60]


# -- making an engine ---------------------------------------------------------------------------
class EngineError(RuntimeError):
    """The engine could not start or connect: a one-line message for the command line."""


def check_scheduler_address(address: str, tls_files: dict) -> None:
    """Refuse what is not ``tcp://HOST:PORT`` or ``tls://HOST:PORT``, and TLS files given for tcp://."""
    parts = urlsplit(address)
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or parts.port is None:
        raise EngineError(f"--scheduler expects tcp://HOST:PORT or tls://HOST:PORT, got {address!r}")
    given = [name for name, value in tls_files.items() if value]
    if parts.scheme == "tcp" and given:
        raise EngineError(f"{', '.join(given)} given with a tcp:// scheduler: use tls://HOST:PORT to encrypt")
    if parts.scheme == "tls" and given and len(given) != 3:
        raise EngineError("a tls:// scheduler needs --tls-ca-file, --tls-cert and --tls-key together "
                          "(or none, to use Dask's configuration distributed.comm.tls.*)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def engine(workers: int = 1, scheduler: Optional[str] = None, tls_ca_file=None, tls_cert=None, tls_key=None,
           dashboard: bool = True, connect_timeout: float = CONNECT_TIMEOUT_S, wait_workers: float = WAIT_WORKERS_S):
    """The engine for a run: serial, a local cluster of ``workers`` processes, or ``scheduler``'s cluster.

    ``connect_timeout``: seconds to reach the scheduler, handshake included (``EngineError`` after).
    ``wait_workers``: seconds to wait for a first worker, and later for a new one when every worker was
    lost, saying so every few seconds (``EngineError`` after). Closed (the local cluster stopped) when the
    block ends, Ctrl-C included.
    """
    if scheduler is None and workers <= 1:
        yield SerialEngine()
        return
    import logging

    from distributed import Client, LocalCluster

    client = cluster = None
    try:
        if scheduler is None:
            # 127.0.0.1 only: a scheduler runs whatever its clients send, so nothing outside this
            # machine may reach it. memory_limit=0: no pausing or spilling of a worker holding MNIST.
            # The preload: each worker imports what units need while it starts (experiments.worker).
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0" if dashboard else None,
                                   memory_limit=0, silence_logs=logging.ERROR, preload=[PRELOAD])
            client = Client(cluster)
            description = f"local cluster, {workers} workers"
        else:
            tls = dict(tls_ca_file=tls_ca_file, tls_cert=tls_cert, tls_key=tls_key)
            check_scheduler_address(scheduler, {f"--{k.replace('_', '-')}": v for k, v in tls.items()})
            host = urlsplit(scheduler).hostname
            if scheduler.startswith("tcp://") and not is_loopback(host):
                print(f"warning: {scheduler} is not encrypted and anyone who reaches it can run code on the "
                      "cluster's machines; use tls:// on a shared network (README, 'Beyond one machine')",
                      file=sys.stderr)
            security = None
            if scheduler.startswith("tls://") and not tls_ca_file:
                import dask

                if not dask.config.get("distributed.comm.tls.ca-file", None):
                    raise EngineError("a tls:// scheduler needs --tls-ca-file, --tls-cert and --tls-key (or Dask's "
                                      "configuration distributed.comm.tls.*)")
            if tls_ca_file:
                from distributed.security import Security

                security = Security(tls_ca_file=str(tls_ca_file), tls_client_cert=str(tls_cert),
                                    tls_client_key=str(tls_key), require_encryption=True)
            probe_scheduler(scheduler, security, connect_timeout)
            client = Client(scheduler, security=security, timeout=f"{connect_timeout}s")
            n = wait_for_workers(client, scheduler, wait_workers)
            description = f"scheduler {scheduler}, {n} workers"
            _check_worker_versions(client)
    except BaseException as e:
        for opened in (client, cluster):  # a client left open would keep reconnecting to a scheduler that is gone
            if opened is not None:
                opened.close()
        if isinstance(e, (OSError, TimeoutError, ValueError, TypeError)):
            raise EngineError(f"could not reach the Dask scheduler {scheduler or '(local)'}: "
                              f"{type(e).__name__}: {e}") from e
        raise
    eng = DaskEngine(client, description, cluster, wait_workers)
    if "dashboard" not in client.scheduler_info().get("services", {}):
        eng.dashboard = None  # a scheduler started with --no-dashboard: no address to print
    try:
        yield eng
    finally:
        eng.close()


def probe_scheduler(address: str, security=None, timeout: float = CONNECT_TIMEOUT_S) -> dict:
    """Reach the scheduler at ``address`` and ask who it is, all within ``timeout`` seconds: ``EngineError``
    when it does not answer (``distributed.Client`` waits without end for a peer that accepts the
    connection and never answers). Returns its identity."""
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    args = (security or Security()).get_connection_args("client")

    async def ask():
        comm = await connect(address, timeout=timeout, **args)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        identity = asyncio.run(asyncio.wait_for(ask(), timeout))
    except (asyncio.TimeoutError, TimeoutError):
        raise EngineError(f"the Dask scheduler {address} did not answer within {timeout:g} s (connection and "
                          "handshake; --connect-timeout): is it a Dask scheduler, and reachable?") from None
    except (OSError, ValueError, TypeError) as e:
        raise EngineError(f"could not reach the Dask scheduler {address}: {type(e).__name__}: {e}") from None
    if not isinstance(identity, dict) or identity.get("type") != "Scheduler":
        raise EngineError(f"{address} answered, but not as a Dask scheduler does ({str(identity)[:80]!r})")
    return identity


def wait_for_workers(client, address: str, timeout: float = WAIT_WORKERS_S, say=None) -> int:
    """Wait until the cluster has a worker, saying so every few seconds; their number, or ``EngineError``
    after ``timeout`` seconds. (The scheduler is asked each time: the client's own list of workers lags.)"""
    import time

    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    start, said = time.monotonic(), False
    while True:
        waited = time.monotonic() - start
        if waited >= timeout:
            raise EngineError(f"no worker joined {address} within {timeout:g} s (--wait-workers): start workers "
                              f"(dask worker {address} ...) or wait longer")
        try:
            client.wait_for_workers(1, timeout=min(PROGRESS_EVERY_S if said else 1, timeout - waited))
            return max(1, len(client.scheduler_info().get("workers", {})))
        except (TimeoutError, OSError):
            if not said:
                say(f"waiting for a worker to join {address} (up to {timeout:g} s; --wait-workers)")
                said = True
            else:
                say(f"  still no worker on {address} after {time.monotonic() - start:.0f} s")


def versions() -> dict:
    """What a worker must share with the client for the units' numbers to be the same."""
    import platform

    import torch

    return {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__}


def _check_worker_versions(client) -> None:
    mine = versions()
    for worker, theirs in client.run(versions).items():
        if theirs != mine:
            print(f"warning: worker {worker} has {theirs}, this client {mine}: its units' numbers may differ "
                  "in the last bits from a run here", file=sys.stderr)
