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

Dask (``distributed``) does the scheduling, the transport and the fault handling:
a unit that raises is retried once (``retries=1``); a worker that dies mid-unit
has its units run again on another worker (the scheduler's
``distributed.scheduler.allowed-failures``); data shared by the units of a map
(the training set) is sent to every worker once (``Client.scatter(broadcast=True)``),
so a lost worker does not lose the only copy. A unit that fails twice is
returned as a ``UnitFailure`` (its key, the error, the traceback) while the
others complete; the runner records it in the report and exits non-zero.
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
    """A unit that raised on every attempt: which one, and why."""

    key: object
    error: str  # "ValueError: ..." (the last attempt's)
    traceback: str
    attempts: int

    def describe(self) -> str:
        return f"unit {self.key!r} failed {self.attempts} times: {self.error}"


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
        raw = np.empty(obj.nbytes + ALIGNMENT, dtype=np.uint8)
        start = -raw.ctypes.data % ALIGNMENT
        out = raw[start:start + obj.nbytes].view(obj.dtype).reshape(obj.shape)
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
    from experiments.results import markdown_table

    rows = [{"unit": f"`{f.key!r}`", "attempts": f.attempts, "error": f.error.splitlines()[0][:200]}
            for f in failures]
    return ("These units of work raised on every attempt; the report is built from the others, and the "
            "command exits non-zero. Tracebacks are in summary.json (`failed_units`).\n\n" + markdown_table(rows))


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

    def __init__(self, client, description: str, cluster=None):
        self.client = client
        self.cluster = cluster
        self.description = description
        self.dashboard = getattr(client, "dashboard_link", None)

    def map(self, fn, items, keys, shared=(), threads=None, label="units") -> list:
        from distributed import as_completed
        from tqdm import tqdm

        items, keys = list(items), list(keys)
        if not items:
            return []
        # broadcast: every worker holds a copy, so a lost worker does not lose the only one.
        shared_futures = self.client.scatter(list(shared), broadcast=True, hash=False) if shared else []
        tag = uuid.uuid4().hex[:8]
        futures = [self.client.submit(execute_unit, fn, Boxed(item), tuple(shared_futures), threads, True,
                                      key=f"{label}-{i}-{_key_text(key)}-{tag}", retries=RETRIES, pure=False)
                   for i, (item, key) in enumerate(zip(items, keys))]
        index = {f.key: i for i, f in enumerate(futures)}
        out = [None] * len(futures)
        bar = tqdm(total=len(futures), desc=f"{label} ({self.description})", unit="unit",
                   disable=not sys.stderr.isatty(), dynamic_ncols=True)
        try:
            for future in as_completed(futures):
                i = index[future.key]
                try:
                    output = future.result()
                    reissue(output)
                    out[i] = output.value
                except Exception as e:  # noqa: BLE001 - recorded as the unit's failure
                    tb = future.traceback()
                    text = "".join(traceback.format_tb(tb)) if tb is not None else traceback.format_exc()
                    out[i] = UnitFailure(keys[i], f"{type(e).__name__}: {e}", text, RETRIES + 1)
                bar.update(1)
        except BaseException:
            self.client.cancel(futures)
            raise
        finally:
            bar.close()
            del shared_futures
        return out

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


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
           dashboard: bool = True):
    """The engine for a run: serial, a local cluster of ``workers`` processes, or ``scheduler``'s cluster.

    Closed (the local cluster stopped) when the block ends, Ctrl-C included.
    """
    if scheduler is None and workers <= 1:
        yield SerialEngine()
        return
    import logging

    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler is None:
            # 127.0.0.1 only: a scheduler runs whatever its clients send, so nothing outside this
            # machine may reach it. memory_limit=0: no pausing or spilling of a worker holding MNIST.
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0" if dashboard else None,
                                   memory_limit=0, silence_logs=logging.ERROR)
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
            client = Client(scheduler, security=security, timeout="30s")
            info = client.scheduler_info()
            n = len(info.get("workers", {}))
            description = f"scheduler {scheduler}, {n} workers"
            if n == 0:
                print(f"warning: {scheduler} has no workers yet: the units wait until one joins", file=sys.stderr)
            _check_worker_versions(client)
    except EngineError:
        raise
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        if cluster is not None:
            cluster.close()
        raise EngineError(f"could not reach the Dask scheduler {scheduler or '(local)'}: "
                          f"{type(e).__name__}: {e}") from e
    eng = DaskEngine(client, description, cluster)
    if "dashboard" not in client.scheduler_info().get("services", {}):
        eng.dashboard = None  # a scheduler started with --no-dashboard: no address to print
    try:
        yield eng
    finally:
        eng.close()


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
