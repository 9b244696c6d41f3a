"""DeepLense BYOL: the shared model tester (CNN backbone), other backbones, the loss against lightly's and a
hand-written reference, the frozen EMA target, remote code and fine-tuning of the online backbone."""

import numpy as np
import pytest
import torch
from lightly.loss import NegativeCosineSimilarity
from ssl_helpers import (
    SSLTesterMixin,
    assert_backbone_loads_into_heads,
    assert_heads_load_as_remote_code,
    second_view,
    tiny_ssl_config,
)
from test_modeling_common import ModelTesterMixin
from transformers import AutoModel

from hf_deeplense.models.byol import DeepLenseBYOLConfig, DeepLenseBYOLModel, byol_loss


class TestDeepLenseBYOL(SSLTesterMixin, ModelTesterMixin):
    config_class = DeepLenseBYOLConfig
    invalid_config_kwargs = [
        ({"backbone_config": {"model_type": "bert"}}, "backbone_config"),
        ({"projection_dim": 0}, "projection_dim"),
        ({"momentum": -0.5}, "momentum"),
    ]

    def check_pretraining_output(self, output, config, inputs):
        batch_size = inputs["pixel_values"].shape[0]
        assert output.loss.ndim == 0
        for name in ("predictions", "predictions_2", "target_projections", "target_projections_2"):
            assert getattr(output, name).shape == (batch_size, config.projection_dim), name
        assert (
            output.embeddings.shape == output.embeddings_2.shape and output.embeddings.shape[0] == batch_size
        )


def test_byol_loss_matches_lightly_and_eq_2():
    """Eq. (2) of BYOL (Grill et al. 2020), ||p/|p| - z/|z| ||^2 averaged over the batch, computed in numpy."""
    generator = torch.Generator().manual_seed(0)
    predictions, targets = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    p, z = predictions.double().numpy(), targets.double().numpy()
    p, z = p / np.linalg.norm(p, axis=1, keepdims=True), z / np.linalg.norm(z, axis=1, keepdims=True)
    expected = ((p - z) ** 2).sum(axis=1).mean()
    loss = byol_loss(predictions, targets)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert loss.item() == pytest.approx(
        2 + 2 * NegativeCosineSimilarity()(predictions, targets).item(), rel=1e-5
    )


def test_loss_is_symmetrised_and_the_target_gets_no_gradient(tmp_path):
    torch.manual_seed(0)
    model = DeepLenseBYOLModel(tiny_ssl_config("deeplense_byol", "vit")).train()
    for online, target in model.momentum_pairs():
        for online_parameter, target_parameter in zip(online.parameters(), target.parameters()):
            assert torch.equal(online_parameter, target_parameter) and not target_parameter.requires_grad
    pixel_values = torch.randn(4, 1, 30, 30)
    output = model(pixel_values, second_view(pixel_values))
    expected = byol_loss(output.predictions, output.target_projections_2) + byol_loss(
        output.predictions_2, output.target_projections
    )
    torch.testing.assert_close(output.loss, expected)
    output.loss.backward()
    assert all(
        p.grad is None
        for p in [*model.target_backbone.parameters(), *model.target_projection_head.parameters()]
    )
    assert all(p.grad is not None for p in model.prediction_head.parameters())
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert not any(parameter.requires_grad for parameter in loaded.target_backbone.parameters())


@pytest.mark.parametrize("backbone", ["vit", "hybrid", "equivariant"])
def test_other_backbones_train(backbone):
    torch.manual_seed(0)
    model = DeepLenseBYOLModel(tiny_ssl_config("deeplense_byol", backbone)).train()
    pixel_values = torch.randn(4, 1, 30, 30)
    model(pixel_values, second_view(pixel_values)).loss.backward()
    assert all(parameter.grad is not None for parameter in model.backbone.parameters())


@pytest.mark.slow
def test_remote_code_without_package_for_a_vit_backbone(tmp_path, fresh_python):
    tester = TestDeepLenseBYOL()
    tester.backbone = "vit"
    tester.test_remote_code_without_package(tmp_path, fresh_python)


@pytest.mark.parametrize("backbone", ["cnn", "vit", "hybrid", "equivariant"])
def test_online_backbone_loads_into_the_heads(backbone, tmp_path):
    assert_backbone_loads_into_heads(trained_byol(backbone), tmp_path / "byol")


@pytest.mark.slow
def test_heads_load_the_online_backbone_as_remote_code(tmp_path, fresh_python):
    assert_heads_load_as_remote_code(trained_byol("cnn"), tmp_path, fresh_python)


def trained_byol(backbone: str) -> DeepLenseBYOLModel:
    torch.manual_seed(0)
    model = DeepLenseBYOLModel(tiny_ssl_config("deeplense_byol", backbone))
    with torch.no_grad():  # a target that differs from the online network, as after training
        for parameter in model.target_backbone.parameters():
            parameter.add_(0.1)
    return model
