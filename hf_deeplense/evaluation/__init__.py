"""Metrics, plots and class-activation maps for lensing models; kNN evaluation of pre-trained encoders."""

from .encoder import embed_dataset, encoder_of, evaluate_encoder, knn_classify, load_encoder
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
    "embed_dataset",
    "encoder_of",
    "evaluate_encoder",
    "image_classification_evaluator",
    "knn_classify",
    "load_encoder",
    "load_metric",
    "make_compute_metrics",
    "metric_module_path",
    "publish_metric",
    "regression_metrics",
    "softmax",
]
