"""What a run records as it goes, and the JSON it writes: metrics.csv's rows and JSON-safe values.

The rest of a report lives by job (docs/design.md, "Reports"): summary.json is defined in
experiments/summary.py, the plots in experiments/plots.py, report.md in experiments/report_page.py,
the index and the check of a report folder in experiments/index.py.

metrics.csv holds only what the seed determines (no timings), written with
``repr`` floats, so a re-run with the same seed writes the same file byte for
byte. The runner writes a report inside ``experiments.writing.atomic_dir``: it
appears whole or not at all.
"""
import csv
import math

import numpy as np

COLUMNS = ("experiment", "impl", "mode", "seed", "step", "epoch", "metric", "value")


class Recorder:
    """Rows of metrics.csv, in the order they were logged."""

    def __init__(self):
        self.rows = []

    def log(self, experiment, impl, mode, seed, step, epoch, metric, value):
        self.rows.append((experiment, impl, mode, seed, step, epoch, metric, value))

    def write_csv(self, path):
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            for row in self.rows:
                w.writerow([_cell(v) for v in row])


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def jsonable(obj):
    """NumPy scalars and arrays, tuples and non-finite floats made JSON-safe."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    if isinstance(obj, np.dtype) or isinstance(obj, type):
        return str(obj)
    return obj
