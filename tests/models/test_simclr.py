"""DeepLense SimCLR: the shared model tester (CNN backbone) plus backbone variants, remote code for every
backbone type, fine-tuning from a SimCLR checkpoint and linear probes."""

import json

import pytest
import torch
from test_modeling_common import ModelTesterMixin
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, AutoModelForPreTraining

from hf_deeplense import AutoModelForLensRegression
from hf_deeplense.models.cnn import DeepLenseCNNConfig, DeepLenseCNNModel
from hf_deeplense.models.equivariant import DeepLenseEquivariantConfig, DeepLenseEquivariantModel
from hf_deeplense.models.hybrid import DeepLenseHybridConfig, DeepLenseHybridModel
from hf_deeplense.models.simclr import (
    DeepLenseSimCLRConfig,
    DeepLenseSimCLRForImageClassification,
    DeepLenseSimCLRForRegression,
    DeepLenseSimCLRModel,
    nt_xent_loss,
)
from hf_deeplense.models.vit import DeepLenseViTConfig, DeepLenseViTModel
from hf_deeplense.training.modeling import freeze_backbone

VIT_PATCH_SIZES = {30: 6, 64: 8, 150: 10}


def tiny_backbone_config(backbone: str, num_channels: int = 1, image_size: int = 30):
    if backbone == "cnn":
        return DeepLenseCNNConfig(
            model_args={"channels": [8, 8, 16, 16]}, num_channels=num_channels, image_size=image_size
        )
    small = dict(
        num_channels=num_channels,
        image_size=image_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
    )
    if backbone == "vit":
        return DeepLenseViTConfig(patch_size=VIT_PATCH_SIZES[image_size], **small)
    if backbone == "equivariant":
        return DeepLenseEquivariantConfig(group="C4", stage_channels=[3, 5], **small)
    return DeepLenseHybridConfig(stem_channels=[4, 8, 8] if image_size >= 64 else [4, 8], **small)


def tiny_simclr_config(backbone: str = "cnn", num_channels: int = 1, image_size: int = 30, **overrides):
    kwargs = dict(
        backbone_config=tiny_backbone_config(backbone, num_channels, image_size),
        projection_hidden_size=24,
        projection_dim=8,
        temperature=0.2,
        num_targets=2,
        target_mean=[1.0, -2.0],
        target_std=[0.5, 3.0],
    )
    return DeepLenseSimCLRConfig(**{**kwargs, **overrides})


class TestDeepLenseSimCLR(ModelTesterMixin):
    config_class = DeepLenseSimCLRConfig
    has_cam_target_layer = True  # the CNN backbone's last stage
    backbone = "cnn"
    # NT-Xent over 2 pairs is nearly trivial and batch norm in the projection head over 2 samples is degenerate:
    # with 2 images one AdamW step can raise the loss (test_optimizer_step_lowers_loss).
    batch_size = 8
    invalid_config_kwargs = [
        ({"backbone_config": {"model_type": "deeplense_mae"}}, "backbone_config"),
        ({"backbone_config": {"model_type": "bert"}}, "backbone_config"),
        ({"temperature": 0.0}, "temperature"),
        ({"projection_dim": 0}, "projection_dim"),
        ({"num_targets": 2, "target_mean": [0.0, 1.0, 2.0]}, "target_mean"),
    ]

    def get_config(self, num_channels=1, image_size=None):
        # 64 px for the CNN: at 30 px its last stage is 1x1, and batch norm over 2 values is degenerate
        default_size = 64 if self.backbone == "cnn" else 30
        return tiny_simclr_config(
            self.backbone, num_channels=num_channels, image_size=image_size or default_size
        )

    def prepare_inputs(self, auto_name, config, labels=False):
        inputs = super().prepare_inputs(auto_name, config, labels)
        if auto_name == "AutoModelForPreTraining" or (labels and auto_name == "AutoModel"):
            # a second view (flipped, noisy) of each image: the contrastive loss and a gradient for the projection head
            generator = torch.Generator().manual_seed(1)
            pixel_values = inputs["pixel_values"]
            noise = torch.randn(pixel_values.shape, generator=generator)
            inputs["pixel_values_2"] = pixel_values.flip(-1) + 0.1 * noise
        return inputs

    def check_pretraining_output(self, output, config, inputs):
        batch_size = inputs["pixel_values"].shape[0]
        assert output.loss.ndim == 0
        assert output.projections.shape == output.projections_2.shape == (batch_size, config.projection_dim)
        assert output.embeddings.shape == output.embeddings_2.shape
        assert output.embeddings.shape[0] == batch_size


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["vit", "hybrid"])
def test_remote_code_without_package_for_transformer_backbones(backbone, tmp_path, fresh_python):
    """The shared remote-code test with the other backbone types: the saved directory carries the backbone code."""
    tester = TestDeepLenseSimCLR()
    tester.backbone = backbone
    tester.test_remote_code_without_package(tmp_path, fresh_python)


def test_saved_directory_carries_the_backbone_code(tmp_path):
    model = DeepLenseSimCLRModel(tiny_simclr_config("hybrid"))
    model.save_pretrained(tmp_path)
    files = {path.name for path in tmp_path.iterdir()}
    assert {"modeling_simclr.py", "configuration_simclr.py", "loss_simclr.py"} <= files
    assert {"modeling_hybrid.py", "configuration_hybrid.py"} <= files
    backbone_auto_map = json.loads((tmp_path / "config.json").read_text())["backbone_config"]["auto_map"]
    assert backbone_auto_map["AutoConfig"] == "configuration_hybrid.DeepLenseHybridConfig"
    assert backbone_auto_map["AutoModel"] == "modeling_hybrid.DeepLenseHybridModel"


def test_pretraining_checkpoint_loads_through_auto_model_for_pretraining(tmp_path):
    """What pretrain_simclr.py trains and saves loads back through `AutoModelForPreTraining` (the class its
    model card shows) and through `AutoModel`, with the same weights; both are listed in the saved auto_map."""
    torch.manual_seed(0)
    pretrained = AutoModel.from_config(tiny_simclr_config("vit")).eval()
    pretrained.save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert (
        auto_map["AutoModelForPreTraining"] == auto_map["AutoModel"] == "modeling_simclr.DeepLenseSimCLRModel"
    )
    view_1, view_2 = torch.randn(2, 1, 30, 30), torch.randn(2, 1, 30, 30)
    for auto_class in (AutoModelForPreTraining, AutoModel):
        loaded = auto_class.from_pretrained(tmp_path).eval()
        assert type(loaded) is DeepLenseSimCLRModel
        with torch.no_grad():
            torch.testing.assert_close(loaded(view_1, view_2).loss, pretrained(view_1, view_2).loss)


def test_defaults_build_a_resnet18_simclr():
    config = AutoConfig.for_model("deeplense_simclr")
    assert config.backbone_config.model_type == "deeplense_cnn"
    assert config.backbone_config.architecture == "resnet18"
    model = AutoModel.from_config(config)
    assert isinstance(model, DeepLenseSimCLRModel) and isinstance(model.backbone, DeepLenseCNNModel)
    assert model.projection_head.fc1.in_features == 512
    assert model.projection_head.fc2.out_features == config.projection_dim == 128


@pytest.mark.parametrize(
    ("backbone", "backbone_class"),
    [
        ("cnn", DeepLenseCNNModel),
        ("vit", DeepLenseViTModel),
        ("hybrid", DeepLenseHybridModel),
        ("equivariant", DeepLenseEquivariantModel),
    ],
)
def test_two_views_give_the_nt_xent_loss_of_the_projections(backbone, backbone_class):
    torch.manual_seed(0)
    model = DeepLenseSimCLRModel(tiny_simclr_config(backbone)).eval()
    assert isinstance(model.backbone, backbone_class)
    view_1, view_2 = torch.randn(3, 1, 30, 30), torch.randn(3, 1, 30, 30)
    with torch.no_grad():
        output = model(view_1, view_2)
        embeddings = model.backbone(view_1).pooler_output
    torch.testing.assert_close(output.embeddings, embeddings)
    torch.testing.assert_close(output.projections, model.projection_head(embeddings))
    assert output.projections_2.shape == (3, 8) and output.embeddings_2.shape == embeddings.shape
    torch.testing.assert_close(output.loss, nt_xent_loss(output.projections, output.projections_2, 0.2))
    with torch.no_grad():
        assert model(view_1, view_2, return_loss=False).loss is None
        one_view = model(view_1)
    assert one_view.loss is None and one_view.projections is None and one_view.embeddings_2 is None
    torch.testing.assert_close(one_view.embeddings, embeddings)


def test_classifier_fine_tunes_from_a_simclr_checkpoint(tmp_path):
    torch.manual_seed(0)
    pretrained = DeepLenseSimCLRModel(tiny_simclr_config("vit")).eval()
    pretrained.save_pretrained(tmp_path)
    classifier = AutoModelForImageClassification.from_pretrained(tmp_path, num_labels=4).eval()
    assert isinstance(classifier, DeepLenseSimCLRForImageClassification)
    assert classifier.classifier.out_features == 4
    for name, tensor in pretrained.backbone.state_dict().items():
        torch.testing.assert_close(classifier.backbone.state_dict()[name], tensor, msg=name)
    pixel_values = torch.randn(2, 1, 30, 30)
    with torch.no_grad():
        output = classifier(pixel_values, labels=torch.tensor([0, 3]))
    assert output.logits.shape == (2, 4) and output.loss.ndim == 0
    regressor = AutoModelForLensRegression.from_pretrained(tmp_path)
    assert isinstance(regressor, DeepLenseSimCLRForRegression)
    torch.testing.assert_close(
        regressor.backbone.embeddings.position_embeddings, pretrained.backbone.embeddings.position_embeddings
    )


def test_freeze_backbone_is_a_linear_probe(tmp_path):
    torch.manual_seed(0)
    DeepLenseSimCLRModel(tiny_simclr_config("cnn")).save_pretrained(tmp_path)
    probe = AutoModelForImageClassification.from_pretrained(tmp_path)
    freeze_backbone(probe)
    probe.train()
    probe(torch.randn(2, 1, 30, 30))  # the backbone goes back to eval mode at its forward
    assert not probe.backbone.training and probe.classifier.training  # frozen batch-norm statistics
    trainable = {name for name, parameter in probe.named_parameters() if parameter.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias"}
    running_mean = probe.backbone.encoder.bn1.running_mean.clone()
    probe(torch.randn(4, 1, 30, 30), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
    torch.testing.assert_close(probe.backbone.encoder.bn1.running_mean, running_mean)
    assert probe.classifier.weight.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in probe.backbone.parameters())
    built = DeepLenseSimCLRForRegression(tiny_simclr_config("vit"))
    freeze_backbone(built)
    assert not any(parameter.requires_grad for parameter in built.backbone.parameters())


def test_regression_standardises_targets_and_returns_original_units():
    torch.manual_seed(0)
    model = DeepLenseSimCLRForRegression(tiny_simclr_config("hybrid")).eval()
    pixel_values = torch.randn(4, 1, 30, 30)
    labels = torch.tensor([[1.0, -2.0], [1.5, 1.0], [0.5, -5.0], [2.0, 4.0]])
    with torch.no_grad():
        output = model(pixel_values, labels=labels)
        standardized = model.regressor(model.backbone(pixel_values).pooler_output)
    mean, std = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    torch.testing.assert_close(output.logits, standardized * std + mean)
    torch.testing.assert_close(output.loss, ((standardized - (labels - mean) / std) ** 2).mean())


def test_backbone_config_round_trips_through_json(tmp_path):
    config = tiny_simclr_config("vit", num_channels=3, image_size=64)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded.backbone_config) is DeepLenseViTConfig
    assert (loaded.num_channels, loaded.image_size, loaded.backbone_config.patch_size) == (3, 64, 8)
    from_dict = DeepLenseSimCLRConfig(backbone_config={"model_type": "deeplense_hybrid", "hidden_size": 64})
    assert (
        type(from_dict.backbone_config) is DeepLenseHybridConfig
        and from_dict.backbone_config.hidden_size == 64
    )
