"""Smoke tests of the pre-training, fine-tuning, anomaly and evaluation recipes (tiny CPU configs)."""

import json
import runpy
import sys

import pytest
import torch
import yaml
from recipe_helpers import CONFIGS, RECIPES, run_recipe
from safetensors.torch import load_file
from transformers import (
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
)


def run_in_process(monkeypatch, script: str, *args: str) -> None:
    """Run a recipe's `__main__` in this process (local_hub patches this process only; no launcher start-up)."""
    monkeypatch.setattr(sys, "argv", [script, *map(str, args)])
    runpy.run_path(str(RECIPES / script), run_name="__main__")


def card_results(path):
    header = yaml.safe_load(path.read_text().split("---")[1])
    result = header["model-index"][0]["results"][0]
    return result["dataset"]["split"], {metric["type"]: metric["value"] for metric in result["metrics"]}


@pytest.mark.slow
def test_mae_pretraining_then_finetuning_then_evaluation(tiny_dataset, tmp_path, monkeypatch):
    mae_dir, model_dir, eval_dir = tmp_path / "mae", tmp_path / "model", tmp_path / "eval"
    output = run_recipe(
        "pretrain_mae.py",
        *("--config", str(CONFIGS / "tiny_mae.yaml"), "--dataset", str(tiny_dataset)),
        *("--output_dir", str(mae_dir), "--report_to", "tensorboard"),
    )
    assert "eval reconstruction loss" in output
    assert AutoModelForPreTraining.from_pretrained(mae_dir).config.model_type == "deeplense_mae"
    assert sorted(path.name for path in (mae_dir / "plots" / "reconstructions").iterdir()) == [
        "mae-step0000002.png",
        "mae-step0000004.png",
    ]
    assert (mae_dir / "plots" / "mae_reconstructions.png").is_file()
    assert list((mae_dir / "runs").rglob("events.out.tfevents*"))  # report_to tensorboard
    assert card_results(mae_dir / "README.md")[0] == "validation"

    output = run_recipe(
        "finetune.py",
        *("--config", str(CONFIGS / "tiny_finetune.yaml"), "--dataset", str(tiny_dataset)),
        *("--init_from", str(mae_dir), "--model_config", "{}", "--label_fraction", "0.5"),
        *("--output_dir", str(model_dir)),
    )
    assert "24 train rows" in output  # half of the 48 training rows, stratified
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert {"eval_auc_macro", "test_auc_macro", "test_auc_cdm", "test_accuracy"} <= set(metrics)
    for name in ("roc_test.png", "confusion_matrix_test.png", "loss_curves.png"):
        assert (model_dir / "plots" / name).is_file()
    split, card_metrics = card_results(model_dir / "README.md")
    assert split == "test" and card_metrics["auc_macro"] == pytest.approx(metrics["test_auc_macro"])
    assert yaml.safe_load((model_dir / "run_config.yaml").read_text())["init_from"] == str(mae_dir)

    # the saved model is the best checkpoint on the validation split
    state = json.loads(sorted(model_dir.glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    best = load_file(f"{state['best_model_checkpoint']}/model.safetensors")
    saved = load_file(model_dir / "model.safetensors")
    assert saved.keys() == best.keys() and all(torch.equal(saved[key], best[key]) for key in saved)
    # it loads through the Auto classes, with its processor
    classifier = AutoModelForImageClassification.from_pretrained(model_dir)
    assert classifier.config.id2label == {0: "no_sub", 1: "cdm", 2: "axion"}
    assert type(AutoModel.from_pretrained(model_dir)).__name__ == "DeepLenseViTModel"
    assert AutoImageProcessor.from_pretrained(model_dir).size == 16

    run_in_process(
        monkeypatch,
        "evaluate.py",
        *("--model", model_dir, "--dataset", tiny_dataset, "--output_dir", eval_dir, "--cam"),
    )
    evaluation = json.loads((eval_dir / "metrics.json").read_text())
    assert evaluation["task"] == "classification"
    assert evaluation["metrics"]["test_auc_macro"] == pytest.approx(metrics["test_auc_macro"], abs=1e-6)
    assert (eval_dir / "plots" / "cam_test.png").is_file()
    assert sum(map(sum, evaluation["confusion_matrix"])) == 6


@pytest.mark.slow
def test_simclr_on_simulated_images_then_linear_probe(tiny_dataset, tmp_path, monkeypatch):
    simclr_dir, probe_dir = tmp_path / "simclr", tmp_path / "probe"
    run_recipe(
        "pretrain_simclr.py",
        *("--config", str(CONFIGS / "tiny_simclr.yaml"), "--simulate", "model_ii"),
        *("--simulation_overrides", '{"image_size": 16}', "--output_dir", str(simclr_dir)),
    )
    assert (simclr_dir / "model.safetensors").is_file()
    run_in_process(
        monkeypatch,
        "finetune.py",
        *("--config", CONFIGS / "tiny_finetune.yaml", "--dataset", tiny_dataset),
        *("--init_from", simclr_dir, "--model_config", "{}", "--linear_probe", "--output_dir", probe_dir),
    )
    assert json.loads((probe_dir / "config.json").read_text())["architectures"] == [
        "DeepLenseSimCLRForImageClassification"
    ]
    # linear probe: the backbone (weights and batch-norm statistics) is exactly the pre-trained one
    pretrained = load_file(simclr_dir / "model.safetensors")
    probed = load_file(probe_dir / "model.safetensors")
    backbone = [key for key in pretrained if key.startswith("backbone.")]
    assert backbone and all(torch.equal(pretrained[key], probed[key]) for key in backbone)
    assert not torch.equal(
        AutoModelForImageClassification.from_pretrained(probe_dir).classifier.weight,
        AutoModelForImageClassification.from_config(
            AutoModelForImageClassification.from_pretrained(probe_dir).config
        ).classifier.weight,
    )


@pytest.mark.slow
def test_anomaly_detection_on_no_sub(tiny_dataset, tmp_path):
    output = run_recipe(
        "anomaly.py",
        *("--config", str(CONFIGS / "tiny_anomaly.yaml"), "--dataset", str(tiny_dataset)),
        *("--output_dir", str(tmp_path / "anomaly")),
    )
    assert "training on 16 no_sub images" in output
    metrics = json.loads((tmp_path / "anomaly" / "metrics.json").read_text())
    for key in (
        "test_anomaly_auc",
        "test_anomaly_auc_cdm",
        "test_anomaly_auc_axion",
        "test_anomaly_auc_macro",
    ):
        assert 0.0 <= metrics[key] <= 1.0
    for name in ("anomaly_scores_test.png", "anomaly_roc_test.png", "mae_reconstructions.png"):
        assert (tmp_path / "anomaly" / "plots" / name).is_file()
    assert AutoModelForPreTraining.from_pretrained(tmp_path / "anomaly").config.model_type == "deeplense_mae"


def test_finetune_push_to_hub_offline(tiny_dataset, tmp_path, monkeypatch):
    from hf_deeplense.testing_utils import local_hub

    with local_hub(tmp_path / "hub") as hub:
        run_in_process(
            monkeypatch,
            "finetune.py",
            *("--config", CONFIGS / "tiny_finetune.yaml", "--dataset", tiny_dataset),
            *("--output_dir", tmp_path / "run", "--push_to_hub", "--hub_model_id", "org/tiny-lens-vit"),
        )
        files = set(hub.list_files("org/tiny-lens-vit"))
        assert {"model.safetensors", "preprocessor_config.json", "README.md", "metrics.json"} <= files
        assert {"plots/roc_test.png", "plots/loss_curves.png"} <= files
        assert not any(name.startswith(("checkpoint-", "runs/")) for name in files)
        model = AutoModelForImageClassification.from_pretrained("org/tiny-lens-vit")
        assert model.config.num_labels == 3
        assert (
            'AutoModelForImageClassification.from_pretrained("org/tiny-lens-vit")'
            in (tmp_path / "run" / "README.md").read_text()
        )
