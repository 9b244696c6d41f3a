"""Unsupervised domain adaptation for any DeepLense classifier: DANN and ADDA on `pooler_output`.

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
`model.base_model`, captured with a forward hook during the ordinary forward pass.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.domains import load_domain, simulate_domain
from ..evaluation.metrics import classification_metrics
from .arguments import parse_recipe_args
from .data import as_dict
from .modeling import build_model

__all__ = [
    "AdaptationConfig",
    "DomainAdaptArguments",
    "DomainDiscriminator",
    "GradientReversal",
    "dann_coefficient",
    "domain_adapt",
    "features_and_logits",
    "grad_reverse",
    "predict_probabilities",
    "train_adda",
    "train_dann",
    "train_source_only",
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
    """MLP `(batch, hidden_size)` -> `(batch,)` logit that the features come from the source domain."""

    def __init__(self, input_size: int, hidden_size: int = 256):
        super().__init__(
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
            nn.Flatten(0),  # (batch, 1) -> (batch,)
        )


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


@dataclass
class AdaptationConfig:
    """Settings of the adaptation loops.

    Args:
        steps: optimizer steps.
        batch_size: images per domain and step.
        learning_rate: Adam learning rate of the model (and, for DANN, the discriminator).
        discriminator_learning_rate: Adam learning rate of the ADDA discriminator and target backbone.
        discriminator_hidden_size: width of the discriminator MLP.
        weight_decay: AdamW weight decay of the model.
        seed: seeds the batch order and the discriminator's initialisation.
        progress: show tqdm progress bars.
    """

    steps: int = 500
    batch_size: int = 64
    learning_rate: float = 1e-3
    discriminator_learning_rate: float = 2e-4
    discriminator_hidden_size: int = 256
    weight_decay: float = 1e-4
    seed: int = 0
    progress: bool = True


def _batches(num_examples: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled index batches (a fresh permutation per epoch, the last partial batch dropped)."""
    batch_size = min(batch_size, num_examples)
    while True:
        order = torch.randperm(num_examples, generator=generator)
        for first in range(0, num_examples - batch_size + 1, batch_size):
            yield order[first : first + batch_size]


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _discriminator(model: nn.Module, images: torch.Tensor, config: AdaptationConfig) -> DomainDiscriminator:
    """A discriminator as wide as the model's features, initialised from `config.seed`."""
    with torch.no_grad():
        hidden_size = features_and_logits(model, images[:2].to(_device(model)))[0].shape[-1]
    torch.manual_seed(config.seed)
    return DomainDiscriminator(hidden_size, config.discriminator_hidden_size).to(_device(model))


def _accuracy(domain_logits: torch.Tensor, domain_labels: torch.Tensor) -> float:
    return ((domain_logits > 0).float() == domain_labels).float().mean().item()


def train_source_only(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: AdaptationConfig
) -> list[dict[str, float]]:
    """Supervised training on the source domain (the baseline, and ADDA's first stage). Returns the loss history."""
    generator = torch.Generator().manual_seed(config.seed)
    device = _device(model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    batches = _batches(len(labels), config.batch_size, generator)
    history = []
    model.train()
    for step in tqdm(range(config.steps), desc="source only", disable=not config.progress, leave=False):
        index = next(batches)
        logits = model(pixel_values=images[index].to(device)).logits
        loss = nn.functional.cross_entropy(logits, labels[index].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"step": step, "classification_loss": loss.item()})
    return history


def train_dann(
    model: nn.Module,
    source_images: torch.Tensor,
    source_labels: torch.Tensor,
    target_images: torch.Tensor,
    config: AdaptationConfig,
) -> tuple[DomainDiscriminator, list[dict[str, float]]]:
    """DANN: source classification loss + domain loss through a gradient-reversal layer, one optimizer.

    Returns the trained discriminator and the history (losses, reversal coefficient, domain accuracy).
    """
    generator = torch.Generator().manual_seed(config.seed)
    device = _device(model)
    discriminator = _discriminator(model.eval(), source_images, config)
    optimizer = torch.optim.AdamW(
        [
            {"params": model.parameters(), "weight_decay": config.weight_decay},
            {"params": discriminator.parameters(), "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    source_batches = _batches(len(source_labels), config.batch_size, generator)
    target_batches = _batches(len(target_images), config.batch_size, generator)
    history = []
    model.train()
    for step in tqdm(range(config.steps), desc="DANN", disable=not config.progress, leave=False):
        coefficient = dann_coefficient(step / max(config.steps - 1, 1))
        source_index, target_index = next(source_batches), next(target_batches)
        # one forward over both domains: BatchNorm sees the mixture, as in the DANN paper's implementation
        pixel_values = torch.cat([source_images[source_index], target_images[target_index]]).to(device)
        features, logits = features_and_logits(model, pixel_values)
        num_source = len(source_index)
        classification_loss = nn.functional.cross_entropy(
            logits[:num_source], source_labels[source_index].to(device)
        )
        domain_logits = discriminator(grad_reverse(features, coefficient))  # (2 * batch,)
        domain_labels = torch.cat([torch.ones(num_source), torch.zeros(len(target_index))]).to(device)
        domain_loss = nn.functional.binary_cross_entropy_with_logits(domain_logits, domain_labels)
        optimizer.zero_grad()
        (classification_loss + domain_loss).backward()
        optimizer.step()
        history.append(
            {
                "step": step,
                "classification_loss": classification_loss.item(),
                "domain_loss": domain_loss.item(),
                "coefficient": coefficient,
                "domain_accuracy": _accuracy(domain_logits, domain_labels),
            }
        )
    return discriminator, history


def train_adda(
    source_model: nn.Module,
    source_images: torch.Tensor,
    target_images: torch.Tensor,
    config: AdaptationConfig,
) -> tuple[nn.Module, DomainDiscriminator, list[dict[str, float]]]:
    """ADDA's adversarial stage: adapt a copy of a source-trained model to the target domain.

    The source model is frozen (its features are the "real" samples); the target model starts as its copy,
    keeps the source classifier frozen, and trains its backbone to fool the discriminator (inverted labels).

    Returns the target model, the discriminator and the history.
    """
    generator = torch.Generator().manual_seed(config.seed)
    device = _device(source_model)
    source_model.eval().requires_grad_(False)
    target_model = copy.deepcopy(source_model).train().requires_grad_(False)
    target_model.base_model.requires_grad_(True)  # the head (classifier) stays the source's
    discriminator = _discriminator(source_model, source_images, config)
    betas = (0.5, 0.999)  # as in the ADDA paper
    discriminator_optimizer = torch.optim.Adam(
        discriminator.parameters(), lr=config.discriminator_learning_rate, betas=betas
    )
    target_optimizer = torch.optim.Adam(
        target_model.base_model.parameters(), lr=config.discriminator_learning_rate, betas=betas
    )
    source_batches = _batches(len(source_images), config.batch_size, generator)
    target_batches = _batches(len(target_images), config.batch_size, generator)
    history = []
    for step in tqdm(range(config.steps), desc="ADDA", disable=not config.progress, leave=False):
        source_index, target_index = next(source_batches), next(target_batches)
        with torch.no_grad():
            source_features = features_and_logits(source_model, source_images[source_index].to(device))[0]
        target_features = features_and_logits(target_model, target_images[target_index].to(device))[0]
        # 1. discriminator: source features -> 1, target features -> 0
        domain_logits = discriminator(torch.cat([source_features, target_features.detach()]))
        domain_labels = torch.cat([torch.ones(len(source_index)), torch.zeros(len(target_index))]).to(device)
        discriminator_loss = nn.functional.binary_cross_entropy_with_logits(domain_logits, domain_labels)
        discriminator_optimizer.zero_grad()
        discriminator_loss.backward()
        discriminator_optimizer.step()
        # 2. target backbone: make the discriminator call its features "source" (inverted labels)
        fooled_logits = discriminator(target_features)
        target_loss = nn.functional.binary_cross_entropy_with_logits(
            fooled_logits, torch.ones_like(fooled_logits)
        )
        target_optimizer.zero_grad()
        target_loss.backward()
        target_optimizer.step()
        history.append(
            {
                "step": step,
                "discriminator_loss": discriminator_loss.item(),
                "target_loss": target_loss.item(),
                "domain_accuracy": _accuracy(domain_logits, domain_labels),
            }
        )
    target_model.requires_grad_(True).eval()
    return target_model, discriminator, history


@torch.no_grad()
def predict_probabilities(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax class probabilities `(N, num_labels)` in eval mode, on the model's device, returned on the CPU."""
    model.eval()
    device = _device(model)
    outputs = [
        torch.softmax(
            model(pixel_values=images[first : first + batch_size].to(device)).logits.float(), dim=-1
        ).cpu()
        for first in range(0, len(images), batch_size)
    ]
    return torch.cat(outputs)


# ---- the run of recipes/domain_adapt.py ------------------------------------------------------------------

ADAPTATION_METHODS = ("source_only", "dann", "adda")


@dataclass
class DomainAdaptArguments:
    output_dir: str = field(default="outputs/domain_adapt", metadata={"help": "Where results.json goes."})
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
    batch_size: int = field(default=64, metadata={"help": "Images per domain and step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Model learning rate (source-only, DANN)."})
    adda_learning_rate: float = field(
        default=2e-4, metadata={"help": "ADDA target backbone + discriminator lr."}
    )
    seed: int = field(default=0, metadata={"help": "Model initialisation and batch-order seed."})

    def __post_init__(self):
        for name in ("source_overrides", "target_overrides", "model_config"):
            if isinstance(getattr(self, name), str):  # from the command line: JSON or YAML text
                setattr(self, name, as_dict(getattr(self, name)))


def domain(args, role: str, split: str, size: int, seed: int, start: int):
    """One split of the source or target domain: from its dataset if given, else simulated from its preset."""
    dataset = getattr(args, f"{role}_dataset")
    if dataset:
        return load_domain(dataset, args.train_split if split == "train" else args.test_split, size)
    preset, overrides = getattr(args, f"{role}_preset"), getattr(args, f"{role}_overrides")
    return simulate_domain(preset, overrides, size, seed, start, args.lens_fraction)


def target_auc(model, images, labels, class_names) -> float:
    probabilities = predict_probabilities(model, images)
    metrics = classification_metrics(
        torch.log(probabilities.clamp_min(1e-12)).numpy(), labels.numpy(), class_names
    )
    return metrics[f"auc_{class_names[1]}"] if len(class_names) == 2 else metrics["auc_macro"]


def domain_adapt(args: Sequence[str] | None = None) -> dict:
    """Source-only vs DANN vs ADDA from the source domain to the target domain (`source_dataset` /
    `target_dataset` on disk or on the Hub, else `source_preset` / `target_preset` simulated). `args`: the command line of
    `DomainAdaptArguments` (default `sys.argv[1:]`). Returns `results.json`'s content."""
    (args,) = parse_recipe_args((DomainAdaptArguments,), args)
    unknown = set(args.methods) - set(ADAPTATION_METHODS)
    if unknown:
        raise ValueError(f"methods: unknown {sorted(unknown)}; choose from {ADAPTATION_METHODS}")
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
    torch.manual_seed(args.seed)
    initial_model = build_model(
        "classification",
        model_type=args.model_type,
        config_overrides={**image_shape, **(args.model_config or {})},
        class_names=class_names,
    )
    source_config = AdaptationConfig(
        steps=args.source_steps, batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed
    )
    adaptation_config = AdaptationConfig(
        steps=args.adaptation_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        discriminator_learning_rate=args.adda_learning_rate,
        seed=args.seed,
    )
    results = {"arguments": asdict(args), "class_names": class_names, "target_auc": {}, "history": {}}
    source_model = None
    if {"source_only", "adda"} & set(args.methods):
        source_model = copy.deepcopy(initial_model)
        results["history"]["source_only"] = train_source_only(
            source_model, source_train, source_labels, source_config
        )
        results["source_test_auc"] = target_auc(source_model, source_test, source_test_labels, class_names)
        if "source_only" in args.methods:
            results["target_auc"]["source_only"] = target_auc(
                source_model, target_test, target_test_labels, class_names
            )
    if "dann" in args.methods:
        dann_model = copy.deepcopy(initial_model)
        _, results["history"]["dann"] = train_dann(
            dann_model, source_train, source_labels, target_train, adaptation_config
        )
        results["target_auc"]["dann"] = target_auc(dann_model, target_test, target_test_labels, class_names)
    if "adda" in args.methods:
        adda_model, _, results["history"]["adda"] = train_adda(
            source_model, source_train, target_train, adaptation_config
        )
        results["target_auc"]["adda"] = target_auc(adda_model, target_test, target_test_labels, class_names)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    if "source_test_auc" in results:
        print(f"source-only on the source test set: AUC {results['source_test_auc']:.4f}")
    for method, auc in results["target_auc"].items():
        print(f"{method:>11} on the target test set: AUC {auc:.4f}")
    return results
