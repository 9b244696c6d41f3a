import numpy as np
import pytest
import torch

from hf_deeplense.models.mae import DeepLenseMAEConfig, DeepLenseMAEForPreTraining
from hf_deeplense.training.modeling import (
    build_model,
    build_pretraining_model,
    freeze_backbone,
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
    total = model.num_parameters()
    backbone = freeze_backbone(model)
    assert 0 < model.num_parameters(only_trainable=True) < total
    assert all(not p.requires_grad for p in backbone.parameters())
    model.train()
    pixel_values = torch.rand(2, 1, 16, 16)
    # dropout in the backbone is off: two training-mode forwards agree
    torch.testing.assert_close(
        model(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits
    )
    assert not backbone.training


def _saved_vit_classifier(path):
    torch.manual_seed(0)
    model = build_model(
        "classification", model_type="deeplense_vit", config_overrides=TINY_VIT, class_names=NAMES
    )
    model.save_pretrained(path)
    return model


def test_checkpoint_keeps_its_architecture_and_takes_fine_tuning_fields(tmp_path):
    pretrained = _saved_vit_classifier(tmp_path)
    overrides = {
        "hidden_dropout_prob": 0.3,
        "classifier_dropout_prob": 0.2,
        "hidden_size": 32,  # the checkpoint's value: allowed
        "image_size": 16,
    }
    model = build_model(
        "classification", checkpoint=str(tmp_path), config_overrides=overrides, class_names=["a", "b"]
    )
    assert (model.config.hidden_dropout_prob, model.config.classifier_dropout_prob) == (0.3, 0.2)
    assert model.config.id2label == {0: "a", 1: "b"} and model.classifier.out_features == 2
    for name, tensor in pretrained.vit.state_dict().items():
        torch.testing.assert_close(model.vit.state_dict()[name], tensor, msg=name)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": 64}, "hidden_size=64, but checkpoint .* has hidden_size=32"),
        ({"num_hidden_layers": 2}, "num_hidden_layers=2, but checkpoint .* has num_hidden_layers=1"),
        ({"patch_size": 8}, "patch_size=8, but checkpoint .* has patch_size=4"),
        ({"image_size": 32}, "image_size=32, but checkpoint .* has image_size=16"),
        ({"num_channels": 3}, "num_channels=3, but checkpoint .* has num_channels=1"),
        ({"freeze_backbone": True}, "freeze_backbone is not a field of the deeplense_vit config"),
        ({"hidden_dropout_prob": 2.0}, "hidden_dropout_prob"),  # a fine-tuning field still validated
    ],
)
def test_checkpoint_architecture_overrides_raise(tmp_path, overrides, message):
    _saved_vit_classifier(tmp_path)
    with pytest.raises(ValueError, match=message):
        build_model("classification", checkpoint=str(tmp_path), config_overrides=overrides, class_names=NAMES)


def test_mae_and_simclr_checkpoints_keep_their_architecture(tmp_path):
    mae = build_pretraining_model(
        "deeplense_mae",
        {
            **TINY_VIT,
            "decoder_hidden_size": 16,
            "decoder_num_hidden_layers": 1,
            "decoder_num_attention_heads": 2,
        },
    )
    mae.save_pretrained(tmp_path / "mae")
    with pytest.raises(ValueError, match="hidden_size=48, but checkpoint .*mae has hidden_size=32"):
        build_model(
            "regression",
            checkpoint=str(tmp_path / "mae"),
            config_overrides={"hidden_size": 48},
            target_mean=0.0,
        )
    regressor = build_model(
        "regression",
        checkpoint=str(tmp_path / "mae"),
        config_overrides={"attention_probs_dropout_prob": 0.1},
        target_mean=-23.0,
        target_std=0.5,
    )
    assert (
        regressor.config.model_type == "deeplense_vit"
        and regressor.config.attention_probs_dropout_prob == 0.1
    )
    assert regressor.config.hidden_size == 32

    simclr = build_pretraining_model(
        "deeplense_simclr",
        {"backbone_config": {"model_type": "deeplense_vit", **TINY_VIT}, "projection_dim": 8},
    )
    simclr.save_pretrained(tmp_path / "simclr")
    with pytest.raises(ValueError, match=r"backbone_config\.hidden_size=64, but checkpoint .* has .*=32"):
        build_model(
            "classification",
            checkpoint=str(tmp_path / "simclr"),
            config_overrides={"backbone_config": {"hidden_size": 64}},
            class_names=NAMES,
        )
    probe = build_model(
        "classification",
        checkpoint=str(tmp_path / "simclr"),
        config_overrides={"backbone_config": {"hidden_dropout_prob": 0.25}},
        class_names=NAMES,
    )
    freeze_backbone(probe)
    assert not any(parameter.requires_grad for parameter in probe.backbone.parameters())
    assert probe.config.backbone_config.hidden_dropout_prob == 0.25
    assert probe.config.backbone_config.hidden_size == 32
    for name, tensor in simclr.backbone.state_dict().items():
        torch.testing.assert_close(probe.backbone.state_dict()[name], tensor, msg=name)
