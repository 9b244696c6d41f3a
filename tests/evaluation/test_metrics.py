import math

import numpy as np
import pytest
from transformers import EvalPrediction

from hf_deeplense.evaluation.metrics import (
    anomaly_auc,
    classification_metrics,
    confusion_matrix_from_logits,
    make_compute_metrics,
    regression_metrics,
)

# Logits chosen as log-probabilities so that softmax returns these exact probabilities.
PROBS = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.2, 0.3, 0.5], [0.4, 0.5, 0.1]])
LABELS = np.array([0, 1, 2, 0])
NAMES = ["no_sub", "cdm", "axion"]


def test_classification_metrics_hand_computed():
    metrics = classification_metrics(np.log(PROBS), LABELS, NAMES)
    # argmax = 0, 1, 2, 1 -> 3 of 4 right
    assert metrics["accuracy"] == pytest.approx(0.75)
    # no_sub: positives 0.7, 0.4 vs negatives 0.3, 0.2 -> every pair ordered
    assert metrics["auc_no_sub"] == pytest.approx(1.0)
    # cdm: positive 0.4 vs negatives 0.2, 0.3, 0.5 -> 2 of 3 pairs
    assert metrics["auc_cdm"] == pytest.approx(2 / 3)
    assert metrics["auc_axion"] == pytest.approx(1.0)
    assert metrics["auc_macro"] == pytest.approx(8 / 9)


def test_classification_absent_class_is_left_out_of_macro():
    logits = np.log(PROBS[[0, 1, 3]])
    metrics = classification_metrics(logits, np.array([0, 1, 0]), NAMES)
    assert "auc_axion" not in metrics
    assert metrics["auc_macro"] == pytest.approx((metrics["auc_no_sub"] + metrics["auc_cdm"]) / 2)


def test_classification_shape_errors():
    with pytest.raises(ValueError, match="class names"):
        classification_metrics(np.log(PROBS), LABELS, ["a", "b"])
    with pytest.raises(ValueError, match="num_classes"):
        classification_metrics(np.log(PROBS)[:3], LABELS)


def test_confusion_matrix():
    matrix = confusion_matrix_from_logits(np.log(PROBS), LABELS)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])


def test_regression_metrics_hand_computed():
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 5.0]))
    assert metrics["mean_absolute_error"] == pytest.approx(1.0)
    assert metrics["rmse"] == pytest.approx(math.sqrt(5 / 3))
    # SS_res = 5, SS_tot = 96 / 9
    assert metrics["r2"] == pytest.approx(1 - 45 / 96)


def test_regression_drops_nan_targets_and_accepts_column_shapes():
    metrics = regression_metrics(np.array([[1.0], [2.0], [7.0]]), np.array([2.0, 4.0, np.nan]))
    assert metrics["mean_absolute_error"] == pytest.approx(1.5)


def test_regression_multi_target_keys():
    predictions = np.array([[0.0, 1.0], [1.0, 1.0]])
    targets = np.array([[0.0, 3.0], [1.0, 1.0]])
    metrics = regression_metrics(predictions, targets, ["log10_m_a", "theta_e"])
    assert metrics["mean_absolute_error_log10_m_a"] == pytest.approx(0.0)
    assert metrics["mean_absolute_error_theta_e"] == pytest.approx(1.0)
    assert metrics["mean_absolute_error"] == pytest.approx(0.5)


def test_anomaly_auc():
    assert anomaly_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def test_make_compute_metrics_for_trainer():
    compute = make_compute_metrics("classification", NAMES)
    # Trainer hands a tuple when the model returns extra outputs: the logits come first.
    metrics = compute(EvalPrediction(predictions=(np.log(PROBS), np.zeros((4, 2))), label_ids=LABELS))
    assert metrics["auc_macro"] == pytest.approx(8 / 9)
    assert all(isinstance(value, float) for value in metrics.values())
    compute = make_compute_metrics("regression")
    metrics = compute(EvalPrediction(predictions=np.array([[1.0], [2.0]]), label_ids=np.array([1.0, 4.0])))
    assert metrics["mean_absolute_error"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="task"):
        make_compute_metrics("segmentation")
