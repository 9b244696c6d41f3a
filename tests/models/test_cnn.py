"""DeepLense CNN baselines (timm ResNet-18 / EfficientNet): the shared model tester plus CNN-specific checks."""

import pytest
import torch
from test_modeling_common import ModelTesterMixin
from transformers import AutoConfig, AutoModelForImageClassification

from hf_deeplense.models.cnn import (
    CNN_ARCHITECTURES,
    DeepLenseCNNConfig,
    DeepLenseCNNForImageClassification,
    DeepLenseCNNForRegression,
    DeepLenseCNNModel,
)

# A ResNet-18 with 8-16 channels per stage instead of 64-512: same depth and blocks, ~30k parameters.
TINY_RESNET = {"channels": [8, 8, 16, 16]}


def tiny_cnn_config(num_channels: int = 1, image_size: int = 32, **overrides) -> DeepLenseCNNConfig:
    kwargs = dict(
        architecture="resnet18",
        model_args=TINY_RESNET,
        num_channels=num_channels,
        image_size=image_size,
        num_targets=2,
        target_mean=[1.0, -2.0],
        target_std=[0.5, 3.0],
    )
    return DeepLenseCNNConfig(**{**kwargs, **overrides})


class TestDeepLenseCNN(ModelTesterMixin):
    config_class = DeepLenseCNNConfig
    has_cam_target_layer = True
    invalid_config_kwargs = [
        ({"architecture": "vgg16"}, "architecture"),
        ({"num_channels": 0}, "num_channels"),
        ({"model_args": {"in_chans": 3}}, "model_args"),
        ({"num_targets": 2, "target_mean": [0.0, 1.0, 2.0]}, "target_mean"),
        ({"target_std": -1.0}, "target_std"),
    ]

    def get_config(self, num_channels=1, image_size=None):
        # 64 px: at 32 px the last stage is 1x1, and batch norm over a batch of 2 values is degenerate
        return tiny_cnn_config(num_channels=num_channels, image_size=image_size or 64)


def test_invalid_architecture_error_lists_the_allowed_values():
    with pytest.raises(ValueError, match="architecture") as error:
        DeepLenseCNNConfig(architecture="resnet50")
    for name in CNN_ARCHITECTURES:
        assert name in str(error.value)


def test_default_config_is_a_full_resnet18():
    model = AutoModelForImageClassification.from_config(AutoConfig.for_model("deeplense_cnn"))
    assert isinstance(model, DeepLenseCNNForImageClassification)
    assert model.cnn.num_features == 512 and model.classifier.out_features == 3
    assert model.cnn.encoder.conv1.in_channels == 1
    assert 11_000_000 < model.num_parameters() < 11_500_000  # ResNet-18 without its ImageNet head


def test_efficientnet_b0_forward_and_cam_layer():
    torch.manual_seed(0)
    config = DeepLenseCNNConfig(architecture="efficientnet_b0", num_channels=1, image_size=32)
    model = DeepLenseCNNModel(config).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 1, 32, 32), output_hidden_states=True)
    assert output.pooler_output.shape == (2, 1280)
    assert output.last_hidden_state.shape == (2, 1280, 1, 1)  # stride 32
    assert len(output.hidden_states) == 5
    assert model.get_cam_target_layer() is model.encoder.blocks[-1]


def test_cam_target_is_the_last_resnet_stage_and_receives_gradients():
    torch.manual_seed(0)
    model = DeepLenseCNNForImageClassification(tiny_cnn_config()).eval()
    layer = model.get_cam_target_layer()
    assert layer is model.cnn.encoder.layer4
    activations = {}
    layer.register_forward_hook(lambda module, inputs, output: activations.update(value=output))
    logits = model(torch.randn(2, 1, 32, 32)).logits
    gradient = torch.autograd.grad(logits[:, 0].sum(), activations["value"])[0]
    assert gradient.shape == activations["value"].shape == (2, 16, 1, 1)
    assert gradient.abs().sum() > 0


def test_hidden_states_do_not_change_the_output():
    torch.manual_seed(0)
    model = DeepLenseCNNModel(tiny_cnn_config()).eval()
    pixel_values = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        plain = model(pixel_values)
        with_states = model(pixel_values, output_hidden_states=True)
    torch.testing.assert_close(plain.pooler_output, with_states.pooler_output)
    torch.testing.assert_close(with_states.hidden_states[-1], with_states.last_hidden_state)
    assert plain.hidden_states is None


def test_channels_last_gives_the_same_outputs():
    torch.manual_seed(0)
    model = DeepLenseCNNForRegression(tiny_cnn_config(num_channels=3)).eval()
    pixel_values = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixel_values).logits
        model = model.to(memory_format=torch.channels_last)
        got = model(pixel_values.to(memory_format=torch.channels_last)).logits
    assert model.cnn.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_regression_standardises_targets_and_returns_original_units():
    torch.manual_seed(0)
    model = DeepLenseCNNForRegression(tiny_cnn_config()).eval()
    pixel_values = torch.randn(4, 1, 32, 32)
    labels = torch.tensor([[1.0, -2.0], [1.5, 1.0], [0.5, -5.0], [2.0, 4.0]])
    with torch.no_grad():
        output = model(pixel_values, labels=labels)
        standardized = model.regressor(model.cnn(pixel_values).pooler_output)
    mean, std = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    torch.testing.assert_close(output.logits, standardized * std + mean)
    torch.testing.assert_close(output.loss, ((standardized - (labels - mean) / std) ** 2).mean())
    single = DeepLenseCNNForRegression(tiny_cnn_config(num_targets=1, target_mean=None, target_std=None))
    assert single(pixel_values, labels=torch.randn(4)).logits.shape == (4, 1)
    assert DeepLenseCNNForRegression.accepts_loss_kwargs is False


def test_return_dict_false_gives_a_tuple():
    model = DeepLenseCNNForImageClassification(tiny_cnn_config()).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 1, 32, 32), labels=torch.tensor([0, 1]), return_dict=False)
    assert isinstance(output, tuple) and output[0].ndim == 0 and output[1].shape == (2, 3)


@pytest.mark.parametrize("model_args", [TINY_RESNET, {**TINY_RESNET, "zero_init_last": False}])
def test_batch_norms_are_initialised_as_timm_does(model_args):
    """timm zero-initialises the last BatchNorm of every residual block (each block starts as the identity);
    `post_init` keeps that, and every other BatchNorm at one, as `timm.create_model` leaves them."""
    import timm

    model = DeepLenseCNNModel(tiny_cnn_config(model_args=model_args))
    reference = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=0, **model_args)
    batch_norms = {
        name: module.weight
        for name, module in reference.named_modules()
        if isinstance(module, torch.nn.BatchNorm2d)
    }
    assert any(not weight.any() for weight in batch_norms.values()) == model_args.get("zero_init_last", True)
    for name, weight in batch_norms.items():
        torch.testing.assert_close(model.encoder.get_submodule(name).weight, weight, msg=name)
