"""What a check finds: one record per tensor, the diagnoses, the verdict, the JSON record."""
import traceback
from pathlib import Path
from dataclasses import asdict, dataclass, field

TRACEBACK_LINES = 6  # the traceback tail kept with an "error" verdict: the user's frame and the exception


class Refused(Exception):
    """The check cannot run honestly (weights not copied, inputs not understood)."""


class UserCodeError(Exception):
    """The user's own code raised: the verdict is "error", with the tail of its traceback."""

    def __init__(self, where: str, exc: BaseException):
        self.where = where
        self.exc = exc
        super().__init__(f"{where} raised {type(exc).__name__}: {exc}")
        self.tail = traceback_tail(exc)


def traceback_tail(exc: BaseException, lines: int = TRACEBACK_LINES) -> str:
    """The last ``lines`` lines of the exception's traceback, the checker's own frames left out: where in the
    user's code it happened."""
    here = str(Path(__file__).resolve().parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(here)]
    text = "".join(traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc))
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass
class TensorRecord:
    """One compared tensor: the layer's name for it, torch's, the errors and the verdict."""

    name: str
    against: str
    shape: tuple
    dtype: str
    max_abs: float
    scaled: float
    where: tuple
    tolerance: float
    verdict: str  # "ok", "FAIL", "shape" (another shape than torch's)
    float64_error: float = float("nan")
    torch_float64_error: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def ratio(self) -> float:
        """float32: this tensor's error against torch's float64 / torch's float32 error against it (gradcheck's
        measure, each floored at float32's resolution); nan in float64."""
        if self.float64_error != self.float64_error or self.verdict == "shape":
            return float("nan")
        from experiments.gradcheck import float32_error_ratio
        return float32_error_ratio(self)


@dataclass
class Diagnosis:
    """A measured explanation. ``kind`` is "design" (a named variant that, applied to torch, reproduces the
    layer's tensors), "bug", or "note" (said, never a failure: torch agrees)."""

    code: str
    kind: str
    text: str
    tensors: tuple = ()


@dataclass
class CheckResult:
    """Result of ``check_layer``: ``.ok``, ``.verdict``, ``.records``, ``.diagnoses``; ``str()`` is a table."""

    layer: str
    against: str
    dtype: str = ""
    inputs: str = ""
    mode: str = ""
    records: list = field(default_factory=list)
    diagnoses: list = field(default_factory=list)
    refused: str = ""
    error: str = ""  # the user's code raised: "forward raised ValueError: ..."
    error_tail: str = ""  # the last lines of its traceback
    unexplained: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    accepted: tuple = ()  # codes of by-design variants the caller accepts (assert_matches_torch(accept=...))

    @property
    def verdict(self) -> str:
        """``ok``, ``mismatch: <diagnosis>``, ``differs by design: <variant>``, ``error: ...``, ``refused: ...``."""
        if self.error:
            return "error: " + self.error
        if self.refused:
            return "refused: " + self.refused
        bugs = [d.text for d in self.diagnoses if d.kind == "bug"] + self.unexplained
        design = [d.text for d in self.diagnoses if d.kind == "design" and d.code not in self.accepted]
        if bugs:
            on_top = [d.text for d in self.diagnoses if d.kind == "design"]
            return "mismatch: " + "; ".join(bugs) + ("; measured with the by-design variant applied to torch: "
                                                     + "; ".join(on_top) if on_top else "")
        if design:
            return "differs by design: " + "; ".join(design)
        return "ok"

    @property
    def kind(self) -> str:
        """The verdict's word: ok, mismatch, differs by design, error, refused."""
        return self.verdict.split(":", 1)[0]

    @property
    def variants(self) -> list:
        """Codes of the by-design variants that reproduce the layer's tensors."""
        return [d.code for d in self.diagnoses if d.kind == "design"]

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def diagnosis(self) -> str:
        """The verdict's sentence without its prefix; empty when ok."""
        v = self.verdict
        return "" if v == "ok" else v.split(": ", 1)[1]

    @property
    def worst(self) -> float:
        return max((r.scaled for r in self.records), default=float("nan"))

    def as_dict(self) -> dict:
        return dict(layer=self.layer, against=self.against, ok=self.ok, worst=self.worst,
                    diagnosis=self.diagnosis, verdict=self.verdict, dtype=self.dtype, inputs=self.inputs,
                    mode=self.mode, records=[asdict(r) for r in self.records], notes=list(self.notes),
                    traceback=self.error_tail)

    def __str__(self) -> str:
        head = f"{self.layer} against {self.against}"
        detail = ", ".join(s for s in (self.dtype, self.mode, self.inputs) if s)
        lines = [f"{head} ({detail}): {self.verdict}" if detail else f"{head}: {self.verdict}"]
        if self.records:
            lines.append(f"  {'tensor':14s} {'against':22s} {'shape':16s} {'max abs':>9s} {'scaled':>9s} "
                         f"{'tol':>7s}  {'where':14s} verdict")
            for r in self.records:
                ratio = f" (error vs float64: {r.ratio:.2g} x torch's)" if r.ratio == r.ratio else ""
                lines.append(f"  {r.name:14s} {r.against:22s} {str(r.shape):16s} {r.max_abs:9.2e} "
                             f"{r.scaled:9.2e} {r.tolerance:7.0e}  {str(r.where):14s} {r.verdict}{ratio}")
        lines += [f"  note: {n}" for n in self.notes]
        lines += ["  | " + line for line in self.error_tail.splitlines()]
        return "\n".join(lines)


def summary_record(result: CheckResult, kind: str, **extra) -> dict:
    """The command line's JSON record of one checked network or optimizer: ``run_case``'s keys (one form for
    every kind), with ``kind`` and what the kind adds (``located``, ``numerical``, ``constructor``)."""
    worst = result.worst
    worst = float(worst) if worst == worst and worst not in (float("inf"),) else None  # JSON: no nan, no inf
    return dict(kind=kind, layer=result.layer, against=result.against, ok=result.ok, checked=True, worst=worst,
                diagnosis=result.diagnosis, verdict=result.verdict, configs=1, dtype=result.dtype,
                codes=[d.code for d in result.diagnoses], traceback=result.error_tail, notes=list(result.notes),
                **extra)
