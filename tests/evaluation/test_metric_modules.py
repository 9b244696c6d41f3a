"""The shipped `evaluate` modules: offline loading by path, hand-checked values, `evaluate.combine`,
publishing as Hub metric repos (offline, against a recording HfApi), and `evaluate.evaluator`."""

import ast
import shutil

import evaluate
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from hf_deeplense import DeepLenseViTConfig, DeepLenseViTForImageClassification, LensImageProcessor
from hf_deeplense.evaluation.metrics import (
    DEEPLENSE_TEST_PREVALENCE,
    METRIC_MODULES,
    classification_metrics,
    detection_metrics,
    image_classification_evaluator,
    load_metric,
    make_compute_metrics,
    metric_module_path,
    publish_metric,
)


@pytest.mark.parametrize("name", METRIC_MODULES)
def test_modules_are_standalone_and_load_offline(name):
    source = (metric_module_path(name) / f"{name}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"datasets", "evaluate", "numpy", "sklearn"}, imported  # publishable as it is
    module = evaluate.load(str(metric_module_path(name)), keep_in_memory=True)  # HF_HUB_OFFLINE=1 here
    assert isinstance(module, evaluate.Metric) and module.name == name


def test_micro_and_macro_auc_against_a_hand_computation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    logits = rng.standard_normal((300, 3)) + 1.5 * np.eye(3)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    metrics = classification_metrics(logits, labels, ["axion", "cdm", "no_sub"])
    one_hot = np.eye(3)[labels]
    per_class = [roc_auc_score(one_hot[:, k], probabilities[:, k]) for k in range(3)]
    assert [metrics[f"auc_{n}"] for n in ("axion", "cdm", "no_sub")] == pytest.approx(per_class)
    assert metrics["auc_macro"] == pytest.approx(np.mean(per_class))
    # micro: every (image, class) one-vs-rest decision pooled into one ROC curve
    assert metrics["auc_micro"] == pytest.approx(roc_auc_score(one_hot.ravel(), probabilities.ravel()))
    assert metrics["auc_micro"] != pytest.approx(metrics["auc_macro"], abs=1e-6)
    assert metrics["accuracy"] == pytest.approx(np.mean(probabilities.argmax(1) == labels))
    # the Trainer's compute_metrics goes through the same module
    from transformers import EvalPrediction

    assert make_compute_metrics("classification", ["axion", "cdm", "no_sub"])(
        EvalPrediction(predictions=logits, label_ids=labels)
    ) == pytest.approx(metrics)


def test_regression_module_reports_dex_and_drops_nan_targets():
    module = load_metric("lensing_regression")
    result = module.compute(predictions=[-22.0, -23.5, -22.2], references=[-22.5, -23.0, np.nan])
    assert result["mean_absolute_error"] == pytest.approx(0.5) and result["rmse"] == pytest.approx(0.5)
    two = module.compute(
        predictions=[[-22.0, 1.0], [-23.0, 3.0]],
        references=[[-22.5, 1.0], [-23.0, 2.0]],
        target_names=["m", "z"],
    )
    assert two["mean_absolute_error_m"] == pytest.approx(0.25)
    assert two["mean_absolute_error_z"] == pytest.approx(0.5)
    assert two["mean_absolute_error"] == pytest.approx(0.375)


def test_anomaly_auc_module():
    assert load_metric("anomaly_auc").compute(predictions=[0.1, 0.9, 0.4, 0.3], references=[0, 1, 0, 1]) == {
        "anomaly_auc": 0.75
    }


def test_prevalence_reweighting_equals_replicating_the_positives():
    rng = np.random.default_rng(1)
    negatives, positives = rng.normal(0, 1, 100), rng.normal(1, 1, 10)
    scores = np.concatenate([negatives, positives])
    labels = np.r_[np.zeros(100), np.ones(10)]
    # weight 3 per positive: prevalence p with p / (1 - p) * 100 / 10 = 3
    at_prevalence = detection_metrics(scores, labels, prevalence=0.3 / 1.3)
    replicated = np.concatenate([negatives, np.tile(positives, 3)])
    replicated_labels = np.r_[np.zeros(100), np.ones(30)]
    assert at_prevalence["pr_auc"] == pytest.approx(average_precision_score(replicated_labels, replicated))
    assert at_prevalence["prevalence"] == pytest.approx(0.3 / 1.3)
    # ROC AUC and TPR-at-FPR are rates within a class: the prevalence leaves them alone
    own = detection_metrics(scores, labels)
    for key in ("roc_auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
        assert at_prevalence[key] == own[key]
    deeplense = detection_metrics(scores, labels, prevalence="deeplense")
    assert deeplense["prevalence"] == pytest.approx(DEEPLENSE_TEST_PREVALENCE) == pytest.approx(195 / 19650)
    assert deeplense["pr_auc"] < own["pr_auc"]  # fewer lenses: lower precision at every recall
    with pytest.raises(ValueError, match="prevalence must be in"):
        detection_metrics(scores, labels, prevalence=1.5)


def test_modules_combine():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200)
    scores = rng.random(200) + 0.5 * labels
    combined = evaluate.combine([load_metric("lens_detection"), load_metric("anomaly_auc")])
    result = combined.compute(predictions=scores, references=labels, fprs=(0.1,), prevalence="deeplense")
    assert result["anomaly_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert set(result) >= {"pr_auc", "tpr_at_fpr_0.1", "prevalence"}
    assert result["prevalence"] == pytest.approx(195 / 19650)


class RecordingHfApi:
    """Stands in for `huggingface_hub.HfApi`: records the calls and copies the uploaded folder."""

    def __init__(self, keep_dir):
        self.keep_dir, self.calls = keep_dir, []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        self.calls.append(("upload_folder", repo_id, kwargs))
        shutil.copytree(folder_path, self.keep_dir)
        return "commit-info"


def test_publish_metric_uploads_a_loadable_metric_space(tmp_path):
    uploaded = tmp_path / "lens_detection"
    api = RecordingHfApi(uploaded)
    assert publish_metric("lens_detection", "org/lens_detection", api=api) == "commit-info"
    assert api.calls[0] == (
        "create_repo",
        "org/lens_detection",
        {"repo_type": "space", "space_sdk": "gradio", "private": False, "exist_ok": True},
    )
    assert api.calls[1][0] == "upload_folder" and api.calls[1][2]["repo_type"] == "space"
    assert sorted(p.name for p in uploaded.iterdir()) == [
        "README.md",
        "app.py",
        "lens_detection.py",
        "requirements.txt",
    ]
    card = (uploaded / "README.md").read_text()
    assert card.startswith("---\n") and "sdk: gradio" in card and "- metric" in card
    assert 'evaluate.load("org/lens_detection")' in (uploaded / "app.py").read_text()
    # what was uploaded is a working module on its own (evaluate.load of a Space reads the same files)
    module = evaluate.load(str(uploaded), keep_in_memory=True)
    assert module.compute(predictions=[0.1, 0.4, 0.35, 0.8], references=[0, 0, 1, 1])["roc_auc"] == 0.75
    with pytest.raises(ValueError, match="module name"):
        publish_metric("lens_detection", "org/other_name", api=api)


def test_evaluator_image_classification_runs_on_our_pipeline(tmp_path):
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as ImageFeature
    from transformers import pipeline

    labels = ["axion", "cdm", "no_sub"]
    torch.manual_seed(0)
    config = DeepLenseViTConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37, num_labels=3, id2label=dict(enumerate(labels)),
        label2id={name: index for index, name in enumerate(labels)},
    )  # fmt: skip
    DeepLenseViTForImageClassification(config).save_pretrained(tmp_path / "model")
    LensImageProcessor(size=16).save_pretrained(tmp_path / "model")
    classifier = pipeline("image-classification", model=str(tmp_path / "model"))

    rng = np.random.default_rng(3)
    images = [Image.fromarray((rng.random((20, 20)) * 255).astype(np.uint8)) for _ in range(12)]
    data = Dataset.from_dict(
        {"image": images, "label": rng.integers(0, 3, 12).tolist()},
        features=Features({"image": ImageFeature(), "label": ClassLabel(names=labels)}),
    )
    # evaluate.evaluator("image-classification") as it is stops at transformers.TFPreTrainedModel (gone in
    # transformers 5) before using the pipeline; image_classification_evaluator() is it with that check fixed
    task_evaluator = image_classification_evaluator()
    assert isinstance(task_evaluator, type(evaluate.evaluator("image-classification")))
    result = task_evaluator.compute(
        model_or_pipeline=classifier,
        data=data,
        metric=load_metric("lensing_accuracy"),
        label_mapping=config.label2id,
    )
    top = [max(classifier(image), key=lambda entry: entry["score"])["label"] for image in images]
    expected = np.mean([config.label2id[name] == label for name, label in zip(top, data["label"])])
    assert result["accuracy"] == pytest.approx(expected)
    assert result["total_time_in_seconds"] > 0
    # a model directory works too: the evaluator builds the pipeline itself
    by_name = task_evaluator.compute(
        model_or_pipeline=str(tmp_path / "model"),
        data=data,
        metric=load_metric("lensing_accuracy"),
        label_mapping=config.label2id,
    )
    assert by_name["accuracy"] == pytest.approx(expected)


@pytest.mark.slow
def test_metrics_work_from_a_script_folder_holding_an_evaluate_py(tmp_path):
    """`python recipes/x.py` puts recipes/ (which has evaluate.py) first on sys.path: the library must still load."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = (
        "from hf_deeplense.evaluation.metrics import anomaly_auc, load_metric; "
        "auc, name = anomaly_auc([0.1, 0.9], [0, 1]), load_metric('anomaly_auc').name; "
        "import evaluate; print(auc, name, hasattr(evaluate, 'combine'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root / "recipes",  # sys.path[0] = "" = recipes/, as for a recipe run as a script
        env={**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1.0", "anomaly_auc", "True"]
