"""Running a layer's work on several cores: the batch split into contiguous parts.

PyTorch runs its CPU kernels on ``torch.get_num_threads()`` threads. NumPy runs
its element-wise passes and copies on one core, and only its matrix products
(OpenBLAS) on several; and OpenBLAS splits the narrow products of a
convolution (16 or 32 output channels) badly, so a second core buys little
there. The samples of a batch are independent, though: a convolution, a
pooling or an element-wise layer can do samples [0, N/2) on one core and
[N/2, N) on another. NumPy releases the GIL inside its loops and BLAS calls,
so two Python threads really do run at once.

    parts(fn, N)  ->  [fn(0, N/2), fn(N/2, N)]   (with two threads, run at the same time)

A convolution loops over many small chunks of samples; ``chunks`` shares
them out as threads come free instead of in fixed halves, since a pool thread
that was asleep starts 60-100 microseconds late on this machine.

While the parts run, OpenBLAS is held to one thread (its own threads would
otherwise compete with ours for the same cores), then set back; so is it for
work too small to split, as long as scratch has more than one thread (an idle
OpenBLAS thread busy-waits for about 0.1 s after each product it shared).

``set_num_threads(n)`` / ``get_num_threads()`` as torch's. The default is the
number of cores this process may use. With one thread ``parts`` calls
``fn(0, N)`` in the calling thread: the plain serial code path.

Results do not depend on timing or on the number of threads: every part
writes its own rows, and sums over the batch (a weight gradient) are made of
fixed chunks whose partial sums are added in chunk order (``summed``).
"""
import contextlib
import contextvars
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_num_threads = _cores()
_pool = None
_inside = threading.local()  # a part that calls parts() or chunks() again runs it serially

# Handing a part to another thread costs tens of microseconds (waking a sleeping thread), about
# what one pass over 1 MiB takes. Parts are at least this big.
MIN_PART_BYTES = 1 << 20


def get_num_threads() -> int:
    """Threads the scratch layers use (the number of parts a batch is split into)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (n >= 1); 1 runs everything serially in the calling thread."""
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise RuntimeError("set_num_threads expects a positive integer")
    if n != _num_threads and _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _num_threads = int(n)


def parts(fn, total: int, nbytes: int = None, blas: bool = False) -> list:
    """``[fn(start, stop), ...]`` over contiguous parts of range(total), the parts run concurrently.

    ``nbytes``: how much data the whole range touches; the range is split only
    into parts of at least MIN_PART_BYTES. Part 0 runs in the calling thread.
    ``blas``: fn multiplies matrices; then OpenBLAS is held to one thread even
    when the work runs serially (see _own_threads). Element-wise work skips
    that (~2 us a call, much of a small layer's time).
    """
    n = min(_num_threads, total)
    if nbytes is not None and MIN_PART_BYTES > 0:
        n = min(n, nbytes // MIN_PART_BYTES)
    if n <= 1 or getattr(_inside, "active", False):
        if not blas:
            return [fn(0, total)]
        with _own_threads():
            return [fn(0, total)]
    bounds = [total * i // n for i in range(n + 1)]
    return _on_threads(n, lambda k: fn(bounds[k], bounds[k + 1]))


def chunks(fn, total: int, size: int) -> list:
    """``[fn(0, size), fn(size, 2 size), ...]`` over range(total), the chunks shared out as threads come free.

    For loops of many similar chunks (a convolution's): the calling thread
    starts on the first chunk at once and the pool's threads take the next
    free ones when they wake, so a late thread costs no waiting at the end.
    The results come back in chunk order whoever computed them, so a sum of
    them in that order is the same with any number of threads.
    """
    starts = range(0, total, size)
    n = min(_num_threads, len(starts))
    if n <= 1 or getattr(_inside, "active", False):
        with _own_threads():
            return [fn(a, min(a + size, total)) for a in starts]
    results = [None] * len(starts)
    free = iter(range(len(starts)))
    lock = threading.Lock()

    def take_free_chunks(_):
        while True:
            with lock:
                i = next(free, None)
            if i is None:
                return
            results[i] = fn(starts[i], min(starts[i] + size, total))

    _on_threads(n, take_free_chunks)
    return results


def summed(fn, total: int, size: int):
    """``chunks(fn, total, size)`` added up in chunk order: the same sum with any number of threads."""
    results = chunks(fn, total, size)
    for other in results[1:]:
        results[0] += other
    return results[0]


def elementwise(fn, *arrays) -> None:
    """``fn(*pieces)`` on matching pieces of same-shaped arrays, element ranges run concurrently.

    For in-place element-wise updates (an optimizer's): the arrays are cut into
    contiguous flat ranges. Arrays that are not all C-contiguous go whole, and
    so does work too small for two parts, straight away: ``fn`` calls no BLAS,
    so OpenBLAS's threads need no setting, and an optimizer calls this once
    per parameter, many of them biases of a few elements (the checks of the
    general path cost more than their update).
    """
    nbytes = sum(a.nbytes for a in arrays)
    if _num_threads == 1 or nbytes < 2 * MIN_PART_BYTES or not all(a.flags.c_contiguous for a in arrays):
        fn(*arrays)
        return
    flat = [a.reshape(-1) for a in arrays]
    parts(lambda a, b: fn(*(f[a:b] for f in flat)), flat[0].size, nbytes=nbytes)


def _own_threads():
    """Work too small to split still keeps OpenBLAS to one thread when scratch has threads of its own.

    A multi-threaded OpenBLAS product leaves its threads busy-waiting for about
    0.1 s, which takes the cores that scratch's next split layer wants (a
    DeepConvNet step 10% slower). With one scratch thread OpenBLAS is left as
    the user set it. (Inside a part OpenBLAS is on one thread already.)
    """
    return blas_threads(1) if _num_threads > 1 else contextlib.nullcontext()


def _on_threads(n: int, work) -> list:
    """``[work(0), ..., work(n-1)]`` run at once: work(0) in the calling thread, the others on the pool.

    OpenBLAS is on one thread meanwhile. Returns when every one has ended, even
    when one fails (then the first failure is raised).
    """
    pool = _executor()
    with blas_threads(1):
        # Each part in a copy of the caller's context: np.errstate is a context variable, so a part on the
        # pool warns, ignores or raises as the part in this thread does.
        futures = [pool.submit(contextvars.copy_context().run, _run, work, k) for k in range(1, n)]
        try:
            first = _run(work, 0)
        finally:
            wait(futures)  # nothing outlives the call
        return [first] + [f.result() for f in futures]


def _run(work, k):
    _inside.active = True  # a part that splits again runs serially
    try:
        return work(k)
    finally:
        _inside.active = False


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads - 1, thread_name_prefix="scratch")
    return _pool


def _forget_pool() -> None:
    # A forked child has the pool object but not its threads.
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


# -- NumPy's BLAS: how many threads its matrix products use --------------------
# OpenBLAS reads OPENBLAS_NUM_THREADS only when it loads; at run time its own
# ``*_set_num_threads`` does it. threadpoolctl finds the BLAS libraries loaded in
# this process (OpenBLAS, MKL, BLIS; on Linux, macOS and Windows) and wraps
# those functions. Its ``threadpool_limits`` context costs ~360 us a use (it
# inspects every loaded library each time) and ``ThreadpoolController.limit``
# ~7 us; the controllers of the libraries, found once, cost ~2 us for a get and
# two sets, what the ctypes look-ups written here before cost (~2.5 us):
# docs/paths.md, "BLAS thread control". Every layer with a matrix product
# enters blas_threads, so only those controllers are called per layer.
_controllers = None  # threadpoolctl's controllers of the BLAS libraries NumPy loaded, found once


def _blas_controllers() -> list:
    global _controllers
    if _controllers is None:
        import numpy  # noqa: F401  (loads the BLAS, so that it can be found)
        import threadpoolctl

        _controllers = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return _controllers


def get_blas_threads():
    """Threads of NumPy's BLAS (the first one found), or None where none can be controlled."""
    controllers = _blas_controllers()
    return controllers[0].get_num_threads() if controllers else None


def set_blas_threads(n: int) -> None:
    for controller in _blas_controllers():
        controller.set_num_threads(int(n))


class blas_threads:
    """``with blas_threads(n):`` OpenBLAS on ``n`` threads inside the block, set back after it.

    A class rather than a generator-based context manager: that one costs
    ~2 us a use, and every call of a layer with a matrix product enters one.
    """

    def __init__(self, n: int):
        self.n = n
        self.before = None

    def __enter__(self):
        self.before = get_blas_threads()
        if self.before not in (None, self.n):
            set_blas_threads(self.n)

    def __exit__(self, *exc):
        if self.before not in (None, self.n):
            set_blas_threads(self.before)
