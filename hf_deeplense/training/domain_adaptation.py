"""`domain_adapt`: source-only vs DANN vs ADDA from a labelled source domain to an unlabelled target domain, as
`recipes/domain_adapt.py`.

DANN (`DomainAdversarialNetwork`) and ADDA's adversarial stage (`AdversarialDiscriminativeAdaptation`) are modules
of `hf_deeplense.models.domain_adaptation` whose forward returns their loss; each method is trained by a plain
`Trainer` (`adaptation_trainer`) on the source images, every batch with as many target images
(`TargetBatchCollator`): on the accelerator when there is one, on several processes under `accelerate launch`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import StackDataset
from transformers import PreTrainedModel, Trainer, TrainingArguments, default_data_collator

from ..data.domains import TargetBatchCollator, load_domain, simulate_domain
from ..evaluation.metrics import classification_metrics
from ..models.domain_adaptation import (
    AdversarialDiscriminativeAdaptation,
    DomainAdversarialNetwork,
    DomainDiscriminator,
)
from .arguments import LensingTrainingArguments, as_dict, parse_recipe_args
from .artifacts import arguments_to_dict
from .callbacks import TrainingProgressCallback
from .modeling import build_model
from .trainer import predict_arrays, start_run

__all__ = ["DomainAdaptArguments", "adaptation_trainer", "domain_adapt"]


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

    def domain(self, role: str, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """`(images, labels, class names)` of the `train` or `test` split of the `source` or `target` domain: from
        its dataset if given, else simulated from its preset (the target with seed + 1; test images after the
        training images)."""
        train_size = self.train_size if role == "source" else self.target_train_size
        size, start = (train_size, 0) if split == "train" else (self.test_size, train_size)
        if dataset := getattr(self, f"{role}_dataset"):
            return load_domain(dataset, self.train_split if split == "train" else self.test_split, size)
        preset, overrides = getattr(self, f"{role}_preset"), getattr(self, f"{role}_overrides")
        seed = self.simulation_seed + (role == "target")
        return simulate_domain(preset, overrides, size, seed, start, self.lens_fraction)


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
    source_train, source_labels, class_names = args.domain("source", "train")
    source_test, source_test_labels, _ = args.domain("source", "test")
    target_train, _, target_classes = args.domain("target", "train")  # target labels never train
    target_test, target_test_labels, _ = args.domain("target", "test")
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
