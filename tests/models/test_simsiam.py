"""DeepLense SimSiam: the shared model tester (CNN backbone), other backbones, the loss against lightly's and a
hand-written reference, the stop-gradient, remote code and fine-tuning of the backbone."""

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

from hf_deeplense.models.simsiam import DeepLenseSimSiamConfig, DeepLenseSimSiamModel, simsiam_loss


class TestDeepLenseSimSiam(SSLTesterMixin, ModelTesterMixin):
    config_class = DeepLenseSimSiamConfig
    invalid_config_kwargs = [
        ({"backbone_config": {"model_type": "deeplense_simclr"}}, "backbone_config"),
        ({"projection_dim": -1}, "projection_dim"),
        ({"prediction_hidden_size": 0}, "prediction_hidden_size"),
    ]

    def check_pretraining_output(self, output, config, inputs):
        batch_size = inputs["pixel_values"].shape[0]
        assert -1.0 <= output.loss.item() <= 1.0
        for name in ("projections", "projections_2", "predictions", "predictions_2"):
            assert getattr(output, name).shape == (batch_size, config.projection_dim), name


def test_simsiam_loss_matches_lightly_and_eq_4():
    """Eq. (4) of SimSiam (Chen & He 2021), L = D(p1, z2)/2 + D(p2, z1)/2 with D = -cos, computed in numpy."""
    generator = torch.Generator().manual_seed(0)
    p1, z2, p2, z1 = (torch.randn(5, 7, generator=generator) for _ in range(4))

    def negative_cosine(p, z):
        p, z = p.double().numpy(), z.double().numpy()
        return -np.mean([a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(p, z)])

    loss = simsiam_loss(p1, z2, p2, z1)
    assert loss.item() == pytest.approx(negative_cosine(p1, z2) / 2 + negative_cosine(p2, z1) / 2, rel=1e-5)
    criterion = NegativeCosineSimilarity()
    assert loss.item() == pytest.approx(0.5 * (criterion(p1, z2) + criterion(p2, z1)).item(), rel=1e-5)


def test_stop_gradient_on_the_projections():
    predictions, predictions_2 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    projections, projections_2 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    simsiam_loss(predictions, projections_2, predictions_2, projections).backward()
    assert projections.grad is None and projections_2.grad is None
    assert predictions.grad.abs().sum() > 0 and predictions_2.grad.abs().sum() > 0
    # in the model the projector still learns, through the predictor's input
    torch.manual_seed(0)
    model = DeepLenseSimSiamModel(tiny_ssl_config("deeplense_simsiam", "vit")).train()
    pixel_values = torch.randn(4, 1, 30, 30)
    output = model(pixel_values, second_view(pixel_values))
    torch.testing.assert_close(
        output.loss,
        simsiam_loss(output.predictions, output.projections_2, output.predictions_2, output.projections),
    )
    output.loss.backward()
    assert all(parameter.grad is not None for parameter in model.projection_head.parameters())


@pytest.mark.parametrize("backbone", ["vit", "hybrid", "equivariant"])
def test_other_backbones_train(backbone):
    torch.manual_seed(0)
    model = DeepLenseSimSiamModel(tiny_ssl_config("deeplense_simsiam", backbone)).train()
    pixel_values = torch.randn(4, 1, 30, 30)
    model(pixel_values, second_view(pixel_values)).loss.backward()
    assert all(parameter.grad is not None for parameter in model.backbone.parameters())


@pytest.mark.slow
def test_remote_code_without_package_for_a_hybrid_backbone(tmp_path, fresh_python):
    tester = TestDeepLenseSimSiam()
    tester.backbone = "hybrid"
    tester.test_remote_code_without_package(tmp_path, fresh_python)


@pytest.mark.parametrize("backbone", ["cnn", "vit", "hybrid", "equivariant"])
def test_backbone_loads_into_the_heads(backbone, tmp_path):
    torch.manual_seed(0)
    model = DeepLenseSimSiamModel(tiny_ssl_config("deeplense_simsiam", backbone))
    assert_backbone_loads_into_heads(model, tmp_path / "simsiam")


@pytest.mark.slow
def test_heads_load_the_backbone_as_remote_code(tmp_path, fresh_python):
    torch.manual_seed(0)
    model = DeepLenseSimSiamModel(tiny_ssl_config("deeplense_simsiam", "hybrid"))
    assert_heads_load_as_remote_code(model, tmp_path, fresh_python)
