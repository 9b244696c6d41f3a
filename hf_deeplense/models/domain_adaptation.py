"""Unsupervised domain adaptation of any DeepLense classifier: DANN and ADDA as modules whose forward returns their
loss, so that a plain `transformers.Trainer` trains them (`hf_deeplense.training.domain_adapt` runs both).

A classifier trained on one simulation (or one instrument) loses accuracy on another: the source domain has labels,
the target domain (another PSF, noise level, pixel scale, or real survey data) has none. Both methods align the
distributions of the backbone's pooled features across domains with a domain discriminator:

- **DANN** (Ganin et al. 2016, https://arxiv.org/abs/1505.07818): one network; a gradient-reversal layer between
  the features and the discriminator makes the backbone *maximise* the discriminator's loss while it minimises the
  source classification loss. The reversal coefficient ramps up as `2 / (1 + e^(-10 p)) - 1`.
- **ADDA** (Tzeng et al. 2017, https://arxiv.org/abs/1702.05464): train on the source, copy the model as the target
  model, then train the copy's backbone (classifier frozen) GAN-style so that the discriminator takes its target
  features for source features (from the frozen source model). DeepLense (Model A -> B): target AUC 0.88 without
  adaptation, 0.955 with ADDA (ResNet-18).

Works with every registered `...ForImageClassification` head: the features are the `pooler_output` of
`model.base_model`, captured with a forward hook during the ordinary forward pass. Each forward takes the source
batch plus `target_pixel_values`, as many target images (`hf_deeplense.data.domains.TargetBatchCollator`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from transformers import PreTrainedModel

from .utils import freeze

__all__ = [
    "AdversarialDiscriminativeAdaptation",
    "DomainAdversarialNetwork",
    "DomainDiscriminator",
    "GradientReversal",
    "dann_coefficient",
    "features_and_logits",
    "grad_reverse",
]


class GradientReversal(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by `-coefficient` in the backward pass."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad_output, None


def grad_reverse(inputs: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """Gradient-reversal layer (DANN)."""
    return GradientReversal.apply(inputs, coefficient)


def dann_coefficient(progress: float, gamma: float = 10.0) -> float:
    """Ganin et al.'s schedule of the reversal coefficient, from 0 (start) to ~1 (`progress` = 1)."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


class DomainDiscriminator(nn.Sequential):
    """MLP `(batch, input_size)` -> `(batch,)` logit that the features come from the source domain."""

    def __init__(self, input_size: int, hidden_size: int = 256):
        super().__init__(
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
            nn.Flatten(0),  # (batch, 1) -> (batch,)
        )

    @classmethod
    def for_model(cls, model: nn.Module, images: torch.Tensor, hidden_size: int = 256) -> DomainDiscriminator:
        """A discriminator as wide as the features of `model`, measured on two of `images` in eval mode (which leaves
        the model's batch-norm statistics as they are)."""
        was_training = model.training
        with torch.no_grad():
            features = features_and_logits(model.eval(), images[:2].to(next(model.parameters()).device))[0]
        model.train(was_training)
        return cls(features.shape[-1], hidden_size)


def features_and_logits(model: nn.Module, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass of a classification head: `(pooler_output (batch, hidden), logits (batch, num_labels))`."""
    captured = {}

    def hook(module, inputs, output):
        captured["features"] = output.pooler_output if hasattr(output, "pooler_output") else output[1]

    handle = model.base_model.register_forward_hook(hook)
    try:
        logits = model(pixel_values=pixel_values).logits
    finally:
        handle.remove()
    return captured["features"], logits


def _domain_loss(domain_logits: torch.Tensor, num_source: int) -> torch.Tensor:
    """Binary cross-entropy of the discriminator's logits: `num_source` source rows (label 1), then target rows
    (label 0)."""
    domain_labels = torch.zeros_like(domain_logits)
    domain_labels[:num_source] = 1.0
    return nn.functional.binary_cross_entropy_with_logits(domain_logits, domain_labels)


class DomainAdversarialNetwork(nn.Module):
    """DANN: a classifier and a domain discriminator trained with one loss, the classification loss of the source
    rows plus the discriminator's loss on the features of both domains behind a gradient-reversal layer. The reversal
    coefficient follows `dann_coefficient` of the training progress (`set_training_progress`, called by the
    `TrainingProgressCallback` of `adaptation_trainer`)."""

    def __init__(self, classifier: PreTrainedModel, discriminator: DomainDiscriminator):
        super().__init__()
        self.classifier, self.discriminator = classifier, discriminator
        self.coefficient = 0.0

    def set_training_progress(self, progress: float) -> None:
        self.coefficient = dann_coefficient(progress)

    def forward(self, pixel_values, labels, target_pixel_values) -> dict[str, torch.Tensor]:
        # one forward over both domains: BatchNorm sees the mixture, as in the DANN paper's implementation
        features, logits = features_and_logits(
            self.classifier, torch.cat([pixel_values, target_pixel_values])
        )
        classification_loss = nn.functional.cross_entropy(logits[: len(labels)], labels)
        domain_loss = _domain_loss(self.discriminator(grad_reverse(features, self.coefficient)), len(labels))
        loss = classification_loss + domain_loss
        return {"loss": loss, "classification_loss": classification_loss, "domain_loss": domain_loss}


class AdversarialDiscriminativeAdaptation(nn.Module):
    """ADDA's adversarial stage: `target_model` starts as a copy of the source-trained `source_model`, keeps its
    classifier, and trains its backbone until the discriminator takes its target features for the (frozen) source
    model's source features.

    Both losses come out of one forward: the discriminator's on target features detached from the target backbone,
    the target backbone's (inverted labels) through the discriminator's weights detached from the discriminator. So
    one optimizer step moves each network by its own loss only, at the same time, as in the paper's reference
    implementation (one `sess.run` of both steps). The returned `loss` is their sum.
    """

    def __init__(self, source_model: PreTrainedModel, discriminator: DomainDiscriminator):
        super().__init__()
        self.target_model = copy.deepcopy(source_model).requires_grad_(False)
        self.target_model.base_model.requires_grad_(True)  # the head (classifier) stays the source's
        self.source_model = freeze(source_model)  # the "real" features; in eval mode while the Trainer trains
        self.discriminator = discriminator

    def forward(self, pixel_values, target_pixel_values, labels=None) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            source_features = features_and_logits(self.source_model, pixel_values)[0]
        target_features = features_and_logits(self.target_model, target_pixel_values)[0]
        domain_logits = self.discriminator(torch.cat([source_features, target_features.detach()]))
        discriminator_loss = _domain_loss(domain_logits, len(source_features))
        detached = {name: weight.detach() for name, weight in self.discriminator.named_parameters()}
        fooled_logits = torch.func.functional_call(self.discriminator, detached, (target_features,))
        target_loss = _domain_loss(fooled_logits, len(fooled_logits))  # target features labelled "source"
        loss = discriminator_loss + target_loss
        return {"loss": loss, "discriminator_loss": discriminator_loss, "target_loss": target_loss}
