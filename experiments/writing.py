"""Writing reports, for every command: where they go (the reference ``reports/``, everyday ``runs/``),
atomic folders, the environment block, Markdown tables.

(What a training run's report contains is experiments/results.py's business.)

``atomic_dir(final)`` yields a temporary folder beside ``final``; only when the
block finishes does it replace ``final`` (a rename), so an interrupted run
leaves the previous report as it was.
"""
import contextlib
import datetime
import os
import platform
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


@contextlib.contextmanager
def atomic_dir(final):
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is for everyone to read
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


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


def markdown_table(rows, columns=None) -> str:
    """A list of dicts as a Markdown table (floats in 3 significant digits; '|' in cells and headers escaped)."""
    rows = list(rows)
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])

    def fmt(v):
        text = f"{v:.3g}" if isinstance(v, float) else str(v)
        return text.replace("|", "\\|")  # a '|' in a cell would end it

    lines = ["| " + " | ".join(fmt(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def environment_markdown(env=None) -> str:
    env = env or environment()
    return "\n".join(f"- {k}: {v}" for k, v in env.items()) + "\n"

