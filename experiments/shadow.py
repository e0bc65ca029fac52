"""Float32 parity that means something: each twin against a float64 shadow of the same run.

In float32 the lockstep twins drift apart within a few steps: round-off,
amplified by training. Their raw difference says only that they drift. Both are
approximations of the same exact trajectory, and the question an engineer has is
how far each is from it. A float32 lockstep run therefore carries a float64
shadow (``experiments.training.Shadow``): the scratch twin as the float64
lockstep run of the same seed builds it (in float64 it equals torch's float64
run to ~1e-14, so either twin would serve; the scratch one is the float64 run's
own code path), fed the same batches, masks and augmentations in float64.

Per step, each twin's loss error is ``|loss_f32 - loss_f64| / max(|loss_f64|,
1e-3 |loss_f64 at step 1|)``, the lockstep measure. The verdict compares the two
twins' errors step by step: the median over steps of error(scratch) /
error(torch) within [0.5, 2] says "as accurate", above 2 "less accurate", below
0.5 "more accurate". An error below float32's resolution (``eps`` = 1.2e-7,
about one unit in the last place of the loss, which every float32 result carries
from its last rounding alone) counts as that resolution: below it the two twins
cannot be told apart, and early steps would otherwise compare rounding noise.
"""
import numpy as np

AS_ACCURATE = (0.5, 2.0)  # the median error ratio scratch / torch that reads "as accurate"
FULL_PROFILE_STEPS = 2000  # the shadow's prefix in the full profile (all steps in tiny and quick)


def shadow_steps(profile: str):
    """How many steps the float64 shadow runs in ``profile`` (None: all of them)."""
    return FULL_PROFILE_STEPS if profile == "full" else None


def verdict(median_ratio: float) -> str:
    """"as accurate" for a median error ratio scratch / torch within AS_ACCURATE, else "less" or "more accurate"."""
    lo, hi = AS_ACCURATE
    return "as accurate" if lo <= median_ratio <= hi else ("less accurate" if median_ratio > hi else "more accurate")


def comparison(verdict_text: str) -> str:
    """The verdict as a comparison with torch: "as accurate as", "less accurate than", ..."""
    return f"{verdict_text} {'as' if verdict_text == 'as accurate' else 'than'}"


FLOAT32_RESOLUTION = float(np.finfo(np.float32).eps)  # below this two float32 results cannot be told apart


def error_ratio(err_scratch, err_torch, resolution=FLOAT32_RESOLUTION):
    """error(scratch) / error(torch), each counted as at least ``resolution`` (floats or arrays).

    Relative errors take float32's eps; absolute ones eps times the tensor's scale. Without the floor,
    two results both correctly rounded would compare their luck in the last bit (or divide by 0).
    """
    return np.maximum(err_scratch, resolution) / np.maximum(err_torch, resolution)


def error_ratio_verdict(err_scratch, err_torch, resolution: float = FLOAT32_RESOLUTION) -> dict:
    """Compare two per-step error series (same length; NaN where not measured).

    Each error is taken as at least ``resolution`` (float32's eps). Returns
    ``steps`` (compared), ``median_ratio``, ``p90_ratio`` (of error(scratch) /
    error(torch) over steps), ``scratch_median_error``, ``torch_median_error``,
    ``verdict`` ("as accurate", "less accurate", "more accurate") and ``text``.
    """
    a, b = np.asarray(err_scratch, dtype=np.float64), np.asarray(err_torch, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"error_ratio_verdict: expected two 1-D series of one length, got {a.shape} and {b.shape}")
    measured = ~(np.isnan(a) | np.isnan(b))
    a, b = a[measured], b[measured]
    result = {"steps": int(measured.sum()),
              "scratch_median_error": float(np.median(a)) if a.size else float("nan"),
              "torch_median_error": float(np.median(b)) if b.size else float("nan")}
    if not a.size:
        return dict(result, median_ratio=float("nan"), p90_ratio=float("nan"), verdict="not measured",
                    text="no step was measured against the float64 shadow")
    ratio = error_ratio(a, b, resolution)
    median, p90 = float(np.median(ratio)), float(np.percentile(ratio, 90))
    word = verdict(median)
    text = (f"scratch's float32 is {comparison(word)} PyTorch's (error against the float64 shadow, scratch / "
            f"torch: median {median:.3g}, 90th percentile {p90:.3g}, over {result['steps']} steps)")
    return dict(result, median_ratio=median, p90_ratio=p90, verdict=word, text=text)


def shadow_summary(shadow: dict) -> dict:
    """What summary.json keeps of a run's shadow: the verdict and the final parameter errors."""
    verdict = error_ratio_verdict(shadow["err"]["scratch"], shadow["err"]["torch"])
    last = {impl: (pairs[-1][1] if pairs else None) for impl, pairs in shadow["param_err"].items()}
    return dict(verdict, shadow_steps=int(shadow["steps"]), last_param_error=last)
