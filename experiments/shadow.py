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

The median of a ratio that varies by orders of magnitude from step to step is
itself uncertain: another machine's round-off (another CPU, torch on a GPU)
gives another series and another median. The verdict therefore rests on a
``CONFIDENCE`` interval of the median, by a circular block bootstrap over steps
(``median_interval``): consecutive steps are correlated (a twin that met a
discrete event, an Adam step out of round-off or a ReLU that flipped, stays off
for a while), so steps are resampled in blocks, of the length Politis and White's
rule picks from the series itself (``block_length``). The verdict is the region
of [0, 0.5), [0.5, 2], (2, inf) that holds the whole interval, and "inconclusive"
when the interval straddles 0.5 or 2, with about how many steps would settle it.

``experiments gradcheck``'s float32 table reads its per-layer median ratios the
same way, with the same functions; its ratios come from independent random
configurations, not from a series, so its interval resamples configurations
(``median_interval(..., clusters=...)``, a cluster bootstrap).
"""
import math

import numpy as np

AS_ACCURATE = (0.5, 2.0)  # the median error ratio scratch / torch that reads "as accurate"
FULL_PROFILE_STEPS = 2000  # the shadow's prefix in the full profile (all steps in tiny and quick)
CONFIDENCE = 0.95  # of the median ratio's interval
RESAMPLES = 2000  # bootstrap resamples (the interval's ends move by a few % of its width with another seed)
BOOTSTRAP_SEED = 0  # fixed: one series has one interval, on every run and every machine
INCONCLUSIVE = "inconclusive"


def shadow_steps(profile: str):
    """How many steps the float64 shadow runs in ``profile`` (None: all of them)."""
    return FULL_PROFILE_STEPS if profile == "full" else None


def verdict(median_ratio: float) -> str:
    """"as accurate" for a median error ratio scratch / torch within AS_ACCURATE, else "less" or "more accurate"."""
    lo, hi = AS_ACCURATE
    return "as accurate" if lo <= median_ratio <= hi else ("less accurate" if median_ratio > hi else "more accurate")


def interval_verdict(low: float, high: float) -> str:
    """The verdict both ends of a median's interval agree on, else ``"inconclusive"``."""
    a, b = verdict(low), verdict(high)
    return a if a == b else INCONCLUSIVE


def comparison(verdict_text: str) -> str:
    """The verdict as a comparison with torch: "as accurate as", "less accurate than", ..."""
    return f"{verdict_text} {'as' if verdict_text == 'as accurate' else 'than'}"


def claim(verdict_text: str, subject: str = "scratch", other: str = "torch") -> str:
    """"scratch as accurate as torch", ..., or "scratch vs torch: inconclusive"."""
    if verdict_text == INCONCLUSIVE:
        return f"{subject} vs {other}: {INCONCLUSIVE}"
    return f"{subject} {comparison(verdict_text)} {other}"


FLOAT32_RESOLUTION = float(np.finfo(np.float32).eps)  # below this two float32 results cannot be told apart


def error_ratio(err_scratch, err_torch, resolution=FLOAT32_RESOLUTION):
    """error(scratch) / error(torch), each counted as at least ``resolution`` (floats or arrays).

    Relative errors take float32's eps; absolute ones eps times the tensor's scale. Without the floor,
    two results both correctly rounded would compare their luck in the last bit (or divide by 0).
    """
    return np.maximum(err_scratch, resolution) / np.maximum(err_torch, resolution)


# -- the median's interval -----------------------------------------------------------------------
def _autocovariances(x: np.ndarray, lags: int) -> np.ndarray:
    """R(0..lags) of ``x`` about its mean, divided by n, each sum exact (``math.fsum``): the block length
    must not depend on the machine's summation order."""
    n = len(x)
    c = x - math.fsum(x) / n
    return np.array([math.fsum(c[:n - k] * c[k:]) / n for k in range(lags + 1)])


def block_length(x) -> int:
    """The circular block bootstrap's block length for ``x``, by Politis and White's rule.

    D. N. Politis and H. White, "Automatic block-length selection for the dependent bootstrap",
    Econometric Reviews 23 (2004), with the correction of A. Patton, D. N. Politis and H. White,
    Econometric Reviews 28 (2009): the smallest lag ``m`` after which ``K = max(5, sqrt(log10 n))``
    autocorrelations in a row are below ``2 sqrt(log10 n / n)``; ``M = 2m``; with the flat-top kernel
    ``lam(t) = 1`` for ``|t| <= 1/2``, ``2 (1 - |t|)`` up to 1, ``G = sum lam(k/M) |k| R(k)`` and
    ``g = sum lam(k/M) R(k)`` over ``|k| <= M``, ``b = (2 G^2 / (4/3 g^2))^(1/3) n^(1/3)``, at most
    ``min(3 sqrt(n), n / 3)``, at least 1, rounded up.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 4:
        return 1
    k_run = max(5, int(math.sqrt(math.log10(n))))
    m_max = int(math.ceil(math.sqrt(n))) + k_run
    m_max = min(m_max, n - 1)
    r = _autocovariances(x, m_max)
    if r[0] <= 0:
        return 1  # a constant series: any block length gives the same resamples
    rho = np.abs(r / r[0])
    bound = 2 * math.sqrt(math.log10(n) / n)
    m = next((i for i in range(0, m_max - k_run + 1) if np.all(rho[i + 1:i + 1 + k_run] < bound)), None)
    big_m = min(2 * max(m, 1), m_max) if m is not None else m_max
    k = np.arange(1, big_m + 1)
    lam = np.where(k / big_m <= 0.5, 1.0, 2 * (1 - k / big_m))
    g_big = 2 * math.fsum(lam * k * r[1:big_m + 1])
    g0 = r[0] + 2 * math.fsum(lam * r[1:big_m + 1])
    if g0 == 0:
        return 1
    b = (2 * g_big ** 2 / (4 / 3 * g0 ** 2)) ** (1 / 3) * n ** (1 / 3)
    return int(max(1, min(math.ceil(b), math.ceil(min(3 * math.sqrt(n), n / 3)))))


def median_interval(values, block=None, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                    seed: int = BOOTSTRAP_SEED, clusters=None):
    """A ``confidence`` interval of the median of the series ``values``: ``(low, high, block)``.

    Circular block bootstrap: each resample joins ``ceil(n / block)`` blocks of ``block`` consecutive
    values (wrapping round the end), their starts drawn uniformly, cut to n values; the interval is the
    percentile interval of the ``resamples`` resamples' medians. ``block`` defaults to
    ``block_length`` of the series' indicator ``values <= median``, whose correlation is what the
    median's spread depends on; ``block=1`` is the ordinary bootstrap of independent values.
    ``seed``: fixed, so the interval of a series is reproducible.

    ``clusters`` (one label per value; ``block`` must then be None): a cluster bootstrap for values
    drawn in independent groups whose members may be correlated (gradcheck's tensors of one random
    configuration). Each resample draws as many groups as there are, uniformly with replacement, and
    takes the median of all their values; ``block`` comes back None. With every value its own
    group, it is the ``block=1`` bootstrap, resample for resample.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not v.size:
        raise ValueError(f"median_interval: expected a non-empty 1-D series, got shape {v.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"median_interval: confidence must be in (0, 1), got {confidence!r}")
    rng = np.random.default_rng(seed)
    if clusters is not None:
        if block is not None:
            raise ValueError("median_interval: give block or clusters, not both")
        medians = _cluster_medians(v, clusters, resamples, rng)
    else:
        n = len(v)
        if block is None:
            block = block_length((v <= np.median(v)).astype(np.float64))
        block = int(min(max(block, 1), n))
        blocks = -(-n // block)
        medians = np.empty(resamples)
        chunk = max(1, 2_000_000 // (blocks * block))  # resamples per pass: bounds the index array's memory
        offsets = np.arange(block)
        for i in range(0, resamples, chunk):
            k = min(chunk, resamples - i)
            starts = rng.integers(0, n, size=(k, blocks))
            idx = ((starts[:, :, None] + offsets) % n).reshape(k, -1)[:, :n]
            medians[i:i + k] = np.median(v[idx], axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(medians, [tail, 1 - tail])
    return float(low), float(high), block


def _cluster_medians(v: np.ndarray, clusters, resamples: int, rng) -> np.ndarray:
    """The medians of ``resamples`` cluster-bootstrap resamples of ``v`` (``median_interval``).

    Groups differ in size (a Linear without bias has fewer tensors), so resamples do too; rather than
    join each one, every resample weighs the sorted values by how often their group was drawn and
    reads the middle one or two, the same numbers ``np.median`` of the joined values gives.
    """
    labels = np.asarray(clusters)
    if labels.shape != v.shape:
        raise ValueError(f"median_interval: clusters must give one label per value, got shape {labels.shape} "
                         f"for {v.shape}")
    group = np.unique(labels, return_inverse=True)[1].reshape(-1)
    g = int(group.max()) + 1
    order = np.argsort(v, kind="stable")
    values, group = v[order], group[order]
    medians = np.empty(resamples)
    chunk = max(1, 2_000_000 // (g + len(v)))  # resamples per pass: bounds the weights' memory
    for i in range(0, resamples, chunk):
        k = min(chunk, resamples - i)
        draws = rng.integers(0, g, size=(k, g))
        counts = np.bincount((draws + g * np.arange(k)[:, None]).reshape(-1), minlength=k * g).reshape(k, g)
        seen = np.cumsum(counts[:, group], axis=1)  # values up to each sorted position, in each resample
        total = seen[:, -1:]
        lower = np.argmax(seen > (total - 1) // 2, axis=1)  # where the middle one(s) of each resample sit
        upper = np.argmax(seen > total // 2, axis=1)
        medians[i:i + k] = (values[lower] + values[upper]) / 2
    return medians


def steps_to_settle(median: float, low: float, high: float, steps: int):
    """About how many steps would make an interval that straddles a boundary clear it, or None.

    On the log scale the interval's half-width shrinks as 1/sqrt(steps) when the series goes on alike
    (the block bootstrap's scaling): the side that crosses boundary ``c`` must shrink to the distance
    from the median to ``c``. None when the median sits on a boundary (no number of steps settles it).
    ``steps`` may count independent draws instead (gradcheck's configurations): the same 1/sqrt scaling.
    """
    need = steps
    for c in AS_ACCURATE:
        if low < c < high or low == c or high == c:
            if median == c:
                return None
            side = high if median < c else low
            need = max(need, steps * (math.log(side / median) / math.log(c / median)) ** 2)
    return int(math.ceil(need))


def settle_text(settle, unit: str = "steps") -> str:
    """What an inconclusive verdict says about settling it: ``settle`` from ``steps_to_settle`` (None: the
    median sits on a boundary), ``unit`` what it counts ("steps", "configurations")."""
    if settle is None:
        return "the median sits on the boundary"
    return f"about {settle} {unit} would settle it"


def error_ratio_verdict(err_scratch, err_torch, resolution: float = FLOAT32_RESOLUTION) -> dict:
    """Compare two per-step error series (same length; NaN where not measured).

    Each error is taken as at least ``resolution`` (float32's eps). Returns
    ``steps`` (compared), ``median_ratio``, ``p90_ratio`` (of error(scratch) /
    error(torch) over steps), ``ci_low``, ``ci_high`` (the median's ``CONFIDENCE``
    interval, ``median_interval``), ``block`` (its block length, in steps),
    ``resamples``, ``scratch_median_error``, ``torch_median_error``, ``verdict``
    ("as accurate", "less accurate", "more accurate", "inconclusive"),
    ``steps_to_settle`` (inconclusive: about how many steps would settle it;
    None otherwise, or when the median sits on a boundary) and ``text``.
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
        return dict(result, median_ratio=float("nan"), p90_ratio=float("nan"), ci_low=float("nan"),
                    ci_high=float("nan"), block=None, resamples=0, verdict="not measured", steps_to_settle=None,
                    text="no step was measured against the float64 shadow")
    ratio = error_ratio(a, b, resolution)
    median, p90 = float(np.median(ratio)), float(np.percentile(ratio, 90))
    low, high, block = median_interval(ratio)
    word = interval_verdict(low, high)
    settle = steps_to_settle(median, low, high, result["steps"]) if word == INCONCLUSIVE else None
    figures = (f"error against the float64 shadow, scratch / torch: median {median:.3g}, "
               f"{CONFIDENCE:.0%} interval [{low:.3g}, {high:.3g}] (block bootstrap over {result['steps']} steps, "
               f"blocks of {block}), 90th percentile {p90:.3g}")
    if word == INCONCLUSIVE:
        lo, hi = AS_ACCURATE
        crossed = " and ".join(f"{c:g}" for c in (lo, hi) if low <= c <= high)
        text = (f"inconclusive whether scratch's float32 is as accurate as PyTorch's: the interval straddles "
                f"{crossed} ({figures}); "
                + settle_text(settle, "steps") + (", if the ratio's median and spread hold" if settle else ""))
    else:
        text = f"scratch's float32 is {comparison(word)} PyTorch's ({figures})"
    return dict(result, median_ratio=median, p90_ratio=p90, ci_low=low, ci_high=high, block=block,
                resamples=RESAMPLES, verdict=word, steps_to_settle=settle, text=text)


def interval_text(v: dict) -> str:
    """", 95% interval [lo, hi]" of a verdict dict, or "" for one written before intervals existed."""
    if v.get("ci_low") is None or v.get("ci_high") is None:
        return ""
    return f", {CONFIDENCE:.0%} interval [{v['ci_low']:.3g}, {v['ci_high']:.3g}]"


def shadow_summary(shadow: dict) -> dict:
    """What summary.json keeps of a run's shadow: the verdict and the final parameter errors."""
    verdict = error_ratio_verdict(shadow["err"]["scratch"], shadow["err"]["torch"])
    last = {impl: (pairs[-1][1] if pairs else None) for impl, pairs in shadow["param_err"].items()}
    return dict(verdict, shadow_steps=int(shadow["steps"]), last_param_error=last)
