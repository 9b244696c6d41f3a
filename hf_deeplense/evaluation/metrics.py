"""Metrics for lensing classification, regression and anomaly detection (scikit-learn based).

Classification follows the DeepLense papers: accuracy, one-vs-rest ROC AUC per class and their
macro average. Regression of ``log10_m_a`` reports MAE and RMSE in dex and R².

`make_compute_metrics` wraps them for `transformers.Trainer` (`EvalPrediction` -> dict of floats).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
    roc_curve,
)
from transformers import EvalPrediction

__all__ = [
    "anomaly_auc",
    "classification_metrics",
    "confusion_matrix_from_logits",
    "detection_metrics",
    "make_compute_metrics",
    "regression_metrics",
    "softmax",
    "tpr_at_fpr",
]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of `logits` `(batch, num_classes)`, numerically stable, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _first(array_or_tuple):
    """Model outputs may arrive as a tuple (logits, extra outputs...): keep the logits."""
    if isinstance(array_or_tuple, (tuple, list)):
        return array_or_tuple[0]
    return array_or_tuple


def classification_metrics(
    logits: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """Accuracy, macro and per-class one-vs-rest ROC AUC.

    Args:
        logits: `(num_samples, num_classes)` logits; accuracy and AUC use their softmax.
        labels: `(num_samples,)` integer class ids.
        class_names: names used in the keys `auc_<name>`; defaults to `"0"`, `"1"`, ...

    Returns:
        `{"accuracy", "auc_macro", "auc_<class>" ...}`. A class absent from `labels` (or the only one
        present) has no defined AUC: its key is left out and the macro average runs over the others
        (`auc_macro` is NaN if no class has one).
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"logits must be (num_samples, num_classes) matching labels {labels.shape}, got {logits.shape}"
        )
    num_classes = logits.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} logit columns")
    probabilities = softmax(logits)
    metrics = {"accuracy": float(accuracy_score(labels, probabilities.argmax(axis=1)))}
    per_class = []
    for index, name in enumerate(names):
        positives = labels == index
        if positives.all() or not positives.any():
            continue
        auc = float(roc_auc_score(positives, probabilities[:, index]))
        metrics[f"auc_{name}"] = auc
        per_class.append(auc)
    metrics["auc_macro"] = float(np.mean(per_class)) if per_class else float("nan")
    return metrics


def confusion_matrix_from_logits(
    logits: np.ndarray, labels: np.ndarray, num_classes: int | None = None
) -> np.ndarray:
    """Confusion matrix `(num_classes, num_classes)`: rows are true classes, columns predictions."""
    logits = np.asarray(logits)
    num_classes = num_classes or logits.shape[1]
    return confusion_matrix(
        np.asarray(labels).reshape(-1), logits.argmax(axis=1), labels=list(range(num_classes))
    )


def regression_metrics(
    predictions: np.ndarray, targets: np.ndarray, target_names: Sequence[str] | None = None
) -> dict[str, float]:
    """MAE, RMSE and R² (in the targets' units: dex for `log10_m_a`).

    Args:
        predictions: `(num_samples,)` or `(num_samples, num_targets)`.
        targets: same shape as `predictions` (a `(num_samples,)` target matches `(num_samples, 1)`).
        target_names: with more than one target, per-target keys `mae_<name>` etc. are added;
            the unsuffixed keys average over targets.

    Returns:
        `{"mae", "rmse", "r2"}` (+ per-target keys for several targets). Rows with a NaN target
        (e.g. `log10_m_a` of a non-axion image) are left out.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if predictions.ndim == 1:
        predictions = predictions[:, None]
    if targets.ndim == 1:
        targets = targets[:, None]
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {predictions.shape} and targets {targets.shape} differ in shape")
    keep = ~np.isnan(targets).any(axis=1)
    predictions, targets = predictions[keep], targets[keep]
    if len(targets) == 0:
        raise ValueError("no sample with a finite regression target")
    metrics = {
        "mae": float(mean_absolute_error(targets, predictions)),
        "rmse": float(np.sqrt(mean_squared_error(targets, predictions))),
        "r2": float(r2_score(targets, predictions)) if len(targets) > 1 else float("nan"),
    }
    if targets.shape[1] > 1:
        names = list(target_names) if target_names is not None else [str(i) for i in range(targets.shape[1])]
        for column, name in enumerate(names):
            metrics.update(
                {
                    f"{key}_{name}": value
                    for key, value in regression_metrics(predictions[:, column], targets[:, column]).items()
                }
            )
    return metrics


def anomaly_auc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
    """ROC AUC of an anomaly score (higher = more anomalous) against binary anomaly labels."""
    return float(roc_auc_score(np.asarray(is_anomaly).astype(bool), np.asarray(scores, dtype=np.float64)))


def tpr_at_fpr(scores: np.ndarray, is_positive: np.ndarray, fpr: float) -> float:
    """True-positive rate at a false-positive rate of at most `fpr` (lens finding: completeness at a purity).

    Read off the empirical ROC curve, without interpolation: the largest TPR among thresholds whose FPR is
    <= `fpr`. With `n` negatives the FPR moves in steps of `1/n`, so `fpr < 1/n` means no false positive.
    """
    false_positive_rate, true_positive_rate, _ = roc_curve(
        np.asarray(is_positive).astype(bool), np.asarray(scores, dtype=np.float64)
    )
    return float(true_positive_rate[false_positive_rate <= fpr].max())


def detection_metrics(
    scores: np.ndarray, is_positive: np.ndarray, fprs: Sequence[float] = (1e-2, 1e-3)
) -> dict[str, float]:
    """Rare-class detection (lens finding): ROC AUC, precision-recall AUC and TPR at fixed FPRs.

    Args:
        scores: `(num_samples,)` scores, higher = more likely positive (e.g. the softmax probability of `lens`).
        is_positive: `(num_samples,)` binary labels.
        fprs: false-positive rates at which the TPR is read.

    Returns:
        `{"roc_auc", "pr_auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", ..., "num_positives", "num_negatives"}`;
        `pr_auc` is the average precision (the step-wise area under the precision-recall curve), whose
        chance level is the positive fraction, not 0.5.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_positive = np.asarray(is_positive).astype(bool)
    metrics = {
        "roc_auc": float(roc_auc_score(is_positive, scores)),
        "pr_auc": float(average_precision_score(is_positive, scores)),
    }
    for fpr in fprs:
        metrics[f"tpr_at_fpr_{fpr:g}"] = tpr_at_fpr(scores, is_positive, fpr)
    metrics["num_positives"] = int(is_positive.sum())
    metrics["num_negatives"] = int((~is_positive).sum())
    return metrics


def make_compute_metrics(
    task: str, class_names: Sequence[str] | None = None, target_names: Sequence[str] | None = None
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `compute_metrics` function for `transformers.Trainer`.

    Args:
        task: `"classification"` or `"regression"`.
        class_names: classification class names (keys `auc_<name>`).
        target_names: regression target names (used with several targets).
    """
    if task == "classification":

        def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
            return classification_metrics(
                _first(prediction.predictions), _first(prediction.label_ids), class_names
            )

    elif task == "regression":

        def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
            return regression_metrics(
                _first(prediction.predictions), _first(prediction.label_ids), target_names
            )

    else:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return compute_metrics
