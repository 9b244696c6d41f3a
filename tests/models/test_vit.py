"""DeepLense ViT: the shared model tester plus ViT-specific behaviour."""

import pytest
import torch
from test_modeling_common import ModelTesterMixin

from hf_deeplense import DeepLenseViTConfig, DeepLenseViTForRegression

# image size -> patch size used by the shape tests (the patch must divide the image)
PATCH_SIZES = {30: 6, 64: 8, 150: 10}


def tiny_vit_config(num_channels: int = 1, image_size: int = 30, **overrides) -> DeepLenseViTConfig:
    kwargs = dict(
        image_size=image_size,
        patch_size=PATCH_SIZES[image_size],
        num_channels=num_channels,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_targets=2,
        target_mean=[1.0, -2.0],
        target_std=[0.5, 3.0],
    )
    return DeepLenseViTConfig(**{**kwargs, **overrides})


class TestDeepLenseViT(ModelTesterMixin):
    config_class = DeepLenseViTConfig
    invalid_config_kwargs = [
        ({"image_size": 30, "patch_size": 8}, "image_size"),
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
        ({"num_hidden_layers": 0}, "num_hidden_layers"),
        ({"num_targets": 2, "target_mean": [0.0, 1.0, 2.0]}, "target_mean"),
        ({"target_std": 0.0}, "target_std"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob"),
    ]

    def get_config(self, num_channels=1, image_size=None):
        return tiny_vit_config(num_channels=num_channels, image_size=image_size or 30)


def test_defaults_are_vit_small_for_64px_single_channel():
    config = DeepLenseViTConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (384, 12, 6)
    assert (config.intermediate_size, config.image_size, config.num_channels, config.num_labels) == (
        1536,
        64,
        1,
        3,
    )
    assert DeepLenseViTConfig(image_size=150, patch_size=10).image_size == 150


def test_attentions_and_hidden_states_eager_equals_sdpa():
    torch.manual_seed(0)
    config = tiny_vit_config()
    model = DeepLenseViTForRegression(config).eval()
    pixel_values = torch.randn(3, 1, 30, 30)
    with torch.no_grad():
        sdpa = model(pixel_values)
        eager = model(pixel_values, output_attentions=True, output_hidden_states=True)
    torch.testing.assert_close(sdpa.logits, eager.logits, atol=1e-5, rtol=0)
    assert len(eager.hidden_states) == config.num_hidden_layers + 1
    assert len(eager.attentions) == config.num_hidden_layers
    assert eager.attentions[0].shape == (3, 4, 26, 26)  # (batch, heads, 1 + 25 patches, 1 + 25 patches)
    torch.testing.assert_close(eager.attentions[0].sum(-1), torch.ones(3, 4, 26))


def test_regression_standardises_targets_and_returns_original_units():
    torch.manual_seed(0)
    config = tiny_vit_config()
    model = DeepLenseViTForRegression(config).eval()
    pixel_values = torch.randn(4, 1, 30, 30)
    labels = torch.tensor([[1.0, -2.0], [1.5, 1.0], [0.5, -5.0], [2.0, 4.0]])
    with torch.no_grad():
        output = model(pixel_values, labels=labels)
        standardized = model.regressor(model.vit(pixel_values).pooler_output)
    mean, std = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    torch.testing.assert_close(output.logits, standardized * std + mean)
    expected_loss = ((standardized - (labels - mean) / std) ** 2).mean()
    torch.testing.assert_close(output.loss, expected_loss)
    # (batch,) labels are accepted for one target
    single = DeepLenseViTForRegression(tiny_vit_config(num_targets=1, target_mean=None, target_std=None))
    assert single(pixel_values, labels=torch.randn(4)).logits.shape == (4, 1)


def test_wrong_input_size_or_channels_name_the_config_field():
    model = DeepLenseViTForRegression(tiny_vit_config()).eval()
    with pytest.raises(ValueError, match="image_size"):
        model(torch.randn(1, 1, 36, 36))
    with pytest.raises(ValueError, match="num_channels"):
        model(torch.randn(1, 3, 30, 30))


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    model = DeepLenseViTForRegression(tiny_vit_config()).train()
    inputs = {"pixel_values": torch.randn(2, 1, 30, 30), "labels": torch.randn(2, 2)}
    model(**inputs).loss.backward()
    expected = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.vit.encoder.layer)
    model(**inputs).loss.backward()
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad, expected[name], msg=name)


def train_regressor(tmp_path, per_device_train_batch_size: int, gradient_accumulation_steps: int):
    """Two SGD steps of a tiny ViT regressor on a fixed 16-image dataset, in a fixed (sequential) order."""
    from transformers import Trainer, TrainingArguments

    generator = torch.Generator().manual_seed(0)
    dataset = [
        {
            "pixel_values": torch.randn(1, 30, 30, generator=generator),
            "labels": torch.randn(2, generator=generator),
        }
        for _ in range(16)
    ]
    torch.manual_seed(0)
    model = DeepLenseViTForRegression(tiny_vit_config())
    initial = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = TrainingArguments(
        output_dir=str(tmp_path / f"ga{gradient_accumulation_steps}"),
        per_device_train_batch_size=per_device_train_batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        max_steps=2,
        learning_rate=0.5,
        optim="sgd",
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,  # no clipping: the update is the raw (scaled) gradient
        train_sampling_strategy="sequential",
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    Trainer(model=model, args=args, train_dataset=dataset).train()
    return initial, {name: parameter.detach() for name, parameter in model.named_parameters()}


def test_gradient_accumulation_matches_full_batch(tmp_path):
    """Batch 8 x GA 1 and batch 2 x GA 4 take the same SGD steps: the regression loss is scaled correctly
    (a loss treated as already normalised would make the GA=4 update 4x too large)."""
    initial, full_batch = train_regressor(
        tmp_path, per_device_train_batch_size=8, gradient_accumulation_steps=1
    )
    _, accumulated = train_regressor(tmp_path, per_device_train_batch_size=2, gradient_accumulation_steps=4)
    moved = max((full_batch[name] - initial[name]).abs().max().item() for name in initial)
    assert moved > 1e-3  # the steps are large enough for a wrong scale to show
    for name, weight in full_batch.items():
        torch.testing.assert_close(accumulated[name], weight, atol=1e-5, rtol=1e-4, msg=name)
