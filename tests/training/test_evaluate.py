"""`evaluate_checkpoint` (`recipes/evaluate.py`): the task read from a checkpoint, and the report of each task."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForPreTraining

from hf_deeplense.image_processing_lens import LensImageProcessor
from hf_deeplense.models import DeepLenseMAEConfig, DeepLenseMAEForPreTraining, DeepLenseSimCLRConfig, task_of
from hf_deeplense.training import evaluate_checkpoint
from hf_deeplense.training.evaluate import infer_task
from hf_deeplense.training.modeling import build_model

TINY_VIT = {
    "image_size": 16,
    "patch_size": 4,
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
}
CLASS_NAMES = ["no_sub", "cdm", "axion"]


def save(model, folder):
    model.save_pretrained(folder)
    LensImageProcessor(num_channels=1, size=16, do_resize=True).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Untrained tiny checkpoints of each task: classifiers of three and of two classes, regressor, MAE, SimCLR."""
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    vit = {"model_type": "deeplense_vit", "config_overrides": TINY_VIT}
    mae_config = DeepLenseMAEConfig(**TINY_VIT, decoder_hidden_size=8, decoder_num_attention_heads=2)
    simclr_config = AutoConfig.for_model(
        "deeplense_simclr", backbone_config={"model_type": "deeplense_vit", **TINY_VIT}
    )
    return {
        "classification": save(build_model("classification", class_names=CLASS_NAMES, **vit), folder / "cls"),
        "regression": save(build_model("regression", **vit), folder / "reg"),
        "two_classes": save(
            build_model("classification", class_names=CLASS_NAMES[:2], **vit), folder / "cls2"
        ),
        "anomaly": save(DeepLenseMAEForPreTraining(mae_config), folder / "mae"),
        "simclr": save(AutoModelForPreTraining.from_config(simclr_config), folder / "simclr"),
    }


def test_the_task_of_a_checkpoint_comes_from_its_architectures(checkpoints):
    for task in ("classification", "regression", "anomaly"):
        assert infer_task(checkpoints[task]) == task
    # SimCLR's model is its base model and its pre-training model at once: no task to read
    with pytest.raises(ValueError, match="pass --task"):
        infer_task(checkpoints["simclr"])
    assert task_of(DeepLenseSimCLRConfig()) is None  # a config that names no architecture


def evaluate(checkpoint, dataset, output_dir, *extra):
    command = ["--model", checkpoint, "--dataset", str(dataset), "--output_dir", str(output_dir), *extra]
    return evaluate_checkpoint([*command, "--device", "cpu"])


def test_regression_reports_errors_on_the_rows_with_a_target(checkpoints, random_lensing_dataset, tmp_path):
    metrics = evaluate(checkpoints["regression"], random_lensing_dataset, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["task"] == "regression" and saved["metrics"] == metrics
    assert {"test_mean_absolute_error", "test_rmse", "test_r2"} <= set(metrics)
    assert (tmp_path / "plots" / "scatter_log10_m_a_test.png").is_file()


def test_an_mae_checkpoint_scores_anomalies_against_the_normal_class(
    checkpoints, random_lensing_dataset, tmp_path
):
    metrics = evaluate(checkpoints["anomaly"], random_lensing_dataset, tmp_path, "--normal_class", "no_sub")
    assert json.loads((tmp_path / "metrics.json").read_text())["task"] == "anomaly"
    assert {"test_anomaly_auc", "test_anomaly_auc_cdm", "test_anomaly_auc_axion"} <= set(metrics)
    for name in ("anomaly_scores_test.png", "mae_reconstructions_test.png"):
        assert (tmp_path / "plots" / name).is_file()


def test_a_classifier_of_other_classes_is_refused_before_predicting(
    checkpoints, random_lensing_dataset, tmp_path
):
    with pytest.raises(ValueError, match=r"predicts \['no_sub', 'cdm'\], the dataset has classes"):
        evaluate(checkpoints["two_classes"], random_lensing_dataset, tmp_path)
    assert not (tmp_path / "metrics.json").exists()
