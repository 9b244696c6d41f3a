"""Tests of the C4 / D4 group-convolution model (`deeplense_equivariant`)."""

import pytest
import torch
from test_modeling_common import ModelTesterMixin

from hf_deeplense.models.equivariant import (
    DeepLenseEquivariantConfig,
    DeepLenseEquivariantForImageClassification,
    DeepLenseEquivariantForRegression,
    DeepLenseEquivariantModel,
)
from hf_deeplense.models.equivariant.modeling_equivariant import (
    DeepLenseEquivariantGroupConv,
    DeepLenseEquivariantLiftingConv,
    cayley_table,
    group_elements,
    transform_grid,
)


def tiny_config(**overrides) -> DeepLenseEquivariantConfig:
    kwargs = dict(
        group="D4",
        image_size=30,
        num_channels=2,
        stem_kernel_size=3,
        stage_channels=[3, 5],
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_labels=3,
    )
    kwargs.update(overrides)
    return DeepLenseEquivariantConfig(**kwargs)


class TestDeepLenseEquivariantModel(ModelTesterMixin):
    config_class = DeepLenseEquivariantConfig
    has_cam_target_layer = True
    invalid_config_kwargs = [({"group": "C8"}, "group"), ({"kernel_size": 4}, "kernel_size")]

    def get_config(self, num_channels=1, image_size=None):
        return tiny_config(num_channels=num_channels, image_size=image_size or 30)


@pytest.mark.parametrize("group", ["C4", "D4"])
def test_cayley_table_is_a_group(group):
    table = cayley_table(group)
    order = len(group_elements(group))
    assert sorted(map(sorted, table)) == [list(range(order))] * order  # a Latin square
    assert table[0] == list(range(order))  # element 0 is the identity
    for a in range(order):
        for b in range(order):
            for c in range(order):
                assert table[table[a][b]][c] == table[a][table[b][c]]  # associativity


@pytest.mark.parametrize("group", ["C4", "D4"])
def test_group_convolutions_are_equivariant(group):
    """Acting with h on the input acts on the output maps and permutes the group axis: out'_g = h·out_{h⁻¹g}."""
    torch.manual_seed(0)
    elements, table = group_elements(group), cayley_table(group)
    lifting = DeepLenseEquivariantLiftingConv(2, 3, 5, group)
    group_conv = DeepLenseEquivariantGroupConv(3, 4, 3, group, bias=True)
    for parameter in (*lifting.parameters(), *group_conv.parameters()):
        torch.nn.init.normal_(parameter)
    image = torch.randn(2, 2, 13, 13)
    with torch.no_grad():
        reference = group_conv(lifting(image))  # (batch, 4, |G|, 13, 13)
        for h, element in enumerate(elements):
            transformed = group_conv(lifting(transform_grid(image, element)))
            inverse_h = table[h].index(0)
            expected = torch.stack(
                [transform_grid(reference[:, :, table[inverse_h][g]], element) for g in range(len(elements))],
                dim=2,
            )
            torch.testing.assert_close(transformed, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("group", ["C4", "D4"])
@pytest.mark.parametrize("image_size", [30, 31])
def test_predictions_invariant_to_group(group, image_size):
    """In eval mode the logits and pooled features do not change under 90° rotations (and flips for D4),
    also for odd sizes, where the downsampling must stay symmetric."""
    torch.manual_seed(0)
    model = DeepLenseEquivariantForImageClassification(tiny_config(group=group, image_size=image_size)).eval()
    images = torch.randn(3, 2, image_size, image_size)
    with torch.no_grad():
        reference = model(images, output_hidden_states=True)
        reference_pooled = model.equivariant(images).pooler_output
        for element in group_elements(group)[1:]:
            rotated = transform_grid(images, element)
            torch.testing.assert_close(model(rotated).logits, reference.logits, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(
                model.equivariant(rotated).pooler_output, reference_pooled, atol=1e-5, rtol=1e-4
            )
        # Sanity: the check can fail. A rolled (shifted) image is not a group image of the input.
        shifted = torch.roll(images, shifts=3, dims=-1)
        assert (model.equivariant(shifted).pooler_output - reference_pooled).abs().max() > 1e-2


def test_c4_model_is_not_mirror_invariant():
    """C4 builds in rotations only: a mirrored input gives different features (the D4 group is needed)."""
    torch.manual_seed(0)
    model = DeepLenseEquivariantModel(tiny_config(group="C4")).eval()
    images = torch.randn(2, 2, 30, 30)
    with torch.no_grad():
        difference = model(torch.flip(images, dims=(-1,))).pooler_output - model(images).pooler_output
    assert difference.abs().max() > 1e-2


def test_regression_invariant_and_in_original_units():
    torch.manual_seed(0)
    config = tiny_config(num_targets=2, target_mean=[-23.0, 0.5], target_std=[0.5, 0.1])
    model = DeepLenseEquivariantForRegression(config).eval()
    images = torch.randn(4, 2, 30, 30)
    labels = torch.tensor([[-23.0, 0.5]] * 4)
    with torch.no_grad():
        output = model(images, labels=labels)
        rotated = model(torch.rot90(images, 1, dims=(-2, -1)), labels=labels)
    assert output.logits.shape == (4, 2)
    assert (output.logits[:, 0] - (-23.0)).abs().max() < 5 * 0.5  # near the target mean at init
    torch.testing.assert_close(rotated.logits, output.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rotated.loss, output.loss, atol=1e-5, rtol=1e-5)


def test_cam_target_layer_gives_spatial_map():
    model = DeepLenseEquivariantForImageClassification(tiny_config())
    captured = {}
    handle = model.get_cam_target_layer().register_forward_hook(
        lambda mod, inp, out: captured.update(map=out)
    )
    model(torch.randn(2, 2, 30, 30))
    handle.remove()
    assert captured["map"].shape == (2, 5, 8, 8)  # (batch, last stage channels, 30 -> 15 -> 8)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"group": "C8"}, "group"),
        ({"kernel_size": 4}, "kernel_size"),
        ({"stage_channels": []}, "stage_channels"),
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
        ({"num_targets": 2, "target_std": [1.0, 2.0, 3.0]}, "target_std"),
        ({"target_std": 0.0}, "target_std"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_target_statistics_follow_the_shared_per_target_rule():
    """As every other head's config (`_per_target`, copied from the ViT config): None -> defaults, a number or a
    one-value list -> one value per target (a saved config reloaded with `num_targets=2` keeps working)."""
    config = tiny_config(num_targets=2)
    assert (config.target_mean, config.target_std) == ([0.0, 0.0], [1.0, 1.0])
    config = tiny_config(num_targets=2, target_mean=-23.0, target_std=[0.5])
    assert (config.target_mean, config.target_std) == ([-23.0, -23.0], [0.5, 0.5])
