"""DeepLense hybrid CNN-transformer: the shared model tester plus hybrid-specific checks."""

import pytest
import torch
from test_modeling_common import ModelTesterMixin

from hf_deeplense.models.hybrid import (
    DeepLenseHybridConfig,
    DeepLenseHybridForImageClassification,
    DeepLenseHybridForRegression,
    DeepLenseHybridModel,
)


def tiny_hybrid_config(num_channels: int = 1, image_size: int = 30, **overrides) -> DeepLenseHybridConfig:
    kwargs = dict(
        image_size=image_size,
        num_channels=num_channels,
        stem_channels=[4, 8, 8] if image_size >= 64 else [4, 8],
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_targets=2,
        target_mean=[1.0, -2.0],
        target_std=[0.5, 3.0],
    )
    return DeepLenseHybridConfig(**{**kwargs, **overrides})


class TestDeepLenseHybrid(ModelTesterMixin):
    config_class = DeepLenseHybridConfig
    has_cam_target_layer = True
    invalid_config_kwargs = [
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
        ({"stem_channels": []}, "stem_channels"),
        ({"stem_channels": [8, 0]}, "stem_channels"),
        ({"patch_size": 0}, "patch_size"),
        ({"num_targets": 2, "target_std": [1.0, 1.0, 1.0]}, "target_std"),
        ({"attention_probs_dropout_prob": 1.0}, "attention_probs_dropout_prob"),
    ]

    def get_config(self, num_channels=1, image_size=None):
        return tiny_hybrid_config(num_channels=num_channels, image_size=image_size or 30)


@pytest.mark.parametrize(("image_size", "grid_size"), [(30, 8), (64, 8), (150, 19)])
def test_token_grid_follows_the_stem(image_size, grid_size):
    """Stride-2 blocks round up (150 -> 75 -> 38 -> 19); every feature-map position is one token."""
    config = tiny_hybrid_config(image_size=image_size)
    model = DeepLenseHybridModel(config).eval()
    assert model.embeddings.grid_size == grid_size
    with torch.no_grad():
        output = model(torch.randn(1, 1, image_size, image_size))
    assert output.last_hidden_state.shape == (1, 1 + grid_size**2, 32)
    torch.testing.assert_close(output.pooler_output, output.last_hidden_state[:, 0])


@pytest.mark.parametrize(("stem_backbone", "grid_size"), [("resnet18", 10), ("efficientnet_b0", 10)])
def test_timm_stem_at_150px(stem_backbone, grid_size):
    config = tiny_hybrid_config(
        image_size=150, stem_backbone=stem_backbone, stem_feature_index=3, num_channels=3
    )
    model = DeepLenseHybridForImageClassification(config).eval()
    assert model.hybrid.embeddings.grid_size == grid_size  # stride 16: ceil(150 / 16)
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 150, 150)).logits
    assert logits.shape == (1, 3)
    target = model.get_cam_target_layer()
    assert any(module is target for module in model.hybrid.embeddings.stem.backbone.modules())


def test_patch_size_groups_stem_positions():
    model = DeepLenseHybridModel(tiny_hybrid_config(image_size=64, patch_size=2)).eval()
    assert model.embeddings.grid_size == 4  # 64 -> 8x8 stem map -> 4x4 tokens
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).last_hidden_state.shape == (1, 17, 32)


def test_cam_target_is_the_last_stem_block_and_receives_gradients():
    torch.manual_seed(0)
    model = DeepLenseHybridForImageClassification(tiny_hybrid_config()).eval()
    layer = model.get_cam_target_layer()
    assert layer is model.hybrid.embeddings.stem.blocks[-1]
    activations = {}
    layer.register_forward_hook(lambda module, inputs, output: activations.update(value=output))
    logits = model(torch.randn(2, 1, 30, 30)).logits
    gradient = torch.autograd.grad(logits[:, 1].sum(), activations["value"])[0]
    assert gradient.shape == (2, 8, 8, 8) and gradient.abs().sum() > 0


def test_attentions_and_hidden_states_eager_equals_sdpa():
    torch.manual_seed(0)
    config = tiny_hybrid_config()
    model = DeepLenseHybridForRegression(config).eval()
    pixel_values = torch.randn(3, 1, 30, 30)
    with torch.no_grad():
        sdpa = model(pixel_values)
        eager = model(pixel_values, output_attentions=True, output_hidden_states=True)
    torch.testing.assert_close(sdpa.logits, eager.logits, atol=1e-5, rtol=0)
    assert len(eager.hidden_states) == config.num_hidden_layers + 1
    assert eager.attentions[0].shape == (3, 4, 65, 65)  # (batch, heads, 1 + 8x8 tokens, ...)


def test_regression_standardises_targets_and_returns_original_units():
    torch.manual_seed(0)
    model = DeepLenseHybridForRegression(tiny_hybrid_config()).eval()
    pixel_values = torch.randn(4, 1, 30, 30)
    labels = torch.tensor([[1.0, -2.0], [1.5, 1.0], [0.5, -5.0], [2.0, 4.0]])
    with torch.no_grad():
        output = model(pixel_values, labels=labels)
        standardized = model.regressor(model.hybrid(pixel_values).pooler_output)
    mean, std = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    torch.testing.assert_close(output.logits, standardized * std + mean)
    torch.testing.assert_close(output.loss, ((standardized - (labels - mean) / std) ** 2).mean())


def test_wrong_input_size_or_channels_name_the_config_field():
    model = DeepLenseHybridModel(tiny_hybrid_config()).eval()
    with pytest.raises(ValueError, match="image_size"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="num_channels"):
        model(torch.randn(1, 3, 30, 30))
