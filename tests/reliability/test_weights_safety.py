"""Weights are written only as safetensors, and a planted pickle `pytorch_model.bin` never runs.

transformers 5.23 prefers `model.safetensors` when both files exist, and loads a lone `.bin` with
`torch.load(weights_only=True)`, which refuses the payload (UnpicklingError)."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import AutoModel

from hf_deeplense.models import MODEL_REGISTRY
from hf_deeplense.models.auto import AUTO_CLASSES

# Tiny configs, one per registered model_type (a new architecture must add one here).
TINY_VIT = dict(
    image_size=16,
    patch_size=4,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=37,
)
TINY_CONFIGS = {
    "deeplense_vit": TINY_VIT,
    "deeplense_mae": {
        **TINY_VIT,
        "decoder_hidden_size": 16,
        "decoder_num_hidden_layers": 1,
        "decoder_num_attention_heads": 2,
        "decoder_intermediate_size": 20,
    },
    "deeplense_cnn": {"image_size": 32, "model_args": {"channels": [8, 8, 16, 16]}},
    "deeplense_hybrid": {**TINY_VIT, "stem_channels": [4, 8]},
    "deeplense_equivariant": {**TINY_VIT, "group": "C4", "stage_channels": [3, 5]},
    "deeplense_simclr": {
        "backbone_config": {"model_type": "deeplense_cnn", "model_args": {"channels": [8, 8, 16, 16]}},
        "projection_hidden_size": 24,
        "projection_dim": 8,
    },
    "deeplense_lensfinder": {"image_size": 16, "conv_channels": [4, 6], "hidden_size": 16},
    "deeplense_dino": {
        "backbone_config": {"model_type": "deeplense_cnn", "model_args": {"channels": [8, 8, 16, 16]}},
        "head_hidden_size": 24,
        "head_bottleneck_size": 8,
        "out_dim": 16,
    },
    "deeplense_byol": {
        "backbone_config": {"model_type": "deeplense_cnn", "model_args": {"channels": [8, 8, 16, 16]}},
        "projection_hidden_size": 24,
        "projection_dim": 8,
    },
    "deeplense_simsiam": {
        "backbone_config": {"model_type": "deeplense_cnn", "model_args": {"channels": [8, 8, 16, 16]}},
        "projection_dim": 16,
        "prediction_hidden_size": 8,
    },
}
HEADS = [
    pytest.param(registration, auto_name, id=f"{registration.model_type}-{auto_name}")
    for registration in MODEL_REGISTRY
    for auto_name in registration.auto_classes()
]


class Payload:
    """Unpickling this writes `marker`: proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickle(path, marker):
    torch.save({"vit.embeddings.cls_token": Payload(marker)}, path)


def test_every_registered_model_type_has_a_tiny_config():
    assert sorted(TINY_CONFIGS) == sorted(registration.model_type for registration in MODEL_REGISTRY)


@pytest.mark.parametrize(("registration", "auto_name"), HEADS)
def test_save_pretrained_writes_safetensors_only(registration, auto_name, tmp_path):
    config = registration.config_class(**TINY_CONFIGS[registration.model_type])
    registration.auto_classes()[auto_name](config).save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files
    pickled = [name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    assert not pickled, pickled


@pytest.fixture
def saved_vit(tmp_path):
    config = MODEL_REGISTRY[0].config_class(**TINY_VIT)
    assert config.model_type == "deeplense_vit"
    model = AUTO_CLASSES["AutoModel"].from_config(config)
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model", model


def test_planted_bin_next_to_safetensors_is_never_unpickled(saved_vit, tmp_path):
    model_dir, model = saved_vit
    marker = tmp_path / "pwned"
    plant_pickle(model_dir / "pytorch_model.bin", marker)
    loaded = AutoModel.from_pretrained(model_dir)
    assert not marker.exists()
    for name, tensor in model.state_dict().items():  # the weights came from model.safetensors
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0)


def test_lone_planted_bin_is_refused_without_running(saved_vit, tmp_path):
    model_dir, _ = saved_vit
    marker = tmp_path / "pwned"
    (model_dir / "model.safetensors").unlink()
    plant_pickle(model_dir / "pytorch_model.bin", marker)
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        AutoModel.from_pretrained(model_dir)
    assert not marker.exists()
    # control: the payload is live, so the assertions above can fail
    torch.load(model_dir / "pytorch_model.bin", weights_only=False)  # noqa: S614 (the test's own file)
    assert marker.exists()
