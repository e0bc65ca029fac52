"""Do the twins differ? Statistics of independent mode over K seeds.

For each final metric (test accuracy, test loss...) of a model trained by both
twins on K seeds each:

- each twin's mean and standard deviation (ddof=1) over the seeds;
- the difference of means, scratch minus torch, with a 95% confidence interval
  by **Welch's t** (unequal variances, Welch–Satterthwaite degrees of freedom);
- an equivalence verdict against a stated margin ``m`` (``MARGINS``): two
  one-sided tests (TOST) at the 5% level, i.e. the 90% confidence interval of
  the difference lies inside (-m, +m), combined with the ordinary test of a
  difference (the 95% interval excludes 0):

  ==========================  ==========================  ===============
  90% CI inside (-m, m)?      95% CI excludes 0?          verdict
  ==========================  ==========================  ===============
  yes                         either                      "equivalent"
  no                          yes                         "different"
  no                          no                          "inconclusive"
  ==========================  ==========================  ===============

  "equivalent" with a 95% interval that excludes 0 is a real but smaller-than-
  the-margin difference, and the table says so. For "inconclusive", about how
  many seeds per twin would settle it (80% power, if the observed means and
  spreads hold): to show equivalence when |difference| < m, else to show the
  difference.

Welch rather than a bootstrap: with 5 to 20 seeds a bootstrap interval is too
narrow (it resamples from the few values seen), Welch's is exact for normal
spreads and robust to unequal ones. The quantiles come from scipy.stats.
"""
import math

import numpy as np

# Margin of practical equivalence per kind of metric: ("absolute", m) or ("relative", fraction of the
# torch twin's mean). 0.2 percentage points of accuracy is about 20 images of MNIST's 10,000 test images,
# below the spread of one seed to the next of the book's networks.
MARGINS = {"acc": ("absolute", 0.002), "loss": ("relative", 0.02)}
NOT_JUDGED = ("last_batch_loss",)  # one mini-batch's loss: a noisy figure, reported without a verdict
ALPHA = 0.05
POWER = 0.8


def margin_for(metric: str, torch_mean: float):
    """(margin, text) for ``metric`` ("relu/test_acc"...), or (None, reason) when it gets no verdict."""
    base = metric.rsplit("/", 1)[-1]
    if base in NOT_JUDGED:
        return None, "no verdict (one batch)"
    for suffix, (kind, m) in MARGINS.items():
        if base.endswith(suffix):
            if kind == "absolute":
                return m, f"±{m * 100:g} points" if suffix == "acc" else f"±{m:g}"
            return m * abs(torch_mean), f"±{m:.0%} of torch's mean"
    return None, "no margin defined"


def compare_twins(a, b, margin=None, alpha: float = ALPHA) -> dict:
    """Compare the per-seed values ``a`` (scratch) and ``b`` (torch) of one metric.

    Returns a dict: n, mean and std of each, ``diff`` (mean(a) - mean(b)), ``ci95`` (Welch),
    ``ci90`` (the TOST interval), ``df``, ``verdict`` ("equivalent", "different", "inconclusive",
    or None without a margin) and ``seeds_needed`` (inconclusive only: seeds per twin, about).
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"compare_twins: a and b must be 1-D (one value per seed), got shapes {a.shape}, {b.shape}")
    if margin is not None and not margin > 0:
        raise ValueError(f"compare_twins: margin must be positive, got {margin!r}")
    n1, n2 = len(a), len(b)
    out = {"n": (n1, n2), "mean": (_mean(a), _mean(b)), "std": (_std(a), _std(b)), "margin": margin,
           "diff": _mean(a) - _mean(b), "ci95": (math.nan, math.nan), "ci90": (math.nan, math.nan),
           "df": math.nan, "verdict": None, "seeds_needed": None}
    if n1 < 2 or n2 < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        # No spread to judge from (or a diverged seed): nothing can be said, whatever the means.
        if margin is not None:
            out["verdict"] = "inconclusive"
        return out
    v1, v2 = np.var(a, ddof=1) / n1, np.var(b, ddof=1) / n2
    se = math.sqrt(v1 + v2)
    d = out["diff"]
    if se == 0:
        out["ci95"] = out["ci90"] = (d, d)
        out["df"] = math.inf
    else:
        df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
        out["df"] = df
        t95, t90 = stats.t.ppf(1 - alpha / 2, df), stats.t.ppf(1 - alpha, df)
        out["ci95"] = (d - t95 * se, d + t95 * se)
        out["ci90"] = (d - t90 * se, d + t90 * se)
    if margin is None:
        return out
    equivalent = -margin < out["ci90"][0] and out["ci90"][1] < margin
    significant = out["ci95"][0] > 0 or out["ci95"][1] < 0
    out["verdict"] = "equivalent" if equivalent else "different" if significant else "inconclusive"
    if out["verdict"] == "inconclusive":
        out["seeds_needed"] = seeds_needed(d, out["std"][0], out["std"][1], margin, alpha)
    return out


def seeds_needed(diff: float, s1: float, s2: float, margin: float, alpha: float = ALPHA, power: float = POWER):
    """About how many seeds per twin would settle it (normal approximation, equal seeds per twin).

    |diff| < margin: TOST showing equivalence, n = (z_(1-alpha) + z_(1-(1-power)/2))^2 (s1^2+s2^2) / (m-|d|)^2;
    else: the two-sided test showing the difference, n = (z_(1-alpha/2) + z_power)^2 (s1^2+s2^2) / d^2.
    """
    from scipy import stats

    var = s1 ** 2 + s2 ** 2
    if abs(diff) < margin:
        z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(1 - (1 - power) / 2)
        gap = margin - abs(diff)
    else:
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
        gap = abs(diff)
    if var == 0:
        return 2
    return max(2, math.ceil(z ** 2 * var / gap ** 2))


def _mean(x):
    return float(np.mean(x)) if len(x) else math.nan


def _std(x):
    return float(np.std(x, ddof=1)) if len(x) > 1 else math.nan


# -- over a run's results ------------------------------------------------------------------------
def twin_statistics(results) -> list:
    """One row per (model, final metric) of the independent results: ``compare_twins`` and its margin."""
    by_label = {}
    for r in results:
        if r.mode == "independent" and "scratch" in r.final and "torch" in r.final:
            by_label.setdefault(r.label, []).append(r)
    rows = []
    for label, rs in by_label.items():
        for metric in rs[0].final["scratch"]:
            a = [r.final["scratch"][metric] for r in rs if metric in r.final["scratch"]]
            b = [r.final["torch"][metric] for r in rs if metric in r.final.get("torch", {})]
            margin, margin_text = margin_for((rs[0].tag + "/" if rs[0].tag else "") + metric, _mean(np.array(b)))
            row = compare_twins(a, b, margin)
            row.update(model=label, metric=metric, margin_text=margin_text, seeds=[r.seed for r in rs],
                       scratch=a, torch=b)
            rows.append(row)
    return rows


def headline_metric(rows) -> str:
    names = {r["metric"] for r in rows}
    return next((m for m in ("test_acc", "train_acc", "test_loss", "train_loss") if m in names), None)


def verdict_text(rows) -> str:
    """The index's one-liner: the headline metric's verdict per model."""
    key = headline_metric(rows)
    parts = [f"{r['model']} {key}: {r['verdict']}" for r in rows if r["metric"] == key and r["verdict"]]
    return "; ".join(parts)


def _pm(mean, std, scale):
    return f"{mean * scale:.4g} ± {std * scale:.2g}" if math.isfinite(std) else f"{mean * scale:.4g}"


def statistics_markdown(rows) -> str:
    """The report's section: the table and how to read it."""
    from experiments.writing import markdown_table

    table = []
    for r in rows:
        pct = r["metric"].endswith("acc")
        scale, unit = (100, " (%)") if pct else (1, "")
        lo, hi = r["ci95"]
        verdict = r["verdict"] or r["margin_text"]
        if r["verdict"] == "equivalent" and (lo > 0 or hi < 0):
            verdict += " (a difference smaller than the margin)"
        if r["seeds_needed"]:
            verdict += f"; about {r['seeds_needed']} seeds per twin would settle it"
        table.append({"model": r["model"], "metric": r["metric"] + unit, "seeds": f"{r['n'][0]} / {r['n'][1]}",
                      "scratch mean ± std": _pm(r["mean"][0], r["std"][0], scale),
                      "torch mean ± std": _pm(r["mean"][1], r["std"][1], scale),
                      "difference (scratch − torch)": f"{r['diff'] * scale:+.3g}",
                      "95% CI (Welch)": f"[{lo * scale:+.3g}, {hi * scale:+.3g}]" if math.isfinite(lo) else "-",
                      "margin": r["margin_text"] if r["margin"] is not None else "-",
                      "verdict": verdict})
    return ("Each twin trained on its own seeds (its own initialisation, batch order and random numbers). "
            "Difference of the means with a 95% confidence interval by Welch's t (unequal variances). Verdict: "
            "**equivalent** when the 90% interval lies inside the margin (two one-sided tests, TOST, at 5%), "
            "**different** when it does not and the 95% interval excludes 0, **inconclusive** otherwise "
            "(`experiments/stats.py`).\n\n" + markdown_table(table))


def statistics_record(rows) -> list:
    """What summary.json keeps of :func:`twin_statistics`'s rows."""
    keep = ("model", "metric", "n", "mean", "std", "diff", "ci95", "ci90", "df", "margin", "margin_text",
            "verdict", "seeds_needed", "seeds", "scratch", "torch")
    return [{k: r[k] for k in keep} for r in rows]


def plot_seeds(rows, title=""):
    """Each seed's final value of the headline metric, both twins side by side, one panel per model."""
    import matplotlib.pyplot as plt

    from experiments.plots import COLORS

    key = headline_metric(rows)
    picked = [r for r in rows if r["metric"] == key]
    fig, axes = plt.subplots(1, len(picked), figsize=(4.5 * len(picked), 3.8), squeeze=False)
    for ax, r in zip(axes[0], picked):
        for x, impl, values in ((0, "scratch", r["scratch"]), (1, "torch", r["torch"])):
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(x + jitter, values, color=COLORS[impl], s=18, label=impl)
            ax.errorbar(x + 0.25, np.mean(values), yerr=np.std(values, ddof=1) if len(values) > 1 else 0,
                        fmt="_", color="black", capsize=4, ms=14)
        if r["margin"] is not None:
            centre = r["mean"][1]
            ax.axhspan(centre - r["margin"], centre + r["margin"], color="0.9", zorder=0,
                       label="torch mean ± margin")
        ax.set_xticks([0, 1], ["scratch", "torch"])
        ax.set_xlim(-0.5, 1.5)
        ax.set(ylabel=key, title=f"{r['model']}: {r['verdict'] or '-'}")
        ax.legend(fontsize=7)
    fig.suptitle(title or f"final {key} of each seed (bar: mean ± std)")
    fig.tight_layout()
    return fig
