"""Tests of DANN / ADDA building blocks (`hf_deeplense.training.domain_adaptation`)."""

import pytest
import torch

from hf_deeplense.models.equivariant import (
    DeepLenseEquivariantConfig,
    DeepLenseEquivariantForImageClassification,
)
from hf_deeplense.models.lensfinder import (
    DeepLenseLensFinderConfig,
    DeepLenseLensFinderForImageClassification,
)
from hf_deeplense.training.domain_adaptation import (
    AdaptationConfig,
    dann_coefficient,
    features_and_logits,
    grad_reverse,
    predict_probabilities,
    train_adda,
    train_dann,
    train_source_only,
)


def tiny_models():
    torch.manual_seed(0)
    lensfinder = DeepLenseLensFinderForImageClassification(
        DeepLenseLensFinderConfig(num_channels=1, conv_channels=[4, 6], hidden_size=12)
    )
    equivariant = DeepLenseEquivariantForImageClassification(
        DeepLenseEquivariantConfig(
            group="C4",
            stage_channels=[2],
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
            stem_kernel_size=3,
            num_labels=2,
        )
    )
    return [lensfinder, equivariant]


def two_domains(num: int = 40, size: int = 12):
    """Class = bright centre; the target domain is blurred and offset (a covariate shift)."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (num,), generator=generator)
    source = torch.randn(num, 1, size, size, generator=generator) * 0.3
    source[:, :, 4:8, 4:8] += labels[:, None, None, None].float()
    target = torch.nn.functional.avg_pool2d(source, 3, stride=1, padding=1) + 0.5
    return source, labels, target


def test_gradient_reversal_flips_and_scales_the_gradient():
    inputs = torch.randn(5, requires_grad=True)
    grad_reverse(inputs, 0.3).sum().backward()
    torch.testing.assert_close(inputs.grad, torch.full((5,), -0.3))
    assert torch.equal(grad_reverse(inputs.detach(), 0.3), inputs.detach())


def test_dann_coefficient_ramps_from_zero_to_one():
    assert dann_coefficient(0.0) == 0.0
    assert 0.99 < dann_coefficient(1.0) < 1.0
    assert dann_coefficient(0.1) < dann_coefficient(0.5)


@pytest.mark.parametrize("index", [0, 1], ids=["lensfinder", "equivariant"])
def test_features_are_the_base_model_pooler_output(index):
    model = tiny_models()[index].eval()
    images = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        features, logits = features_and_logits(model, images)
        torch.testing.assert_close(features, model.base_model(pixel_values=images).pooler_output)
        torch.testing.assert_close(logits, model(pixel_values=images).logits)


@pytest.mark.parametrize("index", [0, 1], ids=["lensfinder", "equivariant"])
def test_dann_trains_backbone_and_discriminator(index):
    model = tiny_models()[index]
    source, labels, target = two_domains()
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    config = AdaptationConfig(steps=4, batch_size=8, progress=False)
    discriminator, history = train_dann(model, source, labels, target, config)
    assert len(history) == 4 and history[0]["coefficient"] == 0.0 and history[-1]["coefficient"] > 0.99
    assert all(torch.isfinite(torch.tensor(list(row.values()))).all() for row in history)
    changed = [
        name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])
    ]
    assert (
        any(name.startswith(model.base_model_prefix) for name in changed) and "classifier.weight" in changed
    )
    assert discriminator(torch.randn(2, model.config.hidden_size)).shape == (2,)


def test_adda_adapts_the_backbone_and_keeps_the_source_head():
    model = tiny_models()[0]
    source, labels, target = two_domains()
    train_source_only(model, source, labels, AdaptationConfig(steps=3, batch_size=8, progress=False))
    source_state = {name: value.clone() for name, value in model.state_dict().items()}
    target_model, _, history = train_adda(
        model, source, target, AdaptationConfig(steps=3, batch_size=8, progress=False)
    )
    assert len(history) == 3
    assert all(
        torch.equal(value, source_state[name]) for name, value in model.state_dict().items()
    )  # source frozen
    target_state = target_model.state_dict()
    assert torch.equal(target_state["classifier.weight"], source_state["classifier.weight"])
    assert not torch.equal(
        target_state["lensfinder.stages.0.conv1.weight"], source_state["lensfinder.stages.0.conv1.weight"]
    )
    probabilities = predict_probabilities(target_model, target, batch_size=7)
    assert probabilities.shape == (40, 2)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(40))


def test_source_only_training_learns_the_source_task():
    model = tiny_models()[0]
    source, labels, _ = two_domains(num=64)
    history = train_source_only(
        model, source, labels, AdaptationConfig(steps=30, batch_size=16, learning_rate=1e-2, progress=False)
    )
    assert history[-1]["classification_loss"] < history[0]["classification_loss"]
    accuracy = (predict_probabilities(model, source).argmax(dim=1) == labels).float().mean()
    assert accuracy > 0.8
