"""Rare-class detection (lens finding): ROC AUC, precision-recall AUC and the true-positive rate at
fixed false-positive rates, optionally at a chosen test prevalence (the DeepLense lens-finding test
set has 195 lenses in 19,650 images, about 1 %). scikit-learn does the arithmetic."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

DEEPLENSE_TEST_PREVALENCE = 195 / 19650

_DESCRIPTION = """
Lens-finding metrics of a score (higher = more likely a lens) against binary references.

- `roc_auc`; `tpr_at_fpr_<f>` for each false-positive rate `f` in `fprs` (default 1e-2, 1e-3): the largest
  TPR among thresholds whose FPR is <= f, read off the empirical ROC curve without interpolation (with n
  negatives the FPR moves in steps of 1/n: `fpr_resolution`);
- `pr_auc`: average precision (the step-wise area under the precision-recall curve); its chance level
  is the positive fraction;
- `num_positives`, `num_negatives`, `prevalence` (the positive fraction the PR AUC refers to).

`prevalence=p` evaluates at that test prevalence instead of the sample's: positives are weighted so that
they make up the fraction `p` of the total weight (`sample_weight` in scikit-learn). ROC AUC and
TPR-at-FPR do not depend on the prevalence (both are rates within a class); precision, hence PR AUC,
does: a balanced simulated test set gives a far higher PR AUC than the DeepLense ~1 % test set
(`prevalence="deeplense"` = 195 / 19,650). The TPR at an FPR below `fpr_resolution` is read at zero
false positives: quote it only with enough negatives (19,455 in the DeepLense test set).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: scores, higher = more likely positive (e.g. the softmax probability of `lens`).
    references: 1 for a lens, 0 otherwise.
    fprs: false-positive rates at which the TPR is read (default (0.01, 0.001)).
    prevalence: None (the sample's own), a fraction in (0, 1), or "deeplense" (195 / 19,650).
Returns:
    dict, see the description.
Examples:
    >>> evaluate.load("lens_detection").compute(predictions=[0.1, 0.4, 0.35, 0.8], references=[0, 0, 1, 1])["roc_auc"]
    0.75
"""


def lens_detection(scores, is_positive, fprs=(1e-2, 1e-3), prevalence=None):
    """The metric's arithmetic (see `_DESCRIPTION`), on numpy arrays."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_positive = np.asarray(is_positive).astype(bool).reshape(-1)
    num_positives, num_negatives = int(is_positive.sum()), int((~is_positive).sum())
    if not num_positives or not num_negatives:
        raise ValueError(f"need positives and negatives, got {num_positives} and {num_negatives}")
    if prevalence == "deeplense":
        prevalence = DEEPLENSE_TEST_PREVALENCE
    weights = None
    if prevalence is not None:
        prevalence = float(prevalence)
        if not 0 < prevalence < 1:
            raise ValueError(f"prevalence must be in (0, 1), got {prevalence}")
        # positives carry the fraction `prevalence` of the total weight, negatives weigh 1 each
        weights = np.where(is_positive, prevalence / (1 - prevalence) * num_negatives / num_positives, 1.0)
    false_positive_rate, true_positive_rate, _ = roc_curve(is_positive, scores)
    results = {
        "roc_auc": float(roc_auc_score(is_positive, scores)),
        "pr_auc": float(average_precision_score(is_positive, scores, sample_weight=weights)),
    }
    for fpr in fprs:
        results[f"tpr_at_fpr_{fpr:g}"] = float(true_positive_rate[false_positive_rate <= fpr].max())
    results["num_positives"] = num_positives
    results["num_negatives"] = num_negatives
    results["prevalence"] = float(prevalence if prevalence is not None else num_positives / len(scores))
    results["fpr_resolution"] = 1.0 / num_negatives
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LensDetection(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.roc_curve.html"
            ],
        )

    def _compute(self, predictions, references, fprs=(1e-2, 1e-3), prevalence=None, **other_modules_kwargs):
        # other_modules_kwargs: arguments of the modules this one is `evaluate.combine`d with
        return lens_detection(predictions, references, fprs, prevalence)
