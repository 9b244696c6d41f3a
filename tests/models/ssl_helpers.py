"""Shared pieces of the DINO, BYOL and SimSiam model tests: tiny configs on any backbone, a second view, and
the checks that a pre-trained `backbone` loads into the method's classification and regression heads (with the
package and as remote code)."""

import textwrap

import torch
from test_simclr import tiny_backbone_config
from transformers import AutoConfig, AutoModelForImageClassification

from hf_deeplense.models import MODEL_REGISTRY, AutoModelForLensRegression
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


def assert_backbone_loads_into_heads(pretrained, checkpoint) -> None:
    """`AutoModelForImageClassification` / `AutoModelForLensRegression.from_pretrained(checkpoint)`, and
    `build_model(task, checkpoint=...)` (what `finetune --init_from` calls), give the method's own heads whose backbone
    is bit for bit the pre-trained `backbone`; the other networks of the checkpoint are left out."""
    pretrained.save_pretrained(checkpoint)
    registration = next(entry for entry in MODEL_REGISTRY if entry.config_class is type(pretrained.config))
    classification_class, regression_class = (
        registration.image_classification_class,
        registration.regression_class,
    )
    loaded = [
        AutoModelForImageClassification.from_pretrained(checkpoint, num_labels=4),
        build_model("classification", checkpoint=str(checkpoint), class_names=["a", "b", "c", "d"]),
        AutoModelForLensRegression.from_pretrained(checkpoint, num_targets=2),
        build_model("regression", checkpoint=str(checkpoint), target_mean=[1.0], target_std=[2.0]),
    ]
    expected_classes = [classification_class, classification_class, regression_class, regression_class]
    expected = pretrained.backbone.state_dict()
    for model, expected_class in zip(loaded, expected_classes):
        assert type(model) is expected_class, (type(model), expected_class)
        state = model.backbone.state_dict()
        assert state.keys() == expected.keys()
        for name, tensor in expected.items():
            torch.testing.assert_close(state[name], tensor, rtol=0, atol=0, msg=name)
        head = "classifier" if expected_class is classification_class else "regressor"
        assert {key.split(".")[0] for key in model.state_dict()} == {"backbone", head}
        assert all(
            parameter.requires_grad for parameter in model.parameters()
        )  # fine-tuning trains everything
    classifier = loaded[0]
    assert classifier.classifier.out_features == 4 and loaded[2].regressor.out_features == 2
    pixel_values = torch.randn(
        3, pretrained.config.num_channels, pretrained.config.image_size, pretrained.config.image_size
    )
    classifier.eval(), pretrained.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            classifier.backbone(pixel_values).pooler_output,
            pretrained(pixel_values).embeddings,
            rtol=0,
            atol=0,
        )
        output = classifier(pixel_values, labels=torch.tensor([0, 3, 1]))
    assert output.logits.shape == (3, 4) and output.loss.ndim == 0


# Run in the interpreter where `import hf_deeplense` fails (the `fresh_python` fixture): loads the heads from a
# pre-training directory with trust_remote_code=True and saves each head's backbone weights.
HEADS_REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from transformers import AutoConfig, AutoModelForImageClassification
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    model_dir, states_path = sys.argv[1:3]
    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=True)
    classifier = AutoModelForImageClassification.from_pretrained(model_dir, trust_remote_code=True, num_labels=2)
    regression_class = get_class_from_dynamic_module(config.auto_map["AutoModelForLensRegression"], model_dir)
    regressor = regression_class.from_pretrained(model_dir)
    states = {}
    for model in (classifier, regressor):
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        states[type(model).__name__] = model.backbone.state_dict()
    torch.save(states, states_path)
    """
)


def assert_heads_load_as_remote_code(pretrained, tmp_path, fresh_python) -> None:
    """The heads load the pre-trained `backbone` from the saved pre-training directory as remote code, where
    hf_deeplense is not installed (the directory carries the method's and the backbone's code)."""
    model_dir = fresh_python.unique_dir(tmp_path, "pretrained")
    pretrained.save_pretrained(model_dir)
    fresh_python.run(HEADS_REMOTE_CODE_SCRIPT, model_dir, "states.pt", cwd=tmp_path)
    states = torch.load(tmp_path / "states.pt")
    registration = next(entry for entry in MODEL_REGISTRY if entry.config_class is type(pretrained.config))
    heads = {registration.image_classification_class.__name__, registration.regression_class.__name__}
    assert set(states) == heads
    expected = pretrained.backbone.state_dict()
    for state in states.values():
        assert state.keys() == expected.keys()
        for name, tensor in expected.items():
            torch.testing.assert_close(state[name], tensor, rtol=0, atol=0, msg=name)
