"""DeepLense MAE: the shared model tester plus masking, patchify, anomaly score and ViT fine-tuning."""

import numpy as np
import pytest
import torch
from test_modeling_common import ModelTesterMixin
from transformers import Trainer, TrainingArguments

from hf_deeplense import (
    DeepLenseMAEConfig,
    DeepLenseMAEForPreTraining,
    DeepLenseMAEModel,
    DeepLenseViTConfig,
    DeepLenseViTForImageClassification,
    DeepLenseViTForRegression,
    DeepLenseViTModel,
)

PATCH_SIZES = {30: 6, 64: 8, 150: 10}


def tiny_mae_config(num_channels: int = 1, image_size: int = 30, **overrides) -> DeepLenseMAEConfig:
    kwargs = dict(
        image_size=image_size,
        patch_size=PATCH_SIZES[image_size],
        num_channels=num_channels,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=20,
    )
    return DeepLenseMAEConfig(**{**kwargs, **overrides})


def num_patches(config) -> int:
    return (config.image_size // config.patch_size) ** 2


class TestDeepLenseMAE(ModelTesterMixin):
    config_class = DeepLenseMAEConfig
    invalid_config_kwargs = [
        ({"image_size": 30, "patch_size": 8}, "image_size"),
        ({"hidden_size": 30, "num_attention_heads": 5}, "hidden_size"),
        ({"decoder_hidden_size": 18, "decoder_num_attention_heads": 3}, "decoder_hidden_size"),
        ({"decoder_num_hidden_layers": 0}, "decoder_num_hidden_layers"),
        ({"mask_ratio": 1.0}, "mask_ratio"),
        ({"image_size": 16, "patch_size": 8, "mask_ratio": 0.8}, "mask_ratio"),  # 4 patches: none visible
    ]

    def get_config(self, num_channels=1, image_size=None):
        return tiny_mae_config(num_channels=num_channels, image_size=image_size or 30)

    def prepare_inputs(self, auto_name, config, labels=False):
        inputs = super().prepare_inputs(auto_name, config, labels)
        if auto_name == "AutoModelForPreTraining":
            generator = torch.Generator().manual_seed(1)
            inputs["noise"] = torch.rand(self.batch_size, num_patches(config), generator=generator)
        return inputs

    def check_pretraining_output(self, output, config, inputs):
        batch_size, patches = self.batch_size, num_patches(config)
        num_visible = int(patches * (1 - config.mask_ratio))
        assert output.loss.shape == ()
        assert output.logits.shape == (batch_size, patches, config.patch_size**2 * config.num_channels)
        assert output.mask.shape == output.ids_restore.shape == (batch_size, patches)
        assert (output.mask.sum(dim=1) == patches - num_visible).all()


def test_patchify_layout_and_unpatchify_round_trip():
    for num_channels in (1, 3):
        model = DeepLenseMAEForPreTraining(tiny_mae_config(num_channels=num_channels))
        images = torch.randn(2, num_channels, 30, 30)
        patches = model.patchify(images)
        assert patches.shape == (2, 25, 6 * 6 * num_channels)
        # patch 7 = row 1, column 2 of the 5x5 grid, flattened as (row, column, channel)
        expected = images[1, :, 6:12, 12:18].permute(1, 2, 0).reshape(-1)
        torch.testing.assert_close(patches[1, 7], expected)
        torch.testing.assert_close(model.unpatchify(patches), images)


def test_random_masking_is_fixed_by_noise():
    model = DeepLenseMAEForPreTraining(tiny_mae_config())
    sequence = torch.randn(3, 25, 32)
    noise = torch.rand(3, 25, generator=torch.Generator().manual_seed(0))
    visible, mask, ids_restore = model.random_masking(sequence, noise)
    visible_again, mask_again, _ = model.random_masking(sequence, noise.clone())
    assert torch.equal(visible, visible_again) and torch.equal(mask, mask_again)
    num_visible = int(25 * (1 - 0.75))
    assert visible.shape == (3, num_visible, 32)
    for sample in range(3):
        kept = torch.argsort(noise[sample])[:num_visible]  # the smallest noise is kept
        torch.testing.assert_close(visible[sample], sequence[sample, kept])
        assert set(torch.nonzero(mask[sample] == 0).flatten().tolist()) == set(kept.tolist())
    torch.testing.assert_close(torch.argsort(ids_restore, dim=1), torch.argsort(noise, dim=1))


def test_forward_is_deterministic_given_noise_and_loss_is_masked_mse():
    torch.manual_seed(0)
    model = DeepLenseMAEForPreTraining(tiny_mae_config(norm_pix_loss=True)).train()
    images = torch.randn(2, 1, 30, 30)
    noise = torch.rand(2, 25)
    first, second = model(images, noise=noise), model(images, noise=noise)
    torch.testing.assert_close(first.loss, second.loss, atol=0, rtol=0)
    assert not torch.equal(model(images, noise=torch.rand(2, 25)).mask, first.mask)
    target = model.patchify(images)
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
    per_patch = ((first.logits - target) ** 2).mean(-1)
    torch.testing.assert_close(first.loss, (per_patch * first.mask).sum() / first.mask.sum())
    assert model(images, noise=noise, return_loss=False).loss is None


def test_anomaly_score_is_deterministic_and_per_image():
    torch.manual_seed(0)
    model = DeepLenseMAEForPreTraining(tiny_mae_config()).eval()
    images = torch.randn(4, 1, 30, 30)
    scores = model.anomaly_score(images)
    assert scores.shape == (4,)
    torch.testing.assert_close(model.anomaly_score(images), scores, atol=0, rtol=0)
    torch.testing.assert_close(model.anomaly_score(images[2:3]), scores[2:3])  # independent of the batch
    assert not torch.equal(model.anomaly_score(images, seed=1), scores)
    # with explicit noise: the per-image masked MSE of that single mask
    noise = torch.rand(4, 25)
    output = model(images, noise=noise)
    per_patch = ((output.logits - model.patchify(images)) ** 2).mean(-1)
    expected = (per_patch * output.mask).sum(1) / output.mask.sum(1)
    torch.testing.assert_close(model.anomaly_score(images, noise=noise), expected)


def _smooth_images(count: int, generator: torch.Generator) -> torch.Tensor:
    """Gaussian blobs of random centre and width on a 30x30 grid, in [0, 1]: structure an MAE can learn."""
    grid = torch.arange(30.0)
    centre = 8 + 14 * torch.rand(count, 2, generator=generator)
    width = 3 + 4 * torch.rand(count, 1, 1, generator=generator)
    y, x = grid[None, :, None], grid[None, None, :]
    images = torch.exp(
        -((y - centre[:, 0, None, None]) ** 2 + (x - centre[:, 1, None, None]) ** 2) / width**2
    )
    return images[:, None]  # (count, 1, 30, 30)


def test_anomaly_score_ranks_unseen_structure_higher_after_training():
    """After a short pre-training on smooth blobs, held-out blobs score lower than the same images with their
    pixels shuffled (same pixel values, so the same scale: only the learnt structure can tell them apart)."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = DeepLenseMAEForPreTraining(tiny_mae_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(150):
        loss = model(_smooth_images(32, generator)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    images = _smooth_images(8, generator)
    shuffled = images.flatten(1)[:, torch.randperm(900, generator=generator)].view_as(images)
    with torch.no_grad():
        in_distribution, anomalous = model.anomaly_score(images), model.anomaly_score(shuffled)
    assert (anomalous > in_distribution).all(), (in_distribution, anomalous)
    # by a margin the untrained model does not reach (its mean ratio is ~1.02: scores follow pixel values only)
    assert anomalous.mean() > 1.1 * in_distribution.mean(), (in_distribution, anomalous)


@pytest.mark.parametrize("head_class", [DeepLenseViTForImageClassification, DeepLenseViTForRegression])
def test_vit_heads_load_the_pretrained_encoder(tmp_path, head_class):
    torch.manual_seed(0)
    mae = DeepLenseMAEForPreTraining(tiny_mae_config())
    mae.save_pretrained(tmp_path)
    kwargs = {"num_labels": 3} if head_class is DeepLenseViTForImageClassification else {"num_targets": 2}
    head = head_class.from_pretrained(tmp_path, **kwargs)
    assert type(head.config) is DeepLenseViTConfig and head.config.model_type == "deeplense_vit"
    assert not hasattr(head.config, "decoder_hidden_size") and not hasattr(head.config, "mask_ratio")
    if head_class is DeepLenseViTForImageClassification:
        assert head.config.num_labels == 3 and head.classifier.out_features == 3
    else:
        assert head.config.num_targets == 2 and head.regressor.out_features == 2
    mae_weights = mae.vit.state_dict()
    head_weights = head.vit.state_dict()
    assert set(head_weights) == set(mae_weights)
    for name, weight in mae_weights.items():
        assert torch.equal(head_weights[name], weight), name
    assert head.vit.embeddings.position_embeddings.requires_grad  # fine-tuned in the ViT
    # the same encoder on full images: MAE base model == ViT base model
    images = torch.randn(2, 1, 30, 30)
    vit = DeepLenseViTModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(vit(images).pooler_output, mae.vit.eval()(images).pooler_output)
    # a saved fine-tuned head is a plain ViT checkpoint
    head.save_pretrained(tmp_path / "finetuned")
    reloaded = DeepLenseViTConfig.from_pretrained(tmp_path / "finetuned")
    assert reloaded.model_type == "deeplense_vit" and "AutoModelForPreTraining" not in reloaded.auto_map


def test_mae_base_model_encodes_every_patch():
    model = DeepLenseMAEModel(tiny_mae_config()).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 1, 30, 30))
    assert output.last_hidden_state.shape == (2, 26, 32)


def test_trainer_evaluate_reports_eval_loss(tmp_path):
    rng = np.random.default_rng(0)
    dataset = [
        {"pixel_values": torch.from_numpy(rng.standard_normal((1, 30, 30), dtype=np.float32))}
        for _ in range(4)
    ]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=2,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = Trainer(model=DeepLenseMAEForPreTraining(tiny_mae_config()), args=args, eval_dataset=dataset)
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] > 0


def _transformers_name(name: str, part: str = "") -> str:
    """Our parameter name -> transformers' `ViTMAEForPreTraining` name (`part`: q, k or v of a fused qkv)."""
    name = name.replace("vit.encoder.layer.", "vit.layers.").replace("attention.proj.", "attention.o_proj.")
    return name.replace("attention.qkv.", f"attention.{part}_proj.")


def _transformers_vit_mae_state_dict(model: DeepLenseMAEForPreTraining) -> dict[str, torch.Tensor]:
    """Our weights renamed to transformers' `ViTMAEForPreTraining` (fused qkv split into q/k/v)."""
    state = {}
    for name, value in model.state_dict().items():
        if "attention.qkv." in name:
            for part, chunk in zip("qkv", value.chunk(3, dim=0)):
                state[_transformers_name(name, part)] = chunk
        else:
            state[_transformers_name(name)] = value
    return state


@pytest.mark.parametrize("num_channels,norm_pix_loss", [(1, False), (3, True)])
def test_same_computation_as_transformers_vit_mae(num_channels, norm_pix_loss):
    """With the same weights and noise, our optimised MAE (masking before the patch projection, one argsort)
    gives transformers' ViTMAEForPreTraining's mask, predictions, loss and gradients."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    torch.manual_seed(0)
    config = tiny_mae_config(num_channels=num_channels, norm_pix_loss=norm_pix_loss)
    ours = DeepLenseMAEForPreTraining(config).train()
    shared = {
        key: getattr(config, key)
        for key in (
            "image_size patch_size num_channels hidden_size num_hidden_layers num_attention_heads "
            "intermediate_size decoder_hidden_size decoder_num_hidden_layers decoder_num_attention_heads "
            "decoder_intermediate_size mask_ratio norm_pix_loss hidden_act layer_norm_eps"
        ).split()
    }
    theirs = ViTMAEForPreTraining(
        ViTMAEConfig(**shared, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ).train()
    missing, unexpected = theirs.load_state_dict(_transformers_vit_mae_state_dict(ours), strict=False)
    assert not unexpected and not missing
    images = torch.randn(3, num_channels, 30, 30)
    noise = torch.rand(3, num_patches(config))
    our_output, their_output = ours(images, noise=noise), theirs(images, noise=noise)
    assert torch.equal(our_output.mask, their_output.mask)
    assert torch.equal(our_output.ids_restore, their_output.ids_restore)
    torch.testing.assert_close(our_output.logits, their_output.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(our_output.loss, their_output.loss, rtol=1e-5, atol=1e-6)
    our_output.loss.backward()
    their_output.loss.backward()
    their_grads = {name: param.grad for name, param in theirs.named_parameters()}
    for name, param in ours.named_parameters():
        if "attention.qkv." in name:
            expected = torch.cat([their_grads[_transformers_name(name, part)] for part in "qkv"])
        else:
            expected = their_grads[_transformers_name(name)]
        if not param.requires_grad:
            assert expected is None, name
            continue
        torch.testing.assert_close(param.grad, expected, rtol=1e-4, atol=1e-6, msg=name)


def test_forward_goes_through_random_masking_and_the_embeddings(monkeypatch):
    """The algorithm's named steps are the call path: `random_masking` picks the visible patches and
    `DeepLenseMAEEmbeddings.forward` embeds only those (masking before embedding)."""
    torch.manual_seed(0)
    model = DeepLenseMAEForPreTraining(tiny_mae_config()).eval()
    calls = []
    real_masking = model.random_masking
    monkeypatch.setattr(
        model, "random_masking", lambda *args: calls.append("random_masking") or real_masking(*args)
    )
    model.vit.embeddings.register_forward_hook(
        lambda module, inputs, output: calls.append(tuple(output.shape))
    )
    output = model(torch.randn(2, 1, 30, 30))
    num_visible = int(num_patches(model.config) * (1 - model.config.mask_ratio))
    assert calls == ["random_masking", (2, 1 + num_visible, model.config.hidden_size)]
    assert output.mask.sum(1).tolist() == [num_patches(model.config) - num_visible] * 2
