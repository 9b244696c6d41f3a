"""Figures for lensing runs: ROC curves, confusion matrix, loss curves, MAE reconstructions,
regression scatter, class-activation overlays and 2-D maps of embeddings.

Every function writes one PNG (matplotlib's Agg backend, no display needed) and returns its path.
Images are `(C, H, W)` or `(H, W)` arrays; with several channels the first three are shown as RGB.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, auc, roc_curve  # noqa: E402

from .metrics import softmax  # noqa: E402

__all__ = [
    "plot_binary_roc_curves",
    "plot_cam_overlays",
    "plot_confusion_matrix",
    "plot_embedding_2d",
    "plot_loss_curves",
    "plot_mae_reconstructions",
    "plot_regression_scatter",
    "plot_roc_curves",
    "plot_score_histograms",
]


def _save(figure: plt.Figure, path: str | os.PathLike) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)


def _to_display(image: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """`(C, H, W)` or `(H, W)` -> `(H, W)` (one channel) or `(H, W, 3)` scaled to [0, 1] (by its own
    range, or by `value_range`, clipping)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else np.moveaxis(image[:3], 0, -1)
    low, high = value_range if value_range is not None else (np.nanmin(image), np.nanmax(image))
    return np.clip((image - low) / (high - low), 0, 1) if high > low else np.zeros_like(image)


def plot_roc_curves(
    logits: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "ROC",
) -> str:
    """One-vs-rest ROC curve per class, AUC in the legend.

    Args:
        logits: `(num_samples, num_classes)` logits (softmax is applied).
        labels: `(num_samples,)` class ids.
        class_names: one name per class.
        path: PNG to write.
    """
    probabilities = softmax(logits)
    labels = np.asarray(labels).reshape(-1)
    curves = {  # one-vs-rest; a class with no positives (or only positives) has no ROC curve
        name: (probabilities[:, index], labels == index)
        for index, name in enumerate(class_names)
        if (labels == index).any() and not (labels == index).all()
    }
    return plot_binary_roc_curves(curves, path, title=title)


def plot_binary_roc_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike, title: str = "ROC"
) -> str:
    """ROC curves of several binary problems: `{name: (scores, is_positive)}`, AUC in the legend."""
    figure, axis = plt.subplots(figsize=(5, 5))
    for name, (scores, is_positive) in curves.items():
        false_positive_rate, true_positive_rate, _ = roc_curve(np.asarray(is_positive, dtype=bool), scores)
        axis.plot(
            false_positive_rate,
            true_positive_rate,
            label=f"{name} (AUC {auc(false_positive_rate, true_positive_rate):.3f})",
        )
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    axis.set(
        xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01)
    )
    axis.legend(loc="lower right")
    return _save(figure, path)


def plot_score_histograms(
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "Scores",
    xlabel: str = "anomaly score",
) -> str:
    """Overlaid histograms of a per-image score, one per class (shared bins)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    bins = np.histogram_bin_edges(scores, bins=30)
    figure, axis = plt.subplots(figsize=(6, 4))
    for index, name in enumerate(class_names):
        selected = scores[labels == index]
        if len(selected):
            axis.hist(selected, bins=bins, alpha=0.5, density=True, label=f"{name} ({len(selected)})")
    axis.set(xlabel=xlabel, ylabel="density", title=title)
    axis.legend()
    return _save(figure, path)


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike, title: str = "Confusion matrix"
) -> str:
    """Confusion matrix of counts (rows: true class, columns: predicted class)."""
    matrix = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(1.2 * len(class_names) + 2.5, 1.2 * len(class_names) + 2))
    ConfusionMatrixDisplay(matrix, display_labels=list(class_names)).plot(
        ax=axis, cmap="Blues", colorbar=False
    )
    axis.set_title(title)
    return _save(figure, path)


def plot_loss_curves(log_history: Sequence[dict], path: str | os.PathLike, title: str = "Loss") -> str:
    """Training and evaluation loss against the step, from `trainer.state.log_history`."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for key, label in (("loss", "train"), ("eval_loss", "eval")):
        points = [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry]
        if points:
            steps, values = zip(*points)
            axis.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, label=label)
    axis.set(xlabel="step", ylabel="loss", title=title)
    if axis.lines:
        axis.legend()
    else:
        axis.text(0.5, 0.5, "no loss logged", ha="center", va="center", transform=axis.transAxes)
    return _save(figure, path)


def plot_mae_reconstructions(
    images: np.ndarray,
    masked: np.ndarray,
    reconstructions: np.ndarray,
    path: str | os.PathLike,
    max_images: int = 6,
    title: str = "MAE reconstructions",
) -> str:
    """A grid with one row per image: input, masked input, reconstruction (all three on the
    colour scale of the input).

    Args:
        images, masked, reconstructions: `(batch, C, H, W)` arrays (`masked` shows masked patches as
            zeros or NaN).
    """
    count = min(max_images, len(images))
    figure, axes = plt.subplots(count, 3, figsize=(6, 2 * count), squeeze=False)
    for row in range(count):
        value_range = (float(np.nanmin(images[row])), float(np.nanmax(images[row])))
        for column, (panel, name) in enumerate(
            ((images, "input"), (masked, "masked"), (reconstructions, "reconstruction"))
        ):
            axis = axes[row, column]
            axis.imshow(_to_display(panel[row], value_range), cmap="magma")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(name)
    figure.suptitle(title)
    return _save(figure, path)


def plot_regression_scatter(
    targets: np.ndarray,
    predictions: np.ndarray,
    path: str | os.PathLike,
    quantity: str = "log10 m_a",
    unit: str = "dex",
) -> str:
    """True against predicted values with the identity line; the mean absolute error in the title."""
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    keep = ~np.isnan(targets)
    targets, predictions = targets[keep], predictions[keep]
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.scatter(targets, predictions, s=6, alpha=0.6)
    low = float(min(targets.min(), predictions.min()))
    high = float(max(targets.max(), predictions.max()))
    axis.plot([low, high], [low, high], color="black", linewidth=1, label="identity")
    mae = float(np.abs(targets - predictions).mean())
    axis.set(
        xlabel=f"true {quantity}",
        ylabel=f"predicted {quantity}",
        title=f"mean absolute error {mae:.3f} {unit}",
    )
    axis.set_aspect("equal")
    axis.legend(loc="upper left")
    return _save(figure, path)


def plot_cam_overlays(
    images: np.ndarray,
    maps: np.ndarray,
    path: str | os.PathLike,
    titles: Sequence[str] | None = None,
    alpha: float = 0.45,
    columns: int = 4,
    title: str = "Class-activation maps",
) -> str:
    """Each image with its activation map (`(batch, H, W)`, values in [0, 1]) overlaid as a heat map."""
    count = len(images)
    columns = min(columns, count)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.5 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        if index >= count:
            axis.axis("off")
            continue
        axis.imshow(_to_display(images[index]), cmap="gray")
        axis.imshow(np.asarray(maps[index]), cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
        if titles is not None:
            axis.set_title(titles[index], fontsize=8)
    figure.suptitle(title)
    return _save(figure, path)


def plot_embedding_2d(
    embeddings: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    max_points: int = 2000,
    seed: int = 0,
    title: str = "t-SNE of the embeddings",
) -> str:
    """A t-SNE map (scikit-learn, cosine distances) of `(num_samples, dim)` embeddings, one colour per class.

    At most `max_points` samples, drawn without replacement with `seed` (t-SNE's cost grows with the square of
    the sample); the perplexity is 30, or less for small samples (it must stay below the sample size).
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    generator = np.random.default_rng(seed)
    if len(embeddings) > max_points:
        keep = np.sort(generator.choice(len(embeddings), max_points, replace=False))
        embeddings, labels = embeddings[keep], labels[keep]
    perplexity = min(30.0, (len(embeddings) - 1) / 3)
    points = TSNE(
        n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed
    ).fit_transform(embeddings)  # (num_samples, 2)
    figure, axis = plt.subplots(figsize=(5.5, 5))
    for index, name in enumerate(class_names):
        selected = points[labels == index]
        if len(selected):
            axis.scatter(selected[:, 0], selected[:, 1], s=6, alpha=0.7, label=f"{name} ({len(selected)})")
    axis.set(title=title, xticks=[], yticks=[])
    axis.legend(markerscale=2)
    return _save(figure, path)
