"""Tests of domain adaptation: the gradient-reversal layer, the DANN and ADDA modules
(`hf_deeplense.models.domain_adaptation`) and their training by `Trainer` (`hf_deeplense.training.domain_adaptation`)."""

import pytest
import torch
from transformers import TrainerCallback

from hf_deeplense.data.domains import TargetBatchCollator
from hf_deeplense.models.domain_adaptation import (
    AdversarialDiscriminativeAdaptation,
    DomainAdversarialNetwork,
    DomainDiscriminator,
    dann_coefficient,
    features_and_logits,
    grad_reverse,
)
from hf_deeplense.models.equivariant import (
    DeepLenseEquivariantConfig,
    DeepLenseEquivariantForImageClassification,
)
from hf_deeplense.models.lensfinder import (
    DeepLenseLensFinderConfig,
    DeepLenseLensFinderForImageClassification,
)
from hf_deeplense.training import LensingTrainingArguments
from hf_deeplense.training.domain_adaptation import adaptation_trainer


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


def training_args(tmp_path, steps, **overrides):
    arguments = {"per_device_train_batch_size": 8, "lr_scheduler_type": "constant", **overrides}
    return LensingTrainingArguments(
        str(tmp_path),
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        **arguments,
    )


def dann_of(model):
    torch.manual_seed(0)
    return DomainAdversarialNetwork(
        model, DomainDiscriminator.for_model(model, torch.randn(2, 1, 12, 12), 16)
    )


class CoefficientRecorder(TrainerCallback):
    def __init__(self):
        self.coefficients = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.coefficients.append(model.coefficient)


@pytest.mark.parametrize("index", [0, 1], ids=["lensfinder", "equivariant"])
def test_dann_trains_backbone_classifier_and_discriminator_on_the_coefficient_schedule(tmp_path, index):
    dann = dann_of(tiny_models()[index])
    source, labels, target = two_domains()
    before = {name: parameter.detach().clone() for name, parameter in dann.named_parameters()}
    trainer = adaptation_trainer(dann, training_args(tmp_path, 4), source, labels, target)
    recorder = CoefficientRecorder()
    trainer.add_callback(recorder)
    trainer.train()
    assert recorder.coefficients == [dann_coefficient(step / 4) for step in range(4)]
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    changed = {
        name for name, parameter in dann.named_parameters() if not torch.equal(parameter, before[name])
    }
    prefix = f"classifier.{dann.classifier.base_model_prefix}."
    assert any(name.startswith(prefix) for name in changed)
    assert "classifier.classifier.weight" in changed and "discriminator.0.weight" in changed


def test_dann_reverses_and_scales_the_domain_gradient_into_the_backbone():
    dann = dann_of(tiny_models()[0])
    dann.set_training_progress(0.1)
    source, labels, target = two_domains(num=8)
    backbone = dann.classifier.base_model
    first = next(backbone.parameters())

    def backbone_gradient(domain_loss) -> torch.Tensor:
        dann.zero_grad()
        domain_loss.backward()
        return first.grad.clone()

    reversed_gradient = backbone_gradient(dann(source, labels, target)["domain_loss"])
    features, _ = features_and_logits(dann.classifier, torch.cat([source, target]))
    plain_loss = torch.nn.functional.binary_cross_entropy_with_logits(
        dann.discriminator(features), torch.cat([torch.ones(8), torch.zeros(8)])
    )
    torch.testing.assert_close(reversed_gradient, -dann_coefficient(0.1) * backbone_gradient(plain_loss))


def test_adda_losses_each_move_their_own_network_only():
    adda = AdversarialDiscriminativeAdaptation(tiny_models()[0], DomainDiscriminator(12, 16))
    source, _, target = two_domains(num=8)
    outputs = adda(source, target)
    target_backbone = list(adda.target_model.base_model.parameters())
    for loss_name, moved, untouched in (
        ("discriminator_loss", adda.discriminator.parameters(), target_backbone),
        ("target_loss", target_backbone, adda.discriminator.parameters()),
    ):
        adda.zero_grad(set_to_none=True)
        outputs[loss_name].backward(retain_graph=True)
        assert all(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in moved)
        assert all(parameter.grad is None for parameter in untouched)
    assert all(parameter.grad is None for parameter in adda.source_model.parameters())
    assert not any(parameter.requires_grad for parameter in adda.target_model.classifier.parameters())


def test_adda_adapts_the_backbone_and_keeps_the_source_model_and_head(tmp_path):
    model = tiny_models()[0]
    source, labels, target = two_domains()
    adaptation_trainer(model, training_args(tmp_path / "source", 3), source, labels).train()
    source_state = {name: value.clone() for name, value in model.state_dict().items()}
    torch.manual_seed(0)
    adda = AdversarialDiscriminativeAdaptation(model, DomainDiscriminator.for_model(model, source, 16))
    trainer = adaptation_trainer(
        adda, training_args(tmp_path / "adda", 3, adam_beta1=0.5), source, labels, target
    )
    trainer.train()
    # the source model, batch-norm statistics included, is untouched although the Trainer put `adda` in train mode
    assert all(torch.equal(value, source_state[name]) for name, value in model.state_dict().items())
    target_state = adda.target_model.state_dict()
    assert torch.equal(target_state["classifier.weight"], source_state["classifier.weight"])
    assert not torch.equal(
        target_state["lensfinder.stages.0.conv1.weight"], source_state["lensfinder.stages.0.conv1.weight"]
    )


def test_source_only_training_learns_the_source_task(tmp_path):
    model = tiny_models()[0]
    source, labels, _ = two_domains(num=64)
    arguments = training_args(tmp_path, 30, learning_rate=1e-2, per_device_train_batch_size=16)
    trainer = adaptation_trainer(model, arguments, source, labels)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < losses[0]
    logits = trainer.predict(torch.utils.data.StackDataset(pixel_values=source, labels=labels)).predictions
    assert (torch.as_tensor(logits).argmax(dim=1) == labels).float().mean() > 0.8


def test_target_batches_have_as_many_target_images_as_source_rows():
    source, labels, target = two_domains(num=10)
    target = target + torch.arange(10.0)[:, None, None, None] * 100  # each target image recognisable
    rows = [{"pixel_values": source[i], "labels": labels[i]} for i in range(4)]
    batch = TargetBatchCollator(target)(rows)
    assert torch.equal(batch["pixel_values"], source[:4]) and torch.equal(batch["labels"], labels[:4])
    assert batch["target_pixel_values"].shape == (4, 1, 12, 12)
    assert all(any(torch.equal(image, row) for row in target) for image in batch["target_pixel_values"])
