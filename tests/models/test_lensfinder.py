"""Tests of the image + meta-feature lens finder (`deeplense_lensfinder`)."""

import pytest
import torch
from test_modeling_common import ModelTesterMixin

from hf_deeplense.models.lensfinder import (
    DeepLenseLensFinderConfig,
    DeepLenseLensFinderForImageClassification,
    DeepLenseLensFinderModel,
)


def tiny_config(**overrides) -> DeepLenseLensFinderConfig:
    kwargs = dict(
        num_channels=3,
        image_size=30,
        conv_channels=[4, 6],
        num_meta_features=3,
        meta_feature_names=["core_mag", "core_color", "annulus_color"],
        meta_mean=[20.0, 1.0, 0.5],
        meta_std=[2.0, 0.5, 0.5],
        meta_hidden_size=8,
        hidden_size=16,
    )
    kwargs.update(overrides)
    return DeepLenseLensFinderConfig(**kwargs)


class TestDeepLenseLensFinderModel(ModelTesterMixin):
    config_class = DeepLenseLensFinderConfig
    has_cam_target_layer = True
    invalid_config_kwargs = [
        ({"num_meta_features": 2, "meta_mean": [0.0]}, "meta_mean"),
        ({"class_weights": [1.0, 2.0, 3.0]}, "class_weights"),
        ({"conv_channels": []}, "conv_channels"),
    ]

    def get_config(self, num_channels=1, image_size=None):
        return tiny_config(num_channels=num_channels, image_size=image_size or 30)

    def prepare_inputs(self, auto_name, config, labels=False):
        inputs = super().prepare_inputs(auto_name, config, labels=labels)
        generator = torch.Generator().manual_seed(1)
        inputs["meta_features"] = 20 + torch.randn(
            self.batch_size, config.num_meta_features, generator=generator
        )
        return inputs


def test_meta_features_change_the_prediction_and_are_standardised():
    torch.manual_seed(0)
    model = DeepLenseLensFinderForImageClassification(tiny_config()).eval()
    images = torch.randn(4, 3, 30, 30)
    meta = torch.tensor([[20.0, 1.0, 0.5]] * 4)
    with torch.no_grad():
        base = model(images, meta_features=meta).logits
        shifted = model(images, meta_features=meta + torch.tensor([4.0, 0.0, 0.0])).logits
        standardised = model.lensfinder.standardise_meta(meta)
    assert not torch.allclose(base, shifted)
    torch.testing.assert_close(standardised, torch.zeros(4, 3))


def test_missing_meta_features_raise_with_names():
    model = DeepLenseLensFinderModel(tiny_config())
    with pytest.raises(ValueError, match="core_mag"):
        model(torch.randn(2, 3, 30, 30))


def test_image_only_variant_takes_no_meta():
    model = DeepLenseLensFinderForImageClassification(
        tiny_config(num_meta_features=0, meta_feature_names=None, meta_mean=None, meta_std=None)
    )
    assert model.lensfinder.meta_encoder is None
    assert model(torch.randn(2, 3, 30, 30)).logits.shape == (2, 2)


def test_class_weights_weight_the_loss():
    torch.manual_seed(0)
    config = tiny_config(num_meta_features=0, meta_feature_names=None, meta_mean=None, meta_std=None)
    unweighted = DeepLenseLensFinderForImageClassification(config).eval()
    weighted_config = tiny_config(
        num_meta_features=0, meta_feature_names=None, meta_mean=None, meta_std=None, class_weights=[1.0, 9.0]
    )
    weighted = DeepLenseLensFinderForImageClassification(weighted_config).eval()
    weighted.load_state_dict(unweighted.state_dict())
    images, labels = torch.randn(8, 3, 30, 30), torch.tensor([0, 0, 0, 0, 0, 0, 0, 1])
    with torch.no_grad():
        logits = unweighted(images).logits
        expected = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor([1.0, 9.0]))
        torch.testing.assert_close(weighted(images, labels=labels).loss, expected)
        assert not torch.isclose(unweighted(images, labels=labels).loss, expected)
