"""Chapter 6.4's overfitting set-up, shared by ``weight_decay_overfit`` and ``dropout_overfit``.

The book makes a network overfit on purpose: only the first 300 MNIST training
images, a deep net of six hidden layers of 100 ReLU units (He init), plain SGD
with lr 0.01, batch 100, and many epochs (201 for weight decay, 301 for
dropout). Train and test accuracy are measured on the whole sets at every
epoch; the gap between them is the overfitting a regulariser should narrow.
"""
import matplotlib.pyplot as plt
import numpy as np

from experiments.plots import COLORS
from experiments.writing import markdown_table


def decay_groups(weight_decay: float):
    """Parameter groups: ``weight_decay`` on the Affine weights, none on the biases (the book's L2 term)."""
    def groups(model):
        weights = model.weights()
        ids = {id(w) for w in weights}
        return [{"params": weights, "weight_decay": weight_decay},
                {"params": [p for p in model.parameters() if id(p) not in ids], "weight_decay": 0.0}]
    return groups


def mean_curve(results, impl: str, key: str):
    """Epochs and the mean over seeds of ``evals[impl][key]`` (one seed in lockstep)."""
    epochs = np.asarray(results[0].evals[impl]["epoch"])
    values = np.mean([np.asarray(r.evals[impl][key]) for r in results], axis=0)
    return epochs, values


def final_mean(results, impl: str, key: str) -> float:
    return float(np.mean([r.final[impl][key] for r in results]))


def plot_accuracy(runs, title: str):
    """One panel per variant: train (thin) and test (thick) accuracy by epoch, both twins overlaid.

    ``runs``: list of (panel title, results).
    """
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4.2), sharey=True, squeeze=False)
    for ax, (name, results) in zip(axes[0], runs):
        for impl, ls in (("scratch", "-"), ("torch", "--")):
            for key, lw, alpha in (("train_acc", 1.0, 0.6), ("test_acc", 1.8, 1.0)):
                epochs, acc = mean_curve(results, impl, key)
                ax.plot(epochs, acc, ls, color=COLORS[impl], lw=lw, alpha=alpha,
                        label=f"{impl} {key.split('_')[0]}")
        ax.set(title=name, xlabel="epoch", ylim=(0, 1.02))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0][0].set_ylabel("accuracy (whole set)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def accuracy_rows(runs) -> list:
    """Final train and test accuracy of each twin and their gap, one row per variant."""
    rows = []
    for name, results in runs:
        row = {"variant": name}
        for impl in ("scratch", "torch"):
            train, test = final_mean(results, impl, "train_acc"), final_mean(results, impl, "test_acc")
            row[f"{impl} train"] = f"{train:.2%}"
            row[f"{impl} test"] = f"{test:.2%}"
            row[f"{impl} gap"] = f"{train - test:.2%}"
        rows.append(row)
    return rows


def headline(rows) -> str:
    """Test accuracy of each variant, both twins: 'no dropout: test 68.45% / 68.45%; ...'."""
    return "; ".join(f"{row['variant']}: train {row['scratch train']} / {row['torch train']}, test "
                     f"{row['scratch test']} / {row['torch test']}" for row in rows) + " (scratch / torch)"


def table(rows) -> str:
    return markdown_table(rows)
