"""Lensing classification: accuracy and one-vs-rest ROC AUC (per class, macro and micro), as the
DeepLense papers report them (per-class and macro AUC for Models I-III, micro AUC for the equivariant
networks). scikit-learn does the arithmetic."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score

_DESCRIPTION = """
Accuracy and one-vs-rest ROC AUC of a lensing classifier.

- predictions: per-row class probabilities `(num_samples, num_classes)` (softmax of the logits), or,
  for a binary task, the score of the positive class `(num_samples,)`.
- references: integer class ids `(num_samples,)`.

With probabilities: `accuracy` (argmax), `auc_<class>` for each class present and absent in the
references (one-vs-rest), `auc_macro` (their mean) and `auc_micro` (all one-vs-rest decisions pooled,
`roc_auc_score(one_hot, probabilities, average="micro")`). A class absent from the references (or the
only one present) has no AUC: its key is left out and the macro mean runs over the others; `auc_micro`
then pools the classes that have one. With binary scores: `roc_auc`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: class probabilities (list of lists of floats) or positive-class scores (list of floats).
    references: integer class ids.
    class_names: optional names used in the keys `auc_<name>` (default "0", "1", ...).
Returns:
    dict of floats, see the description.
Examples:
    >>> metric = evaluate.load("lensing_classification")
    >>> metric.compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[0, 1], class_names=["no_sub", "sub"])
    {'accuracy': 1.0, 'auc_no_sub': 1.0, 'auc_sub': 1.0, 'auc_macro': 1.0, 'auc_micro': 1.0}
"""

_CITATION = """
@article{alexander2020deep,
  title={Deep learning the morphology of dark matter substructure},
  author={Alexander, Stephon and Gleyzer, Sergei and McDonough, Evan and Toomey, Michael W and Usai, Emanuele},
  journal={The Astrophysical Journal},
  year={2020}
}
"""


def lensing_classification(probabilities, labels, class_names=None):
    """The metric's arithmetic (see `_DESCRIPTION`), on numpy arrays."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if probabilities.ndim == 1:
        if set(np.unique(labels)) - {0, 1}:
            raise ValueError("binary scores need references in {0, 1}")
        return {"roc_auc": float(roc_auc_score(labels, probabilities))}
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.shape[0]:
        raise ValueError(
            f"predictions must be (num_samples, num_classes) matching references {labels.shape}, "
            f"got {probabilities.shape}"
        )
    num_classes = probabilities.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} probability columns")
    results = {"accuracy": float(accuracy_score(labels, probabilities.argmax(axis=1)))}
    per_class, scored = [], []
    for index, name in enumerate(names):
        positives = labels == index
        if positives.all() or not positives.any():
            continue
        auc = float(roc_auc_score(positives, probabilities[:, index]))
        results[f"auc_{name}"] = auc
        per_class.append(auc)
        scored.append(index)
    results["auc_macro"] = float(np.mean(per_class)) if per_class else float("nan")
    if scored:
        one_hot = labels[:, None] == np.asarray(scored)[None, :]
        results["auc_micro"] = float(roc_auc_score(one_hot, probabilities[:, scored], average="micro"))
    else:
        results["auc_micro"] = float("nan")
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LensingClassification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Sequence(datasets.Value("float64")),
                        "references": datasets.Value("int64"),
                    }
                ),
                datasets.Features(
                    {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
                ),
            ],
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.roc_auc_score.html"
            ],
        )

    def _compute(self, predictions, references, class_names=None, **other_modules_kwargs):
        # other_modules_kwargs: arguments of the modules this one is `evaluate.combine`d with
        return lensing_classification(predictions, references, class_names)
