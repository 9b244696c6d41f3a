import numpy as np
import pytest
import torch

from hf_deeplense.models.mae import DeepLenseMAEConfig, DeepLenseMAEForPreTraining
from hf_deeplense.training.modeling import (
    build_model,
    build_pretraining_model,
    freeze_backbone,
    num_parameters,
)

TINY_VIT = {
    "image_size": 16,
    "patch_size": 4,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 37,
}
NAMES = ["no_sub", "cdm", "axion"]


def test_new_models_for_both_tasks():
    model = build_model(
        "classification", model_type="deeplense_vit", config_overrides=TINY_VIT, class_names=NAMES
    )
    assert model.config.id2label == {0: "no_sub", 1: "cdm", 2: "axion"}
    assert model(pixel_values=torch.rand(2, 1, 16, 16)).logits.shape == (2, 3)
    model = build_model(
        "regression", model_type="deeplense_vit", config_overrides=TINY_VIT, target_mean=-23.0, target_std=0.5
    )
    assert np.ravel(model.config.target_mean).tolist() == [-23.0]
    assert np.ravel(model.config.target_std).tolist() == [0.5]
    assert model(pixel_values=torch.rand(2, 1, 16, 16)).logits.shape == (2, 1)
    with pytest.raises(ValueError, match="exactly one"):
        build_model("classification", class_names=NAMES)
    with pytest.raises(ValueError, match="task"):
        build_model("segmentation", model_type="deeplense_vit")


def test_mae_checkpoint_encoder_loads_into_vit_heads(tmp_path):
    mae_config = {
        **TINY_VIT,
        "decoder_hidden_size": 16,
        "decoder_num_hidden_layers": 1,
        "decoder_num_attention_heads": 2,
        "decoder_intermediate_size": 19,
    }
    mae = build_pretraining_model("deeplense_mae", mae_config)
    assert isinstance(mae, DeepLenseMAEForPreTraining) and isinstance(mae.config, DeepLenseMAEConfig)
    mae.save_pretrained(tmp_path)
    model = build_model("classification", checkpoint=str(tmp_path), class_names=NAMES)
    assert model.config.model_type == "deeplense_vit"
    mae_state = {k.removeprefix("vit."): v for k, v in mae.state_dict().items() if k.startswith("vit.")}
    vit_state = {
        k.split(".", 1)[1]: v for k, v in model.state_dict().items() if k.startswith(model.base_model_prefix)
    }
    shared = set(mae_state) & set(vit_state)
    assert len(shared) > 5, sorted(vit_state)[:10]
    for key in shared:
        torch.testing.assert_close(vit_state[key], mae_state[key], msg=key)


def test_linear_probe_freezes_backbone_and_keeps_it_in_eval_mode():
    model = build_model(
        "classification",
        model_type="deeplense_vit",
        config_overrides={**TINY_VIT, "hidden_dropout_prob": 0.5},
        class_names=NAMES,
    )
    total = num_parameters(model)
    backbone = freeze_backbone(model)
    assert 0 < num_parameters(model, trainable_only=True) < total
    assert all(not p.requires_grad for p in backbone.parameters())
    model.train()
    pixel_values = torch.rand(2, 1, 16, 16)
    # dropout in the backbone is off: two training-mode forwards agree
    torch.testing.assert_close(
        model(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits
    )
    assert not backbone.training
