"""Metrics and figures of one split in one call: what recipes write after training or evaluation."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .metrics import anomaly_auc, classification_metrics, confusion_matrix_from_logits, regression_metrics
from .plots import (
    plot_binary_roc_curves,
    plot_confusion_matrix,
    plot_regression_scatter,
    plot_roc_curves,
    plot_score_histograms,
)

__all__ = [
    "SplitReport",
    "json_safe",
    "report_anomaly",
    "report_classification",
    "report_predictions",
    "report_regression",
]


def json_safe(value):
    """Floats that JSON cannot hold (NaN, inf) become None; numpy/torch scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class SplitReport:
    """Metrics (keys prefixed with the split, e.g. `test_auc_macro`), figure paths and, for
    classification, the confusion matrix as nested lists."""

    metrics: dict[str, float]
    plots: dict[str, str] = field(default_factory=dict)
    confusion_matrix: list[list[int]] | None = None


def report_classification(
    logits: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    output_dir: str | os.PathLike,
    split: str = "test",
) -> SplitReport:
    """Accuracy and ROC AUC (macro, per class), ROC curves and confusion matrix under `output_dir/plots/`."""
    plots_dir = Path(output_dir) / "plots"
    metrics = {
        f"{split}_{key}": value for key, value in classification_metrics(logits, labels, class_names).items()
    }
    matrix = confusion_matrix_from_logits(logits, labels, num_classes=len(class_names))
    plots = {
        "roc": plot_roc_curves(
            logits, labels, class_names, plots_dir / f"roc_{split}.png", title=f"ROC ({split})"
        ),
        "confusion_matrix": plot_confusion_matrix(
            matrix,
            class_names,
            plots_dir / f"confusion_matrix_{split}.png",
            title=f"Confusion matrix ({split})",
        ),
    }
    return SplitReport(metrics=metrics, plots=plots, confusion_matrix=matrix.tolist())


def report_regression(
    predictions: np.ndarray,
    targets: np.ndarray,
    output_dir: str | os.PathLike,
    split: str = "test",
    target_names: Sequence[str] = ("log10_m_a",),
    unit: str = "dex",
) -> SplitReport:
    """Mean absolute error (`mean_absolute_error`), RMSE, R² and a true-vs-predicted scatter per target under `output_dir/plots/`."""
    plots_dir = Path(output_dir) / "plots"
    metrics = {
        f"{split}_{key}": value
        for key, value in regression_metrics(predictions, targets, target_names).items()
    }
    predictions = np.asarray(predictions).reshape(len(predictions), -1)
    targets = np.asarray(targets).reshape(len(targets), -1)
    plots = {
        f"scatter_{name}": plot_regression_scatter(
            targets[:, column],
            predictions[:, column],
            plots_dir / f"scatter_{name}_{split}.png",
            quantity=name,
            unit=unit,
        )
        for column, name in enumerate(target_names)
    }
    return SplitReport(metrics=metrics, plots=plots)


def report_anomaly(
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    normal_class: str,
    output_dir: str | os.PathLike,
    split: str = "test",
) -> SplitReport:
    """ROC AUC of an anomaly score separating `normal_class` from each other class and from all of them.

    Metrics: `<split>_anomaly_auc` (normal vs every other class together), `<split>_anomaly_auc_<class>`
    (normal vs that class) and `<split>_anomaly_auc_macro` (their mean); figures: score histograms per
    class and the ROC curves.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    normal = class_names.index(normal_class)
    is_normal = labels == normal
    metrics = {f"{split}_anomaly_auc": anomaly_auc(scores, ~is_normal)}
    curves = {}
    for index, name in enumerate(class_names):
        if index == normal or not (labels == index).any():
            continue
        keep = is_normal | (labels == index)
        metrics[f"{split}_anomaly_auc_{name}"] = anomaly_auc(scores[keep], labels[keep] == index)
        curves[name] = (scores[keep], labels[keep] == index)
    per_class = [value for key, value in metrics.items() if key.startswith(f"{split}_anomaly_auc_")]
    if per_class:
        metrics[f"{split}_anomaly_auc_macro"] = float(np.mean(per_class))
    plots_dir = Path(output_dir) / "plots"
    plots = {
        "anomaly_scores": plot_score_histograms(
            scores,
            labels,
            class_names,
            plots_dir / f"anomaly_scores_{split}.png",
            title=f"Anomaly scores ({split})",
        ),
        "anomaly_roc": plot_binary_roc_curves(
            curves, plots_dir / f"anomaly_roc_{split}.png", title=f"{normal_class} vs each class ({split})"
        ),
    }
    return SplitReport(metrics=metrics, plots=plots)


def report_predictions(
    task: str,
    outputs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    output_dir: str | os.PathLike,
    split: str = "test",
    target_column: str = "log10_m_a",
) -> SplitReport:
    """The report of a fine-tuned head's outputs: `report_regression` of `target_column` when `task` is
    `"regression"`, else `report_classification`."""
    if task == "regression":
        return report_regression(outputs, labels, output_dir, split, [target_column])
    return report_classification(outputs, labels, class_names, output_dir, split)
