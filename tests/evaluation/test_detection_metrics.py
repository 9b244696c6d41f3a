"""Tests of the lens-finding detection metrics in `hf_deeplense.evaluation.metrics`."""

import numpy as np
import pytest

from hf_deeplense.evaluation.metrics import detection_metrics, tpr_at_fpr


def brute_force_tpr_at_fpr(scores, labels, fpr):
    """Every threshold "score >= t": the best TPR whose FPR stays <= fpr (0 if none)."""
    best = 0.0
    for threshold in np.concatenate([np.unique(scores), [np.inf]]):
        predicted = scores >= threshold
        false_positive_rate = (predicted & (labels == 0)).sum() / (labels == 0).sum()
        if false_positive_rate <= fpr:
            best = max(best, (predicted & (labels == 1)).sum() / (labels == 1).sum())
    return best


@pytest.mark.parametrize("fpr", [0.0, 1e-3, 1e-2, 0.05, 0.3])
def test_tpr_at_fpr_matches_brute_force(fpr):
    rng = np.random.default_rng(0)
    labels = (rng.random(600) < 0.1).astype(int)
    scores = rng.normal(size=600) + 1.5 * labels
    assert tpr_at_fpr(scores, labels, fpr) == pytest.approx(brute_force_tpr_at_fpr(scores, labels, fpr))


def test_detection_metrics_hand_example():
    scores = np.array([0.1, 0.95, 0.3, 0.9, 0.8, 0.4])
    labels = np.array([0, 0, 0, 1, 1, 0])
    metrics = detection_metrics(scores, labels, fprs=(0.25, 0.01))
    assert metrics["roc_auc"] == pytest.approx(6 / 8)  # 6 of the 8 (lens, non-lens) pairs are ordered right
    # ranking: 0.95 (neg), 0.9 (pos), 0.8 (pos) -> precision 1/2 and 2/3 at the two recalls
    assert metrics["pr_auc"] == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert metrics["tpr_at_fpr_0.25"] == 1.0 and metrics["tpr_at_fpr_0.01"] == 0.0
    assert (metrics["num_positives"], metrics["num_negatives"]) == (2, 4)


def test_random_scores_sit_at_chance():
    rng = np.random.default_rng(1)
    labels = (rng.random(20000) < 0.06).astype(int)
    metrics = detection_metrics(rng.random(20000), labels)
    assert metrics["roc_auc"] == pytest.approx(0.5, abs=0.03)
    assert metrics["pr_auc"] == pytest.approx(labels.mean(), abs=0.01)  # chance level of PR AUC
    assert metrics["tpr_at_fpr_0.01"] < 0.05
