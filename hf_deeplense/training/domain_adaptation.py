"""Unsupervised domain adaptation for any DeepLense classifier: DANN and ADDA on `pooler_output`, trained by
`transformers.Trainer`.

A classifier trained on one simulation (or one instrument) loses accuracy on another: the source domain
has labels, the target domain (another PSF, noise level, pixel scale, or real survey data) has none.
Both methods align the distributions of the backbone's pooled features across domains with a domain
discriminator:

- **DANN** (Ganin et al. 2016, https://arxiv.org/abs/1505.07818): one network; a gradient-reversal layer
  between the features and the discriminator makes the backbone *maximise* the discriminator's loss while
  it minimises the source classification loss. The reversal coefficient ramps up as `2 / (1 + e^(-10 p)) - 1`.
- **ADDA** (Tzeng et al. 2017, https://arxiv.org/abs/1702.05464): train on the source, copy the model as the
  target model, then train the copy's backbone (classifier frozen) GAN-style so that the discriminator takes
  its target features for source features (from the frozen source model). DeepLense (Model A -> B): target
  AUC 0.88 without adaptation, 0.955 with ADDA (ResNet-18).

Works with every registered `...ForImageClassification` head: the features are the `pooler_output` of
`model.base_model`, captured with a forward hook during the ordinary forward pass. Each method is a module whose
forward returns its loss (`DomainAdversarialNetwork`, `AdversarialDiscriminativeAdaptation`), trained by a plain
`Trainer` (`adaptation_trainer`) on the source images, every batch with as many target images
(`TargetBatchCollator`): on the accelerator when there is one, on several processes under `accelerate launch`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import StackDataset
from transformers import PreTrainedModel, Trainer, TrainingArguments, default_data_collator

from ..data.domains import load_domain, simulate_domain
from ..evaluation.metrics import classification_metrics
from .arguments import LensingTrainingArguments, parse_recipe_args
from .artifacts import arguments_to_dict
from .callbacks import TrainingProgressCallback
from .data import as_dict
from .modeling import build_model, freeze
from .trainer import predict_arrays, start_run

__all__ = [
    "AdversarialDiscriminativeAdaptation",
    "DomainAdaptArguments",
    "DomainAdversarialNetwork",
    "DomainDiscriminator",
    "GradientReversal",
    "TargetBatchCollator",
    "adaptation_trainer",
    "dann_coefficient",
    "domain_adapt",
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


class TargetBatchCollator:
    """`default_data_collator` of source rows, plus `target_pixel_values`: as many target-domain images drawn at
    random with torch's generator (seeded by the Trainer; each DataLoader worker has its own)."""

    def __init__(self, target_images: torch.Tensor):
        self.target_images = target_images

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        index = torch.randint(len(self.target_images), (len(rows),))
        return {**default_data_collator(rows), "target_pixel_values": self.target_images[index]}


def adaptation_trainer(
    model: nn.Module,
    args: TrainingArguments,
    images: torch.Tensor,
    labels: torch.Tensor,
    target_images: torch.Tensor | None = None,
) -> Trainer:
    """A `Trainer` of `model` on the source rows `(images, labels)`, every batch with as many `target_images` when
    given (`TargetBatchCollator`), which tells a model with `set_training_progress` the training progress."""
    return Trainer(
        model=model,
        args=args,
        train_dataset=StackDataset(pixel_values=images, labels=labels),
        data_collator=default_data_collator if target_images is None else TargetBatchCollator(target_images),
        callbacks=[TrainingProgressCallback()],
    )


# ---- the run of recipes/domain_adapt.py ------------------------------------------------------------------

ADAPTATION_METHODS = ("source_only", "dann", "adda")


@dataclass
class DomainAdaptArguments:
    source_dataset: str | None = field(
        default=None,
        metadata={"help": "Labelled source dataset (folder or Hub repo id); replaces source_preset."},
    )
    target_dataset: str | None = field(
        default=None,
        metadata={
            "help": "Target dataset (folder or Hub repo id): train split unlabelled, test split labelled."
        },
    )
    train_split: str = field(default="train", metadata={"help": "Training split of the datasets."})
    test_split: str = field(default="test", metadata={"help": "Evaluation split of the datasets."})
    source_preset: str = field(
        default="model_ii", metadata={"help": "Simulation preset of the source domain."}
    )
    source_overrides: dict | str | None = field(
        default=None, metadata={"help": "SimulationConfig overrides (source)."}
    )
    target_preset: str = field(
        default="model_iii", metadata={"help": "Simulation preset of the target domain."}
    )
    target_overrides: dict | str | None = field(
        default=None, metadata={"help": "SimulationConfig overrides (target)."}
    )
    train_size: int = field(default=1500, metadata={"help": "Labelled source training images."})
    target_train_size: int = field(default=1500, metadata={"help": "Unlabelled target training images."})
    test_size: int = field(default=1000, metadata={"help": "Test images per domain."})
    lens_fraction: float = field(default=0.3, metadata={"help": "Lens fraction (lens_finding presets only)."})
    simulation_seed: int = field(
        default=0, metadata={"help": "Seed of the simulations (target uses seed + 1)."}
    )
    model_type: str = field(default="deeplense_lensfinder", metadata={"help": "Any registered model_type."})
    model_config: dict | str | None = field(default=None, metadata={"help": "Config overrides of the model."})
    methods: list[str] = field(
        default_factory=lambda: list(ADAPTATION_METHODS),
        metadata={"help": f"Subset of {ADAPTATION_METHODS}."},
    )
    source_steps: int = field(
        default=300, metadata={"help": "Source training steps (source-only, ADDA stage 1)."}
    )
    adaptation_steps: int = field(default=300, metadata={"help": "DANN steps / ADDA adversarial steps."})
    adda_learning_rate: float = field(
        default=2e-4,
        metadata={
            "help": "Learning rate of ADDA's target backbone and discriminator (Adam, beta1 0.5, no decay)."
        },
    )
    discriminator_hidden_size: int = field(default=256, metadata={"help": "Width of the discriminator MLP."})

    def __post_init__(self):
        for name in ("source_overrides", "target_overrides", "model_config"):
            if isinstance(getattr(self, name), str):  # from the command line: JSON or YAML text
                setattr(self, name, as_dict(getattr(self, name)))
        if unknown := set(self.methods) - set(ADAPTATION_METHODS):
            raise ValueError(f"methods: unknown {sorted(unknown)}; choose from {ADAPTATION_METHODS}")


def domain(args, role: str, split: str, size: int, seed: int, start: int):
    """One split of the source or target domain: from its dataset if given, else simulated from its preset."""
    dataset = getattr(args, f"{role}_dataset")
    if dataset:
        return load_domain(dataset, args.train_split if split == "train" else args.test_split, size)
    preset, overrides = getattr(args, f"{role}_preset"), getattr(args, f"{role}_overrides")
    return simulate_domain(preset, overrides, size, seed, start, args.lens_fraction)


def domain_adapt(args: Sequence[str] | None = None) -> dict:
    """Source-only vs DANN vs ADDA from the source domain to the target domain (`source_dataset` /
    `target_dataset` on disk or on the Hub, else `source_preset` / `target_preset` simulated). `args`: the command
    line of `DomainAdaptArguments` and `LensingTrainingArguments` (default `sys.argv[1:]`). Every step takes
    `per_device_train_batch_size` source images (and as many target images); source-only training runs
    `source_steps`, DANN and ADDA's adversarial stage `adaptation_steps` (ADDA with `adda_learning_rate`), each with
    the training arguments (`learning_rate`, `weight_decay`, `lr_scheduler_type`, `logging_steps`, ...) and no
    checkpoints. Returns `results.json`'s content."""
    args, training_args = parse_recipe_args((DomainAdaptArguments, LensingTrainingArguments), args)
    start_run(training_args)
    seed = args.simulation_seed
    source_train, source_labels, class_names = domain(args, "source", "train", args.train_size, seed, 0)
    source_test, source_test_labels, _ = domain(args, "source", "test", args.test_size, seed, args.train_size)
    target_train, _, target_classes = domain(  # target labels are never used for training
        args, "target", "train", args.target_train_size, seed + 1, 0
    )
    target_test, target_test_labels, _ = domain(
        args, "target", "test", args.test_size, seed + 1, args.target_train_size
    )
    if target_classes != class_names or source_train.shape[1:] != target_train.shape[1:]:
        raise ValueError(
            f"source and target must share classes and image shape: {class_names} {tuple(source_train.shape[1:])} "
            f"vs {target_classes} {tuple(target_train.shape[1:])}"
        )
    image_shape = {"num_channels": source_train.shape[1], "image_size": source_train.shape[-1]}
    initial_model = build_model(
        "classification",
        model_type=args.model_type,
        config_overrides={**image_shape, **(args.model_config or {})},
        class_names=class_names,
    )
    output_dir = Path(training_args.output_dir)

    def train(method: str, model: nn.Module, target_images=None, **arguments) -> list[dict]:
        """Train `model` by `method` (no checkpoints); its logged losses."""
        method_args = dataclasses.replace(
            training_args, output_dir=str(output_dir / method), save_strategy="no", **arguments
        )
        trainer = adaptation_trainer(model, method_args, source_train, source_labels, target_images)
        trainer.train()
        return [entry for entry in trainer.state.log_history if "loss" in entry]

    def auc(model: PreTrainedModel, images: torch.Tensor, labels: torch.Tensor) -> float:
        """ROC AUC of `model` on a test set: of the second class with two classes, else macro one-vs-rest."""
        test_set = StackDataset(pixel_values=images, labels=labels)
        logits, labels, _ = predict_arrays(Trainer(model=model, args=training_args), test_set)
        metrics = classification_metrics(logits, labels, class_names)
        return metrics[f"auc_{class_names[1]}"] if len(class_names) == 2 else metrics["auc_macro"]

    results = {"arguments": arguments_to_dict(args, training_args), "class_names": class_names}
    results.update(target_auc={}, history={})
    if {"source_only", "adda"} & set(args.methods):
        source_model = copy.deepcopy(initial_model)
        results["history"]["source_only"] = train("source_only", source_model, max_steps=args.source_steps)
        results["source_test_auc"] = auc(source_model, source_test, source_test_labels)
        if "source_only" in args.methods:
            results["target_auc"]["source_only"] = auc(source_model, target_test, target_test_labels)
    if "dann" in args.methods:
        torch.manual_seed(training_args.seed)
        discriminator = DomainDiscriminator.for_model(
            initial_model, source_train, args.discriminator_hidden_size
        )
        dann = DomainAdversarialNetwork(copy.deepcopy(initial_model), discriminator)
        results["history"]["dann"] = train("dann", dann, target_train, max_steps=args.adaptation_steps)
        results["target_auc"]["dann"] = auc(dann.classifier, target_test, target_test_labels)
    if "adda" in args.methods:
        torch.manual_seed(training_args.seed)
        discriminator = DomainDiscriminator.for_model(
            source_model, source_train, args.discriminator_hidden_size
        )
        adda = AdversarialDiscriminativeAdaptation(source_model, discriminator)
        adda_arguments = {"learning_rate": args.adda_learning_rate, "adam_beta1": 0.5, "weight_decay": 0.0}
        adda_arguments["max_steps"] = args.adaptation_steps
        results["history"]["adda"] = train("adda", adda, target_train, **adda_arguments)
        results["target_auc"]["adda"] = auc(adda.target_model, target_test, target_test_labels)
    if training_args.process_index == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        if "source_test_auc" in results:
            print(f"source-only on the source test set: AUC {results['source_test_auc']:.4f}")
        for method, value in results["target_auc"].items():
            print(f"{method:>11} on the target test set: AUC {value:.4f}")
    return results
