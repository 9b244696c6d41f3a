"""Anomaly detection AUC: ROC AUC of an anomaly score (e.g. an autoencoder's reconstruction error)
against binary anomaly labels, as in the DeepLense anomaly-detection results (trained on no_sub,
substructure as the anomaly). scikit-learn does the arithmetic."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import roc_auc_score

_DESCRIPTION = """
ROC AUC of an anomaly score (higher = more anomalous) against references (1 = anomaly, 0 = normal).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: anomaly scores.
    references: 1 for an anomaly, 0 for a normal image.
Returns:
    {"anomaly_auc": float}
Examples:
    >>> evaluate.load("anomaly_auc").compute(predictions=[0.1, 0.9, 0.4], references=[0, 1, 0])
    {'anomaly_auc': 1.0}
"""


def anomaly_auc(scores, is_anomaly):
    """The metric's arithmetic, on numpy arrays."""
    return float(roc_auc_score(np.asarray(is_anomaly).astype(bool), np.asarray(scores, dtype=np.float64)))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AnomalyAuc(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, **other_modules_kwargs):
        # other_modules_kwargs: arguments of the modules this one is `evaluate.combine`d with
        return {"anomaly_auc": anomaly_auc(predictions, references)}
