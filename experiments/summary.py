"""summary.json, defined once: the :class:`Summary` the runner writes and every reader reads back.

One file per report folder (docs/design.md, "Reports"): the run's description, its
environment, each trained model's final metrics and parity figures, the parity rows the
experiment recorded, and (independent mode) the twins' statistics. Nothing else parses the
file: the runner writes it with :meth:`Summary.write`, the index, the reference verdict,
the catalogue and the tests read it with :meth:`Summary.read`.

``version`` 2 is the first numbered format; a file without the field (the reference
reports written before it) reads as version 1, the same keys, the later ones missing and
left at their defaults.
"""
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

VERSION = 2
FILE = "summary.json"
REQUIRED = ("experiment", "profile", "mode", "seed", "dtype", "config", "environment", "headline_text")


@dataclass
class Summary:
    """What summary.json holds. ``models`` is one dict per trained model (``model_summary``
    in experiments/runner.py: label, tag, mode, seed, steps, final, max_loss_rel_diff,
    max_param_diff, first_step_above_tolerance, control_max_loss_rel_diff,
    control_first_step_above_tolerance, float32_vs_shadow, tolerance, time_per_step_s);
    ``parity`` one dict per recorded figure (name, value, tolerance)."""

    experiment: str
    number: int = 0
    chapter: str = ""
    shows: str = ""
    profile: str = ""
    mode: str = ""
    seed: int = 0
    seeds: list = field(default_factory=list)
    dtype: str = ""
    device: str = "cpu"
    threads: Optional[int] = None
    twins: str = "serial"
    scratch_path: str = "fast"
    config: dict = field(default_factory=dict)
    headline_text: str = ""
    wall_time_s: float = 0.0
    engine: str = "serial (this process)"
    torch_twin: Optional[dict] = None
    units: Optional[dict] = None
    environment: dict = field(default_factory=dict)
    trained: bool = False
    worst_loss_rel_diff: Optional[float] = None
    lockstep_tolerance: Optional[float] = None
    models: list = field(default_factory=list)
    parity: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    twin_statistics: list = field(default_factory=list)
    verdict: str = ""
    failed_units: list = field(default_factory=list)
    version: int = VERSION

    # -- the file ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def write(self, folder) -> Path:
        """``<folder>/summary.json``, JSON-safe (NumPy scalars, non-finite floats: experiments.results.jsonable)."""
        from experiments.results import jsonable

        path = Path(folder) / FILE
        path.write_text(json.dumps(jsonable(self.to_dict()), indent=1) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: dict) -> "Summary":
        version = d.get("version", 1)
        if version > VERSION:
            raise ValueError(f"summary.json version {version} is newer than this code reads (up to {VERSION})")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"summary.json has unknown keys {unknown} (version {version})")
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise ValueError(f"summary.json lacks {', '.join(map(repr, missing))}")
        return cls(**dict(d, version=version))

    @classmethod
    def read(cls, folder) -> "Summary":
        """The summary.json of report folder ``folder`` (or the file itself); OSError or ValueError
        when it is missing or not a summary."""
        path = Path(folder)
        if path.is_dir() or path.name != FILE:
            path = path / FILE
        return cls.from_dict(json.loads(path.read_text()))

    @classmethod
    def read_or_none(cls, folder) -> Optional["Summary"]:
        """:meth:`read`, or None when there is no readable summary (an interrupted run, an empty folder)."""
        try:
            return cls.read(folder)
        except (OSError, ValueError):
            return None

    # -- figures read from it ----------------------------------------------------------
    def control_worst(self) -> Optional[float]:
        """The largest loss difference of the 1-ulp controls the runner ran (None when none ran)."""
        values = [m.get("control_max_loss_rel_diff") for m in self.models]
        values = [v for v in values if v is not None]
        return max(values) if values else None

    def shadow_verdicts(self) -> list:
        """Each float32 lockstep model's verdict against its float64 shadow (experiments.shadow)."""
        return [m["float32_vs_shadow"] for m in self.models if m.get("float32_vs_shadow")]

    def drift_bound(self) -> float:
        """The largest finite loss difference of the twins or of a 1-ulp control among the models (0 when none)."""
        return max([v for m in self.models for v in (m.get("max_loss_rel_diff"), m.get("control_max_loss_rel_diff"))
                    if isinstance(v, (int, float)) and math.isfinite(v)], default=0.0)
