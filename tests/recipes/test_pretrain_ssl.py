"""recipes/pretrain_ssl.py end to end on the tiny CPU configs: DINO (multi-crop, 1 and 2 processes), BYOL,
SimSiam and DINO on the equivariant backbone, then fine-tuning of the kept encoder."""

import json

import pytest
import torch
from recipe_helpers import CONFIGS, load_recipe, run_recipe
from safetensors.torch import load_file
from transformers import AutoModelForPreTraining

from hf_deeplense.training.modeling import build_model


def ssl_args(config: str, dataset, output_dir) -> list[str]:
    return [
        "--config",
        str(CONFIGS / f"{config}.yaml"),
        "--dataset",
        str(dataset),
        "--output_dir",
        str(output_dir),
    ]


def assert_ema_differs_from_online(weights: dict, online_prefix: str, ema_prefix: str) -> None:
    """The EMA network starts as a copy of the online one; after training it lags behind it (the exact update is
    tested in tests/training/test_momentum.py)."""
    ema = [key for key in weights if key.startswith(ema_prefix) and weights[key].is_floating_point()]
    assert ema
    online = [online_prefix + key.removeprefix(ema_prefix) for key in ema]
    assert any(not torch.equal(weights[a], weights[b]) for a, b in zip(ema, online))


@pytest.mark.slow
@pytest.mark.parametrize("num_processes", [1, 2])
def test_dino_then_linear_probe_of_the_teacher_backbone(tiny_dataset, tmp_path, num_processes):
    dino_dir, probe_dir = tmp_path / "dino", tmp_path / "probe"
    output = run_recipe(
        "pretrain_ssl.py", *ssl_args("tiny_dino", tiny_dataset, dino_dir), num_processes=num_processes
    )
    assert "eval DINO loss" in output
    model = AutoModelForPreTraining.from_pretrained(dino_dir)
    assert model.config.model_type == "deeplense_dino"
    assert model.center.abs().sum() > 0  # centring ran
    weights = load_file(dino_dir / "model.safetensors")
    assert_ema_differs_from_online(weights, "student_backbone.", "backbone.")
    metrics = json.loads((dino_dir / "metrics.json").read_text())
    assert torch.isfinite(torch.tensor(metrics["eval_loss"]))
    if num_processes == 2:
        return
    load_recipe("finetune").main(  # the recipe, in this process
        [
            *("--config", str(CONFIGS / "tiny_finetune.yaml"), "--dataset", str(tiny_dataset)),
            *("--init_from", str(dino_dir), "--model_config", "{}", "--linear_probe", "--max_steps", "2"),
            *("--output_dir", str(probe_dir)),
        ]
    )
    # the DINO head: teacher backbone + linear layer
    assert json.loads((probe_dir / "config.json").read_text())["architectures"] == [
        "DeepLenseDINOForImageClassification"
    ]
    probed = load_file(probe_dir / "model.safetensors")
    backbone = [key for key in weights if key.startswith("backbone.")]
    assert backbone and all(torch.equal(weights[key], probed[key]) for key in backbone)  # the teacher, frozen
    assert not any(key.startswith(("student_", "teacher_")) for key in probed)


@pytest.mark.parametrize(
    ("config", "ema"),
    [
        ("tiny_byol", ("backbone.", "target_backbone.")),
        ("tiny_simsiam", None),
        ("tiny_dino_equivariant", ("student_backbone.", "backbone.")),
    ],
)
def test_pretrain_ssl_runs_and_its_encoder_fine_tunes(config, ema, tiny_dataset, tmp_path):
    output_dir = tmp_path / config
    metrics = load_recipe("pretrain_ssl").main(ssl_args(config, tiny_dataset, output_dir))
    assert torch.isfinite(torch.tensor(metrics["eval_loss"]))
    assert (output_dir / "README.md").is_file() and (output_dir / "preprocessor_config.json").is_file()
    weights = load_file(output_dir / "model.safetensors")
    if ema is not None:
        assert_ema_differs_from_online(weights, *ema)
    classifier = build_model(
        "classification", checkpoint=str(output_dir), class_names=["no_sub", "cdm", "axion"]
    )
    for key, tensor in classifier.backbone.state_dict().items():
        assert torch.equal(tensor, weights[f"backbone.{key}"]), key
    expected_backbone = "deeplense_equivariant" if "equivariant" in config else "deeplense_cnn"
    assert classifier.config.backbone_config.model_type == expected_backbone


def test_local_crops_need_a_model_that_takes_them(tiny_dataset, tmp_path):
    from hf_deeplense.training import pretrain_ssl

    with pytest.raises(ValueError, match="local crops are DINO's"):
        pretrain_ssl([*ssl_args("tiny_simclr", tiny_dataset, tmp_path / "run"), "--num_local_crops", "2"])
