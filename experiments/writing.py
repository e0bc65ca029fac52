"""Writing reports, for every command: where they go (the reference ``reports/``, everyday ``runs/``),
which folders the runner may write in, atomic report folders, the environment block, Markdown tables.

(What a training run's report contains is the business of experiments/summary.py, results.py, plots.py, report_page.py and index.py.)

**The runner writes only what it owns** (docs/design.md, "What happens when..."). An *output folder*
(``runs/``, ``reports/``, a ``--out DIR``) holds the marker file ``.experiments-output``, written with its
first report; a folder that is not empty and has no marker is refused before anything runs, and so is a
source tree (the repository, a folder holding ``.git`` or ``pyproject.toml``, the package folders). Each
report folder holds ``.experiments-report``; an existing ``<out>/NAME`` is replaced only when it is such a
report (or, written before the markers existed, a folder of plain files with a ``report.md`` in a marked
output folder). Anything else is refused, with one line that says why and what to do.

**Atomic.** ``atomic_dir(final)`` yields a hidden temporary folder beside ``final``; only when the block
finishes is it swapped in. On Linux the swap is one ``renameat2(RENAME_EXCHANGE)`` (Python's ``os`` has no
such call; ctypes reaches libc's), so there is no instant at which neither the old report nor the new one
is at ``final``. Elsewhere (or on a file system without the exchange) the old report is first renamed to
``.NAME.old<pid>``; a run killed between the two renames leaves it there, and the next run on that folder
puts it back. Commits (the swap, the index, the clean-up) hold an ``flock`` on ``<out>/.experiments-lock``,
so concurrent runs on one folder take turns; each temporary folder's owner holds an ``flock`` on its
``.lock`` file beside it, so the next run removes only what killed runs left. Failures name what is where.
"""
import contextlib
import datetime
import math
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The committed reference reports (full profile), which the README quotes. Everyday
# runs go to runs_dir(), which git ignores, and are compared with them.
REPORTS = REPO / "reports"


def runs_dir() -> Path:
    """Where runs without ``--out`` write: ``$DLSCRATCH_RUNS``, else ``runs/`` at the repository root."""
    return Path(os.environ.get("DLSCRATCH_RUNS") or REPO / "runs")


def is_reference(out) -> bool:
    """Is ``out`` the committed reference folder (``reports/``)?"""
    return Path(out).resolve() == REPORTS.resolve()


# -- which folders the runner may write in ------------------------------------------------------------
MARKER = ".experiments-output"  # in an output folder: the runner's own
REPORT_MARKER = ".experiments-report"  # in every report folder the runner wrote
LOCK = ".experiments-lock"  # flock'ed while a run commits into the folder
SOURCE_FOLDERS = ("scratch", "torch_ref", "experiments", "tests", "docs", "tools", "examples", ".git")
LOCK_WAIT_S = 120  # how long a commit waits for another run's commit on the same folder
MARKER_TEXT = ("This folder is an output folder of `python -m experiments` (its reports and README.md, the "
               "index).\nThe runner replaces here only the report folders it wrote (each holds "
               f"{REPORT_MARKER}) and README.md.\n")


class OutputError(RuntimeError):
    """The runner will not write here (a folder it does not own), or a commit failed: one line, saying what is
    where and what to do."""


def source_tree(folder):
    """Why ``folder`` is a source tree (the repository, a package folder, a checkout), or None."""
    p = Path(folder).resolve()
    if p == REPO:
        return "the repository root"
    for name in SOURCE_FOLDERS:
        if p == REPO / name or REPO / name in p.parents:
            return f"inside the project's source folder {name}/"
    for name in (".git", "pyproject.toml"):
        if (p / name).exists():
            return f"a source tree (it holds {name})"
    return None


def owns(folder) -> bool:
    """Is ``folder`` an output folder of the runner (it holds the marker)?"""
    return (Path(folder) / MARKER).is_file()


def _default_runs(folder) -> bool:
    # runs/ at the repository root is the runner's by definition (ignored by git, its default output)
    return Path(folder).resolve() == (REPO / "runs").resolve()


def _is_index(path: Path) -> bool:
    try:
        head = path.read_text(errors="replace")[:400]
    except OSError:
        return False
    return head.startswith(("# Runs\n", "# Reports\n")) and "written by `python -m experiments run" in head


def _plain_report(folder: Path) -> bool:
    """A folder of plain files with a report.md: how a report looked before the markers existed."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    return (folder / "report.md").is_file() and all(e.is_file() and not e.is_symlink() for e in entries)


def is_runner_report(folder) -> bool:
    """Did the runner write the folder ``folder`` (checked, not assumed)?"""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    if (folder / REPORT_MARKER).is_file():
        return True
    parent = folder.parent
    return _plain_report(folder) and (owns(parent) or _default_runs(parent) or _adoptable(parent))


_TMP = re.compile(r"^\.(?P<name>.+)\.tmp[A-Za-z0-9_]+$")  # tempfile.mkdtemp's names
_OLD = re.compile(r"^\.(?P<name>.+)\.old[0-9]+$")
_TMP_LOCK = re.compile(r"^\..+\.tmp[A-Za-z0-9_]+\.lock$")
_INDEX_TMP = re.compile(r"^\.README\.md\.[A-Za-z0-9_]+$")


def _stale_name(name: str) -> bool:
    return any(r.match(name) for r in (_TMP, _OLD, _TMP_LOCK, _INDEX_TMP))


def _adoptable(folder: Path) -> bool:
    """An output folder written before the markers existed: only the runner's index, its reports, and what
    killed runs left."""
    entries = [e for e in folder.iterdir() if e.name != LOCK]
    return bool(entries) and all(
        (e.name == "README.md" and _is_index(e)) or _stale_name(e.name)
        or (e.is_dir() and not e.is_symlink() and ((e / REPORT_MARKER).is_file() or _plain_report(e)))
        for e in entries)


def check_target(final) -> None:
    """Raise ``OutputError`` unless a report may be written at ``final`` (see the module docstring).

    Nothing is written: the commands call it before their work starts, and ``atomic_dir`` again when it
    begins and when it commits.
    """
    final = Path(final)
    parent = final.parent
    for where in (parent, final):
        reason = source_tree(where)
        if reason:
            raise OutputError(f"refusing to write reports into {where}: it is {reason}; give --out a folder of "
                              "its own (default runs/)")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{parent} is a file, not a folder: give --out a folder")
    if parent.is_dir() and not owns(parent) and not _default_runs(parent):
        visible = [e.name for e in parent.iterdir() if e.name != LOCK]
        if visible and not _adoptable(parent):
            raise OutputError(
                f"{parent} is not empty and is not an output folder of this tool (no {MARKER} in it; it holds "
                f"{', '.join(sorted(visible)[:3])}{', ...' if len(visible) > 3 else ''}): give --out a new or "
                f"empty folder; if it holds only this tool's reports, create {parent / MARKER} to let it write "
                "there")
    if final.exists() or final.is_symlink():
        if not is_runner_report(final):
            what = "a folder" if final.is_dir() and not final.is_symlink() else "a file"
            raise OutputError(f"{final} exists and is {what} this tool did not write (no {REPORT_MARKER} in it): "
                              "move it away or give another --out; nothing was written")


# -- locks -------------------------------------------------------------------------------------------
try:
    import fcntl
except ImportError:  # not POSIX: no locks; the docs say what concurrent runs may then do
    fcntl = None


def _try_lock(fd) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextlib.contextmanager
def folder_lock(folder, wait_s: float = None, say=None):
    """Hold ``<folder>/.experiments-lock`` (``flock``): one commit at a time in ``folder``.

    While another run holds it, says so (``say``, default stderr) and waits up to ``wait_s`` seconds
    (default :data:`LOCK_WAIT_S`), then raises ``OutputError``.
    """
    import sys
    import time

    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    path = Path(folder) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            say(f"  waiting for another run (pid {holder}) that is writing into {folder} (up to {wait_s:g} s)")
            deadline = time.monotonic() + wait_s
            while not _try_lock(fd):
                if time.monotonic() > deadline:
                    raise OutputError(f"another run (pid {holder}) held {path} for {wait_s:g} s")
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _owner_lock(tmp: Path):
    """The descriptor, flock'ed, of ``tmp``'s owner file: while it is held, ``tmp`` belongs to a live run."""
    fd = os.open(tmp.parent / f"{tmp.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    _try_lock(fd)
    return fd


def clean_stale(folder, say=None) -> list:
    """Recover or remove what killed runs left in ``folder`` (call it holding ``folder_lock``): a hidden
    ``.NAME.old<pid>`` goes back to ``NAME`` when ``NAME`` is missing (else it is removed), a ``.NAME.tmp*``
    whose owner is gone is removed, and so are half-written index files. Returns one line per action."""
    import sys

    folder = Path(folder)
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    done = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if entry.is_symlink():
            continue
        if _INDEX_TMP.match(name) and entry.is_file():
            entry.unlink()
            done.append(f"removed {entry}, an index a killed run was writing")
        elif _OLD.match(name) and entry.is_dir():
            target = folder / _OLD.match(name)["name"]
            if not target.exists():
                entry.rename(target)
                done.append(f"recovered {target} (the previous report) from {entry}, left by a killed run")
            else:
                shutil.rmtree(entry)
                done.append(f"removed {entry}, a replaced report a killed run had not removed")
        elif _TMP.match(name) and entry.is_dir():
            lock = folder / f"{name}.lock"
            if lock.exists():
                fd = os.open(lock, os.O_RDWR)
                try:
                    if not _try_lock(fd):
                        continue  # a live run's
                finally:
                    os.close(fd)
            shutil.rmtree(entry)
            lock.unlink(missing_ok=True)
            done.append(f"removed {entry}, the unfinished report of a killed run")
        elif _TMP_LOCK.match(name) and not (folder / name[:-5]).exists():
            entry.unlink(missing_ok=True)
    for line in done:
        say(f"  cleaned: {line}")
    return done


# -- the swap -------------------------------------------------------------------------------------------
RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def exchange(a, b) -> None:
    """Swap the paths ``a`` and ``b`` atomically (Linux ``renameat2(RENAME_EXCHANGE)``); ``OSError`` with
    errno ENOSYS, EINVAL or ENOTSUP where the system or the file system cannot."""
    import ctypes
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "no renameat2 outside Linux")
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        call = libc.renameat2
    except AttributeError:  # glibc before 2.28
        raise OSError(errno.ENOSYS, "this C library has no renameat2") from None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if call(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def _between_renames(old: Path, final: Path) -> None:
    """Called where the fallback swap has moved the old report away and not yet put the new one in (a hook
    for the fault-injection tests)."""


def _swap_in(tmp: Path, final: Path) -> None:
    """Put ``tmp`` at ``final``; an existing ``final`` ends up at ``tmp``'s path (removed by the caller)."""
    import errno

    if not final.exists():
        tmp.rename(final)
        return
    try:
        exchange(tmp, final)
        return
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OutputError(f"could not swap the new report {tmp} into {final}: {e}; the previous report is "
                              f"still at {final} and the new one at {tmp}") from e
    old = final.parent / f".{final.name}.old{os.getpid()}"
    final.rename(old)
    _between_renames(old, final)
    try:
        tmp.rename(final)
    except OSError as e:
        raise OutputError(f"could not move the new report {tmp} to {final}: {e}; the previous report is at "
                          f"{old} (the next run on {final.parent} puts it back)") from e
    old.rename(tmp)  # removed by the caller, as after an exchange


@contextlib.contextmanager
def _deferred_interrupt():
    """Ctrl-C waits until the block is done (main thread only: signals are delivered there)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def atomic_dir(final, then=None):
    """Yield a temporary folder that replaces ``final`` when the block completes; the previous report stays at
    ``final`` until that instant, and stays as it was if the block raises.

    ``check_target(final)`` first (``OutputError`` if the runner does not own the place). ``then()``: called
    after the swap, still holding the folder's lock (the runner writes its index there); if it fails, the
    ``OutputError`` says that the report is in place and what was not updated.
    """
    final = Path(final)
    check_target(final)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(parent):
        clean_stale(parent)
        # Made under the folder's lock together with its owner's lock: never seen without an owner.
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp", dir=parent))
        owner = _owner_lock(tmp)
    try:
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is for everyone to read
            yield tmp
            (tmp / REPORT_MARKER).write_text(f"A report written by `python -m experiments` ({final.name}).\n")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with _deferred_interrupt(), contextlib.ExitStack() as stack:
            try:
                stack.enter_context(folder_lock(parent))
                check_target(final)  # somebody may have put something there while the report was made
            except OutputError as e:
                raise OutputError(f"{e}; the new report is kept in {_keep(tmp, final)}") from None
            if not owns(parent):
                (parent / MARKER).write_text(MARKER_TEXT)
            try:
                _swap_in(tmp, final)
            except OSError as e:
                where = f"the previous report is still at {final}" if final.exists() else f"nothing is at {final}"
                raise OutputError(f"could not put the new report at {final}: {e}; {where}, and the new report is "
                                  f"kept in {_keep(tmp, final)}") from e
            shutil.rmtree(tmp, ignore_errors=True)  # the previous report, after the swap
            if then is not None:
                try:
                    then()
                except Exception as e:
                    raise OutputError(f"the new report is in place at {final}, but the index in {parent} was not "
                                      f"updated: {type(e).__name__}: {e}") from e
    finally:
        os.close(owner)
        Path(f"{tmp}.lock").unlink(missing_ok=True)


def _keep(tmp: Path, final: Path) -> Path:
    """Move a finished report that could not be swapped in to a name no clean-up removes."""
    kept = final.parent / f".{final.name}.unsaved-{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    try:
        tmp.rename(kept)
    except OSError:
        return tmp
    return kept


def write_text_atomic(path, text: str) -> None:
    """Write ``path`` whole or not at all: readers see the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the index is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10)
        # Reports are outputs, not code: a report another run just rewrote does not make this one's code dirty.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict:
    """Versions, commit, date and threads: the 'where was this run' block of every report."""
    import numpy as np
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt(v, digits=4) -> str:
    """A number for a table: ``digits`` significant digits between 1e-3 and 1e5, else ``1.23e-09``;
    None as "-", a string as itself."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    v = float(v)
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.{digits}g}"
    return f"{v:.2e}"


def tolerance_text(v) -> str:
    """A tolerance as the docs write it: 1e-9, 1e-5, 0.5 ("reported" for None)."""
    if v is None:
        return "reported"
    mantissa, _, exponent = f"{v:g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def markdown_table(rows, columns=None) -> str:
    """A list of dicts as a Markdown table (floats in 3 significant digits; '|' in cells and headers escaped)."""
    rows = list(rows)
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])

    def cell(v):
        text = f"{v:.3g}" if isinstance(v, float) else str(v)
        return text.replace("|", "\\|")  # a '|' in a cell would end it

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def environment_markdown(env=None) -> str:
    env = env or environment()
    return "\n".join(f"- {k}: {v}" for k, v in env.items()) + "\n"

