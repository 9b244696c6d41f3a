"""Accuracy of predicted class ids (what `evaluate.evaluator("image-classification")` produces), offline.
scikit-learn does the arithmetic."""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = """
Fraction of predicted class ids equal to the references: `accuracy_score(references, predictions)`.
A local, offline stand-in for the Hub's `accuracy`, for label predictions (e.g. from
`evaluate.evaluator("image-classification")`, which passes the pipeline's top label).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids.
    references: true class ids.
Returns:
    {"accuracy": float}
Examples:
    >>> evaluate.load("lensing_accuracy").compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LensingAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, **other_modules_kwargs):
        # other_modules_kwargs: arguments of the modules this one is `evaluate.combine`d with
        return {"accuracy": float(accuracy_score(references, predictions))}
