"""Regression of lensing parameters: MAE, RMSE and R², in the targets' units (dex for log10 masses such
as `log10_m_a`, as the DeepLense axion-mass results quote them). scikit-learn does the arithmetic."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

_DESCRIPTION = """
MAE, RMSE and R² of regression predictions, in the targets' units: for a log10 target (the axion mass
`log10_m_a`) MAE and RMSE are in dex. Rows with a NaN reference (e.g. the mass of a non-axion image) are
left out. With several targets `(num_samples, num_targets)`, the unsuffixed keys average over targets and
`mean_absolute_error_<name>`, `rmse_<name>`, `r2_<name>` are added per target.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: floats `(num_samples,)` or lists `(num_samples, num_targets)`.
    references: same shape as predictions.
    target_names: names for the per-target keys (default "0", "1", ...).
Returns:
    {"mean_absolute_error", "rmse", "r2"} (+ per-target keys).
Examples:
    >>> evaluate.load("lensing_regression").compute(predictions=[-22.0, -23.5], references=[-22.5, -23.0])["mean_absolute_error"]
    0.5
"""


def lensing_regression(predictions, targets, target_names=None):
    """The metric's arithmetic (see `_DESCRIPTION`), on numpy arrays."""
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
    results = {
        "mean_absolute_error": float(mean_absolute_error(targets, predictions)),
        "rmse": float(np.sqrt(mean_squared_error(targets, predictions))),
        "r2": float(r2_score(targets, predictions)) if len(targets) > 1 else float("nan"),
    }
    if targets.shape[1] > 1:
        names = list(target_names) if target_names is not None else [str(i) for i in range(targets.shape[1])]
        for column, name in enumerate(names):
            for key, value in lensing_regression(predictions[:, column], targets[:, column]).items():
                results[f"{key}_{name}"] = value
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LensingRegression(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Sequence(datasets.Value("float64")),
                        "references": datasets.Sequence(datasets.Value("float64")),
                    }
                ),
                datasets.Features(
                    {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
                ),
            ],
        )

    def _compute(self, predictions, references, target_names=None, **other_modules_kwargs):
        # other_modules_kwargs: arguments of the modules this one is `evaluate.combine`d with
        return lensing_regression(predictions, references, target_names)
