"""Helpers shared by the chapter 7-8 entries: predictions of a trained twin, picture grids,
the "against the book" table, and the trained DeepConvNet's weights kept for half_precision."""
import numpy as np
import torch

from experiments.writing import markdown_table


def predict(impl: str, model, x: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Scores (N, classes) of a trained twin on x, in eval mode (restored after), ``chunk`` images at a time."""
    was = model.training
    model.eval()
    try:
        if impl == "torch":
            device = next(model.parameters()).device
            with torch.no_grad():
                outs = [model(torch.from_numpy(np.ascontiguousarray(x[i:i + chunk])).to(device)).cpu().numpy()
                        for i in range(0, len(x), chunk)]
        else:
            outs = [model(x[i:i + chunk]) for i in range(0, len(x), chunk)]
    finally:
        model.train(was)
    return np.concatenate(outs)


def data_of(data, dtype):
    """The test images in the run's dtype (what the trainers fed the twins)."""
    return np.ascontiguousarray(data.x_test, dtype=dtype), data.t_test


def book_table(ctx, book: float, results, what: str, note: str = "") -> str:
    """(Markdown, accuracies): the book's test accuracy next to each twin's (mean over seeds when independent)."""
    accs = {impl: float(np.mean([r.final[impl]["test_acc"] for r in results])) for impl in ("scratch", "torch")}
    cfg = ctx.config
    length = f"{cfg['epochs']} epochs" if cfg.get("iterations") is None else f"{cfg['iterations']} iterations"
    n_train = "all 60,000" if cfg.get("n_train") is None else f"{cfg['n_train']:,}"
    n_test = "all 10,000" if cfg.get("n_test") is None else f"{cfg['n_test']:,}"
    if cfg.get("synthetic"):
        n_train, n_test = f"{cfg['n_train']} generated", f"{cfg['n_test']} generated"
    rows = [{"": "book (20 epochs, 60,000 images)", "test accuracy": f"{book:.2%}"},
            {"": f"scratch ({length}, {n_train} training images, {n_test} test images)",
             "test accuracy": f"{accs['scratch']:.2%}"},
            {"": "torch (same)", "test accuracy": f"{accs['torch']:.2%}"}]
    profile = {"full": "The full profile runs the book's 20 epochs on all of MNIST, so its numbers are "
                       "comparable with the book's.",
               "quick": "The quick profile is a shorter run on a slice of MNIST, sized to fit the catalogue's "
                        "10-minute budget on 2 cores: it is not expected to reach the book's number.",
               "tiny": "The tiny profile (the test suite's) trains a few steps on generated images: its accuracy "
                       "means nothing."}[ctx.profile]
    mean = " (mean over seeds)" if ctx.mode == "independent" else ""
    return (f"{what}{mean}. {profile} Every epoch is a fresh permutation of the training set (PyTorch's "
            f"shuffling), where the book samples batches with replacement.{note}\n\n" + markdown_table(rows)), accs


def image_grid(ax_grid, images, titles, colors=None):
    """One 28x28 image per axis, gray, with its title."""
    for k, ax in enumerate(ax_grid.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k].reshape(images[k].shape[-2:]), cmap="gray_r")
            ax.set_title(titles[k], fontsize=8, color=None if colors is None else colors[k])


# -- trained weights kept between experiments (deep_convnet -> half_precision) --------------------------
def trained_path(ctx, name: str):
    """``<data>/trained/<name>-<profile>-seed<seed>-<dtype>.npz`` (the data folder, not reports/: weights
    are not a report, and a megabyte of them per run does not belong in git)."""
    from experiments.data.mnist import data_root

    return data_root() / "trained" / f"{name}-{ctx.profile}-seed{ctx.seed}-{ctx.dtype}.npz"


def save_trained(ctx, name: str, model):
    """Write ``model.state_dict()`` next to the data, atomically; returns the path."""
    import os
    import tempfile

    path = trained_path(ctx, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in model.state_dict().items()})
    os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a data file like the MNIST cache
    os.replace(tmp, path)
    return path


def load_trained(ctx, name: str):
    """The state dict saved by ``save_trained`` for this profile, seed and dtype, or None."""
    path = trained_path(ctx, name)
    if not path.exists():
        return None, path
    with np.load(path) as z:
        return {k: z[k] for k in z.files}, path
