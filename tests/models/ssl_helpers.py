"""Shared pieces of the DINO, BYOL and SimSiam model tests: tiny configs on any backbone, a second view, and
the check that a pre-trained `backbone` loads into the SimCLR classification and regression heads."""

import torch
from test_simclr import tiny_backbone_config
from transformers import AutoConfig

from hf_deeplense.models.simclr import DeepLenseSimCLRForImageClassification, DeepLenseSimCLRForRegression
from hf_deeplense.training.modeling import build_model

TINY_HEADS = {
    # std ~ 1/sqrt(width) at these widths: with 0.02 the L2-normalised bottleneck of a 24-wide head is tiny and its
    # gradient (which scales as 1/norm) makes one AdamW step overshoot
    "deeplense_dino": dict(head_hidden_size=24, head_bottleneck_size=8, out_dim=32, initializer_range=0.2),
    "deeplense_byol": dict(projection_hidden_size=24, projection_dim=8),
    "deeplense_simsiam": dict(projection_dim=16, prediction_hidden_size=8),
}


def tiny_ssl_config(
    model_type: str, backbone: str = "cnn", num_channels: int = 1, image_size: int = 30, **overrides
):
    backbone_config = tiny_backbone_config(backbone, num_channels, image_size)
    return AutoConfig.for_model(
        model_type, backbone_config=backbone_config, **{**TINY_HEADS[model_type], **overrides}
    )


def second_view(pixel_values: torch.Tensor) -> torch.Tensor:
    """A flipped, noisy copy of each image (seeded)."""
    noise = torch.randn(pixel_values.shape, generator=torch.Generator().manual_seed(1))
    return pixel_values.flip(-1) + 0.1 * noise


class SSLTesterMixin:
    """`prepare_inputs` of the shared tester with a second view for the pre-training forward (and for the base
    model when a loss is wanted), as the SimCLR tester does."""

    backbone = "cnn"
    has_cam_target_layer = True  # the CNN backbone's last stage
    batch_size = 8  # batch norm in the heads over 2 samples is degenerate

    def get_config(self, num_channels=1, image_size=None):
        # 64 px for the CNN: at 30 px its last stage is 1x1
        default_size = 64 if self.backbone == "cnn" else 30
        return tiny_ssl_config(
            self.config_class.model_type, self.backbone, num_channels, image_size or default_size
        )

    def prepare_inputs(self, auto_name, config, labels=False):
        inputs = super().prepare_inputs(auto_name, config, labels)
        if auto_name == "AutoModelForPreTraining" or (labels and auto_name == "AutoModel"):
            inputs["pixel_values_2"] = second_view(inputs["pixel_values"])
        return inputs


def assert_backbone_fine_tunes_in_simclr_heads(pretrained, checkpoint) -> None:
    """`build_model(task, checkpoint=...)` (what `finetune --init_from` calls) gives SimCLR heads whose backbone is
    exactly the pre-trained `backbone`; the other networks of the checkpoint are left out."""
    pretrained.save_pretrained(checkpoint)
    classifier = build_model("classification", checkpoint=str(checkpoint), class_names=["a", "b", "c", "d"])
    regressor = build_model("regression", checkpoint=str(checkpoint), target_mean=[1.0], target_std=[2.0])
    assert (
        type(classifier) is DeepLenseSimCLRForImageClassification and classifier.classifier.out_features == 4
    )
    assert type(regressor) is DeepLenseSimCLRForRegression
    expected = pretrained.backbone.state_dict()
    for model in (classifier, regressor):
        state = model.backbone.state_dict()
        assert state.keys() == expected.keys()
        for name, tensor in expected.items():
            torch.testing.assert_close(state[name], tensor, rtol=0, atol=0, msg=name)
        assert all(
            parameter.requires_grad for parameter in model.parameters()
        )  # fine-tuning trains everything
    pixel_values = torch.randn(3, 1, pretrained.config.image_size, pretrained.config.image_size)
    classifier.eval(), pretrained.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            classifier.backbone(pixel_values).pooler_output, pretrained(pixel_values).embeddings
        )
        output = classifier(pixel_values, labels=torch.tensor([0, 3, 1]))
    assert output.logits.shape == (3, 4) and output.loss.ndim == 0
