"""Metrics, plots and class-activation maps for lensing models."""

from .metrics import (
    DEEPLENSE_TEST_PREVALENCE,
    METRIC_MODULES,
    anomaly_auc,
    classification_metrics,
    confusion_matrix_from_logits,
    detection_metrics,
    image_classification_evaluator,
    load_metric,
    make_compute_metrics,
    metric_module_path,
    publish_metric,
    regression_metrics,
    softmax,
)

__all__ = [
    "DEEPLENSE_TEST_PREVALENCE",
    "METRIC_MODULES",
    "anomaly_auc",
    "classification_metrics",
    "confusion_matrix_from_logits",
    "detection_metrics",
    "image_classification_evaluator",
    "load_metric",
    "make_compute_metrics",
    "metric_module_path",
    "publish_metric",
    "regression_metrics",
    "softmax",
]
