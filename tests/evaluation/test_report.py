import numpy as np
import pytest

from hf_deeplense.evaluation.metrics import classification_metrics
from hf_deeplense.evaluation.report import json_safe, report_anomaly, report_classification, report_regression


def test_report_classification(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=30)
    logits = rng.normal(size=(30, 3)) + np.eye(3)[labels]
    report = report_classification(logits, labels, ["no_sub", "cdm", "axion"], tmp_path, split="validation")
    expected = classification_metrics(logits, labels, ["no_sub", "cdm", "axion"])
    assert report.metrics["validation_auc_macro"] == pytest.approx(expected["auc_macro"])
    assert set(report.plots) == {"roc", "confusion_matrix"}
    assert (tmp_path / "plots" / "roc_validation.png").is_file()
    assert np.sum(report.confusion_matrix) == 30


def test_report_regression(tmp_path):
    targets = np.linspace(-24, -22, 20)
    report = report_regression(targets + 0.1, targets, tmp_path)
    assert report.metrics["test_mean_absolute_error"] == pytest.approx(0.1)
    assert report.plots == {"scatter_log10_m_a": str(tmp_path / "plots" / "scatter_log10_m_a_test.png")}
    assert (tmp_path / "plots" / "scatter_log10_m_a_test.png").is_file()


def test_report_anomaly(tmp_path):
    # no_sub scores low, cdm perfectly separated, axion half overlapping
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.7, 0.6, 0.35, 0.05, 0.5, 0.45])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    report = report_anomaly(scores, labels, ["no_sub", "cdm", "axion"], "no_sub", tmp_path)
    assert report.metrics["test_anomaly_auc_cdm"] == pytest.approx(1.0)
    # axion 0.35 beats 0.1, 0.2, 0.3; 0.05 beats none; 0.5 and 0.45 beat all four -> 11 / 16
    assert report.metrics["test_anomaly_auc_axion"] == pytest.approx(11 / 16)
    assert report.metrics["test_anomaly_auc_macro"] == pytest.approx((1 + 11 / 16) / 2)
    assert report.metrics["test_anomaly_auc"] == pytest.approx((16 + 11) / 32)
    assert all(
        (tmp_path / "plots" / f"{name}_test.png").is_file() for name in ("anomaly_scores", "anomaly_roc")
    )


def test_json_safe():
    assert json_safe({"a": float("nan"), "b": [np.float32(1.5), float("inf")], 3: np.int64(2)}) == {
        "a": None,
        "b": [1.5, None],
        "3": 2,
    }
