"""Metrics, plots and class-activation maps for lensing models."""

from .metrics import (
    anomaly_auc,
    classification_metrics,
    confusion_matrix_from_logits,
    make_compute_metrics,
    regression_metrics,
    softmax,
)

__all__ = [
    "anomaly_auc",
    "classification_metrics",
    "confusion_matrix_from_logits",
    "make_compute_metrics",
    "regression_metrics",
    "softmax",
]
