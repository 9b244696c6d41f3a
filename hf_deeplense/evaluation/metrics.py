"""Metrics for lensing classification, regression, lens finding and anomaly detection.

The arithmetic lives in `evaluate` modules shipped with the package (`metric_modules/<name>/<name>.py`,
scikit-learn underneath), loaded offline with `evaluate.load(<local path>)`: `load_metric(name)`.
They are standalone (no hf_deeplense import), so each can be published as a Hub metric repo
(`publish_metric`) and combined with `evaluate.combine`:

| module | inputs | results |
|---|---|---|
| `lensing_classification` | class probabilities (or binary scores), class ids | accuracy, per-class, macro and micro one-vs-rest AUC |
| `lensing_accuracy` | predicted class ids, class ids | accuracy (for `evaluate.evaluator("image-classification")`) |
| `lens_detection` | scores, 0/1 | ROC AUC, PR AUC (optionally at a test prevalence), TPR at fixed FPRs |
| `lensing_regression` | predictions, targets | MAE, RMSE (dex for log10 targets), R² |
| `anomaly_auc` | anomaly scores, 0/1 | anomaly ROC AUC |

`image_classification_evaluator()` is `evaluate.evaluator("image-classification")` made to accept a
transformers 5 `pipeline()` (evaluate 0.4.6 looks up `transformers.TFPreTrainedModel`, gone in 5.x).

The functions below (`classification_metrics`, `detection_metrics`, ...) keep their signatures and call
those modules; `make_compute_metrics` wraps them for `transformers.Trainer`.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix
from transformers import EvalPrediction

__all__ = [
    "DEEPLENSE_TEST_PREVALENCE",
    "METRIC_MODULES",
    "anomaly_auc",
    "classification_metrics",
    "confusion_matrix_from_logits",
    "detection_metrics",
    "image_classification_evaluator",
    "load_metric",
    "make_compute_metrics",
    "metric_module_path",
    "publish_metric",
    "regression_metrics",
    "softmax",
    "tpr_at_fpr",
]

METRIC_MODULES_DIR = Path(__file__).parent / "metric_modules"
METRIC_MODULES = (
    "lensing_classification",
    "lensing_accuracy",
    "lens_detection",
    "lensing_regression",
    "anomaly_auc",
)
# lens-finding test set of DeepLense (Common Test II): 195 lenses among 19,650 images
DEEPLENSE_TEST_PREVALENCE = 195 / 19650


def metric_module_path(name: str) -> Path:
    """Folder of the shipped `evaluate` module `name` (what `evaluate.load` takes)."""
    if name not in METRIC_MODULES:
        raise ValueError(f"unknown metric module {name!r}; shipped: {list(METRIC_MODULES)}")
    return METRIC_MODULES_DIR / name


def _evaluate_library():
    """The `evaluate` library, also when a script folder shadows it.

    Running `python recipes/<name>.py` puts `recipes/` first on `sys.path`, and `recipes/evaluate.py` then
    answers `import evaluate`. The library is then imported from the other `sys.path` entries and put in
    `sys.modules["evaluate"]`, where the metric modules' own `import evaluate` finds it.
    """
    import importlib.machinery
    import importlib.util
    import sys

    module = sys.modules.get("evaluate")
    if module is None:
        import evaluate as module
    if hasattr(module, "load") and hasattr(module, "Metric"):
        return module
    shadow = Path(module.__file__).resolve().parent
    search = [entry for entry in sys.path if Path(entry or ".").resolve() != shadow]
    spec = importlib.machinery.PathFinder.find_spec("evaluate", search)
    if spec is None:
        raise ImportError(f"the evaluate library is not installed ({module.__file__} shadows the name)")
    library = importlib.util.module_from_spec(spec)
    sys.modules["evaluate"] = library
    spec.loader.exec_module(library)
    return library


@functools.cache
def load_metric(name: str):
    """`evaluate.load` of a shipped metric module, offline (a local path never reaches the Hub)."""
    return _evaluate_library().load(str(metric_module_path(name)), keep_in_memory=True)


def publish_metric(
    name: str, repo_id: str, *, private: bool = False, token: str | None = None, api: Any = None
):
    """Publish a shipped metric module as a Hub metric repo (a Gradio Space, as the `evaluate` Hub
    metrics are), so that `evaluate.load(repo_id)` finds it.

    Uploaded: `<name>.py`, `README.md` (the metric card, with the Space YAML header), `app.py`
    (`evaluate.utils.launch_gradio_widget`) and `requirements.txt`.

    Args:
        name: a shipped module (`METRIC_MODULES`).
        repo_id: `org/name` of the Space; its last part must equal `name` (evaluate loads `<repo name>.py`).
        private, token: passed to the Hub.
        api: a `huggingface_hub.HfApi` (default: a new one).

    Returns:
        The `CommitInfo` of the upload.
    """
    import tempfile

    from huggingface_hub import HfApi

    if repo_id.rsplit("/", 1)[-1] != name:
        raise ValueError(f"the repo name must be the module name {name!r} (evaluate loads <repo name>.py)")
    api = api or HfApi(token=token)
    source = metric_module_path(name)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        shutil.copy(source / f"{name}.py", folder / f"{name}.py")
        card = (source / "README.md").read_text(encoding="utf-8")
        (folder / "README.md").write_text(card, encoding="utf-8")
        (folder / "app.py").write_text(
            "import evaluate\nfrom evaluate.utils import launch_gradio_widget\n\n"
            f'module = evaluate.load("{repo_id}")\nlaunch_gradio_widget(module)\n',
            encoding="utf-8",
        )
        (folder / "requirements.txt").write_text(
            "evaluate\ndatasets\nscikit-learn\nnumpy\n", encoding="utf-8"
        )
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            repo_type="space",
            folder_path=str(folder),
            commit_message=f"Upload the {name} metric (hf_deeplense)",
        )


def image_classification_evaluator():
    """`evaluate.evaluator("image-classification")` that runs on a transformers 5 `pipeline()`.

    evaluate 0.4.6's `Evaluator.prepare_pipeline` checks `isinstance(model, transformers.TFPreTrainedModel)`,
    a class transformers 5 no longer has, so a `Pipeline` object fails with `AttributeError` before it is
    used. This subclass builds a pipeline from a model name or `PreTrainedModel` and takes a given pipeline
    (or callable) as it is, with the same task check; everything else is evaluate's own evaluator.
    """
    _evaluate_library()
    from evaluate.evaluator import ImageClassificationEvaluator
    from transformers import PreTrainedModel, pipeline

    class LensImageClassificationEvaluator(ImageClassificationEvaluator):
        def prepare_pipeline(self, model_or_pipeline, tokenizer=None, feature_extractor=None, device=None):
            if device is None:
                device = self._infer_device()
            if model_or_pipeline is None or isinstance(model_or_pipeline, (str, PreTrainedModel)):
                return pipeline(self.task, model=model_or_pipeline, device=device)
            task = getattr(model_or_pipeline, "task", self.task)
            if task != self.task:
                raise ValueError(f"the pipeline's task is {task!r}, not {self.task!r}")
            return model_or_pipeline

    return LensImageClassificationEvaluator()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of `logits` `(batch, num_classes)`, numerically stable, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _first(array_or_tuple):
    """Model outputs may arrive as a tuple (logits, extra outputs...): keep the logits."""
    if isinstance(array_or_tuple, (tuple, list)):
        return array_or_tuple[0]
    return array_or_tuple


def classification_metrics(
    logits: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """Accuracy, per-class, macro and micro one-vs-rest ROC AUC (the `lensing_classification` module).

    Args:
        logits: `(num_samples, num_classes)` logits; accuracy and AUC use their softmax.
        labels: `(num_samples,)` integer class ids.
        class_names: names used in the keys `auc_<name>`; defaults to `"0"`, `"1"`, ...

    Returns:
        `{"accuracy", "auc_<class>" ..., "auc_macro", "auc_micro"}`. A class absent from `labels` (or the
        only one present) has no defined AUC: its key is left out and the macro average runs over the
        others (`auc_macro` is NaN if no class has one); `auc_micro` pools the one-vs-rest decisions of
        the classes that have one (DeepLense's equivariant results are micro-averaged).
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"logits must be (num_samples, num_classes) matching labels {labels.shape}, got {logits.shape}"
        )
    if class_names is not None and len(class_names) != logits.shape[1]:
        raise ValueError(f"{len(class_names)} class names for {logits.shape[1]} logit columns")
    return load_metric("lensing_classification").compute(
        predictions=softmax(logits), references=labels, class_names=class_names
    )


def confusion_matrix_from_logits(
    logits: np.ndarray, labels: np.ndarray, num_classes: int | None = None
) -> np.ndarray:
    """Confusion matrix `(num_classes, num_classes)`: rows are true classes, columns predictions."""
    logits = np.asarray(logits)
    num_classes = num_classes or logits.shape[1]
    return confusion_matrix(
        np.asarray(labels).reshape(-1), logits.argmax(axis=1), labels=list(range(num_classes))
    )


def regression_metrics(
    predictions: np.ndarray, targets: np.ndarray, target_names: Sequence[str] | None = None
) -> dict[str, float]:
    """MAE, RMSE and R² (in the targets' units: dex for `log10_m_a`), the `lensing_regression` module.

    Args:
        predictions: `(num_samples,)` or `(num_samples, num_targets)`.
        targets: same shape as `predictions` (a `(num_samples,)` target matches `(num_samples, 1)`).
        target_names: with more than one target, per-target keys `mean_absolute_error_<name>` etc. are added;
            the unsuffixed keys average over targets.

    Returns:
        `{"mean_absolute_error", "rmse", "r2"}` (+ per-target keys for several targets). Rows with a NaN target
        (e.g. `log10_m_a` of a non-axion image) are left out.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if predictions.ndim == 2 and predictions.shape[1] == 1 and targets.ndim == 1:
        predictions = predictions[:, 0]
    if targets.ndim == 2 and targets.shape[1] == 1 and predictions.ndim == 1:
        targets = targets[:, 0]
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {predictions.shape} and targets {targets.shape} differ in shape")
    if np.isnan(targets).all():
        raise ValueError("no sample with a finite regression target")
    return load_metric("lensing_regression").compute(
        predictions=predictions, references=targets, target_names=target_names
    )


def anomaly_auc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
    """ROC AUC of an anomaly score (higher = more anomalous) against binary anomaly labels
    (the `anomaly_auc` module)."""
    references = np.asarray(is_anomaly).astype(np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    return load_metric("anomaly_auc").compute(predictions=scores, references=references)["anomaly_auc"]


def tpr_at_fpr(scores: np.ndarray, is_positive: np.ndarray, fpr: float) -> float:
    """True-positive rate at a false-positive rate of at most `fpr` (lens finding: completeness at a purity).

    Read off the empirical ROC curve, without interpolation: the largest TPR among thresholds whose FPR is
    <= `fpr`. With `n` negatives the FPR moves in steps of `1/n`, so `fpr < 1/n` means no false positive.
    """
    return detection_metrics(scores, is_positive, fprs=(fpr,))[f"tpr_at_fpr_{fpr:g}"]


def detection_metrics(
    scores: np.ndarray,
    is_positive: np.ndarray,
    fprs: Sequence[float] = (1e-2, 1e-3),
    prevalence: float | str | None = None,
) -> dict[str, float]:
    """Rare-class detection (lens finding): ROC AUC, precision-recall AUC and TPR at fixed FPRs
    (the `lens_detection` module).

    Args:
        scores: `(num_samples,)` scores, higher = more likely positive (e.g. the softmax probability of `lens`).
        is_positive: `(num_samples,)` binary labels.
        fprs: false-positive rates at which the TPR is read.
        prevalence: evaluate the PR AUC at this test prevalence (positives reweighted); `"deeplense"` is
            the DeepLense lens-finding test set's 195 / 19,650 (`DEEPLENSE_TEST_PREVALENCE`). ROC AUC and
            TPR-at-FPR are rates within a class and do not change; None keeps the sample's own prevalence.

    Returns:
        `{"roc_auc", "pr_auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", ..., "num_positives", "num_negatives",
        "prevalence", "fpr_resolution"}`; `pr_auc` is the average precision (the step-wise area under the
        precision-recall curve), whose chance level is the prevalence, not 0.5.
    """
    references = np.asarray(is_positive).astype(bool).astype(np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    return load_metric("lens_detection").compute(
        predictions=scores, references=references, fprs=tuple(fprs), prevalence=prevalence
    )


def make_compute_metrics(
    task: str, class_names: Sequence[str] | None = None, target_names: Sequence[str] | None = None
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `compute_metrics` function for `transformers.Trainer`.

    Args:
        task: `"classification"` or `"regression"`.
        class_names: classification class names (keys `auc_<name>`).
        target_names: regression target names (used with several targets).
    """
    if task == "classification":

        def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
            return classification_metrics(
                _first(prediction.predictions), _first(prediction.label_ids), class_names
            )

    elif task == "regression":

        def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
            return regression_metrics(
                _first(prediction.predictions), _first(prediction.label_ids), target_names
            )

    else:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return compute_metrics
