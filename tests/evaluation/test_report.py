import numpy as np
import pytest

from hf_deeplense.evaluation.metrics import classification_metrics
from hf_deeplense.evaluation.report import report_classification, report_regression


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
    assert report.metrics["test_mae"] == pytest.approx(0.1)
    assert report.plots == {"scatter_log10_m_a": str(tmp_path / "plots" / "scatter_log10_m_a_test.png")}
    assert (tmp_path / "plots" / "scatter_log10_m_a_test.png").is_file()
