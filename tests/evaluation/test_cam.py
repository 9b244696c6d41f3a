import matplotlib.image
import pytest
import torch
from torch import nn
from transformers.modeling_outputs import ImageClassifierOutput

from hf_deeplense.evaluation.cam import (
    attention_rollout,
    attention_rollout_maps,
    class_activation_maps,
    grad_cam,
    rollout_to_patch_map,
    write_cam_overlays,
)


class QuadrantCNN(nn.Module):
    """Sees only one quadrant of the image (the rest is multiplied by zero before the conv)."""

    def __init__(self, quadrant: tuple[int, int], size: int = 16):
        super().__init__()
        mask = torch.zeros(1, 1, size, size)
        half = size // 2
        mask[
            ..., quadrant[0] * half : (quadrant[0] + 1) * half, quadrant[1] * half : (quadrant[1] + 1) * half
        ] = 1
        self.register_buffer("mask", mask)
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv.weight.uniform_(0.1, 1.0)
            self.head.weight.copy_(torch.tensor([[1.0, 0.5, 0.2, 1.0], [-1.0, 0.3, -0.2, 0.1]]))

    def get_cam_target_layer(self):
        return self.conv

    def forward(self, pixel_values):
        features = torch.relu(self.conv(pixel_values * self.mask))
        return ImageClassifierOutput(logits=self.head(features.mean(dim=(2, 3))))


@pytest.mark.parametrize("quadrant", [(0, 0), (1, 1), (0, 1)])
def test_grad_cam_highlights_the_quadrant_the_model_looks_at(quadrant):
    torch.manual_seed(0)
    model = QuadrantCNN(quadrant)
    pixel_values = torch.rand(3, 1, 16, 16) + 0.1
    maps = grad_cam(model, pixel_values, target=0)
    assert maps.shape == (3, 16, 16)
    assert maps.min() >= 0 and maps.max() <= 1
    rows, cols = slice(quadrant[0] * 8, quadrant[0] * 8 + 8), slice(quadrant[1] * 8, quadrant[1] * 8 + 8)
    inside = maps[:, rows, cols].sum(dim=(1, 2))
    # the 3x3 conv lets one pixel row bleed over the quadrant's edge; nothing reaches further
    assert (inside / maps.sum(dim=(1, 2)) > 0.8).all()
    grown = torch.zeros(16, 16, dtype=torch.bool)
    grown[max(rows.start - 1, 0) : rows.stop + 1, max(cols.start - 1, 0) : cols.stop + 1] = True
    assert maps[:, ~grown].max() == 0
    # class_activation_maps dispatches to Grad-CAM through get_cam_target_layer()
    torch.testing.assert_close(class_activation_maps(model, pixel_values, target=0), maps)


def test_grad_cam_without_target_layer_is_a_clear_error():
    model = QuadrantCNN((0, 0))
    model.get_cam_target_layer = lambda: None
    with pytest.raises(ValueError, match="attention_rollout_maps"):
        grad_cam(model, torch.rand(1, 1, 16, 16))


def test_rollout_of_identity_attentions_is_identity():
    identity = torch.eye(5).expand(2, 3, 5, 5)
    rollout = attention_rollout([identity] * 4)
    torch.testing.assert_close(rollout, torch.eye(5).expand(2, 5, 5))


def test_rollout_matches_hand_product():
    torch.manual_seed(0)
    layers = [torch.softmax(torch.randn(1, 2, 4, 4), dim=-1) for _ in range(2)]
    expected = None
    for attention in layers:
        fused = 0.5 * attention.mean(dim=1) + 0.5 * torch.eye(4)
        fused = fused / fused.sum(-1, keepdim=True)
        expected = fused if expected is None else fused @ expected
    torch.testing.assert_close(attention_rollout(layers), expected)
    # rows of a rollout stay probability distributions
    torch.testing.assert_close(attention_rollout(layers).sum(-1), torch.ones(1, 4))


def test_rollout_patch_map_uses_the_cls_row():
    # [CLS] attends only to patch 2 (of a 2x2 grid), patches to themselves
    attention = torch.eye(5)[None, None].clone()
    attention[0, 0, 0] = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0])
    patch_map = rollout_to_patch_map(
        attention_rollout([attention], residual=False), (2, 2), num_prefix_tokens=1
    )
    torch.testing.assert_close(patch_map, torch.tensor([[[0.0, 0.0], [1.0, 0.0]]]))


class TinyAttentionModel(nn.Module):
    """A single 'attention layer' whose [CLS] attends to the brightest patch of a 4x4 grid."""

    def __init__(self):
        super().__init__()
        self.config = type(
            "Config", (), {"image_size": 16, "patch_size": 4, "_attn_implementation": "eager"}
        )()

    def get_cam_target_layer(self):
        return None

    def forward(self, pixel_values, output_attentions=False):
        patches = nn.functional.avg_pool2d(pixel_values, 4).flatten(1)  # (batch, 16)
        attention = torch.eye(17).repeat(len(pixel_values), 1, 1)
        attention[:, 0] = torch.cat(
            [torch.zeros(len(pixel_values), 1), torch.softmax(50 * patches, dim=1)], dim=1
        )
        logits = torch.stack([patches.mean(1), -patches.mean(1)], dim=1)
        return ImageClassifierOutput(
            logits=logits, attentions=(attention[:, None],) if output_attentions else None
        )


def test_rollout_maps_find_the_bright_patch_and_overlays_are_written(tmp_path):
    pixel_values = torch.zeros(2, 1, 16, 16)
    pixel_values[0, :, 12:, 0:4] = 1.0  # bottom-left patch
    pixel_values[1, :, 0:4, 8:12] = 1.0  # top row, third patch
    model = TinyAttentionModel()
    maps = attention_rollout_maps(model, pixel_values)
    assert maps.shape == (2, 16, 16)
    # (bilinear upsampling of the 4x4 patch map blurs the edges)
    assert maps[0, 12:, 0:4].mean() > 0.7 and maps[0, :8].max() < 0.1
    assert maps[1, 0:4, 8:12].mean() > 0.7 and maps[1, 8:].max() < 0.1
    torch.testing.assert_close(class_activation_maps(model, pixel_values), maps)
    path = write_cam_overlays(
        model, pixel_values, tmp_path / "cam.png", class_names=["a", "b"], labels=[0, 1]
    )
    assert matplotlib.image.imread(path).shape[-1] in (3, 4)
