"""Domain adaptation from a labelled source simulation to an unlabelled target domain: source-only vs DANN vs ADDA.

    python recipes/domain_adapt.py --config recipes/configs/domain_adapt_tiny.yaml --output_dir outputs/da

Source and target are two datasets on disk or on the Hub (`--source_dataset`, `--target_dataset`: folders or
repo ids in the hf_deeplense format, e.g. converted DeepLense folders or `build_sim.py` output: the source's
`train` split is the labelled training set, the target's `train` split is used without its labels, and each
`test` split is labelled for evaluation), or two simulation presets, or one preset with different overrides
(PSF, noise, exposure, pixel scale): e.g. `model_ii` -> `model_iii`, or `lens_finding` -> the same survey with
worse seeing and shallower exposures. A dataset and a preset may be mixed. Any registered classification head works (`model_type` + `model_config`):
the adaptation aligns its `pooler_output` (see `hf_deeplense.training.domain_adaptation`). Images are
standardised per image (zero mean, unit variance), so a plain flux-scale change is not the shift being
adapted. `results.json` holds the target-test ROC AUC (macro one-vs-rest for more than two classes) of each
method, the source-test AUC of the source-only model, and the training histories.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from transformers import AutoConfig, AutoModelForImageClassification

from hf_deeplense.data import load_lensing_dataset
from hf_deeplense.data.lens_finding import simulate_lens_finding_arrays
from hf_deeplense.evaluation.metrics import classification_metrics
from hf_deeplense.simulation import get_preset, simulate_batch
from hf_deeplense.training import parse_recipe_args
from hf_deeplense.training.domain_adaptation import (
    AdaptationConfig,
    predict_probabilities,
    train_adda,
    train_dann,
    train_source_only,
)

METHODS = ("source_only", "dann", "adda")


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
        default_factory=lambda: list(METHODS), metadata={"help": f"Subset of {METHODS}."}
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
            value = getattr(self, name)
            if isinstance(value, str):  # from the command line: JSON (or YAML) text
                setattr(self, name, yaml.safe_load(value))


def simulate_domain(
    preset: str, overrides: dict | None, size: int, seed: int, start: int, lens_fraction: float
):
    """`(images (N, C, H, W) standardised per image, labels (N,), class names)` of one domain."""
    cfg = get_preset(preset, **(overrides or {}))
    if "lens" in cfg.classes:
        data = simulate_lens_finding_arrays(cfg, size, seed=seed, lens_fraction=lens_fraction, start=start)
        images, labels = data["images"], data["labels"]
    else:  # balanced classes, image i of class c has index start + i
        per_class = [
            simulate_batch(cfg, name, range(start, start + size // len(cfg.classes)), seed=seed)["images"]
            for name in cfg.classes
        ]
        images = torch.cat(per_class)
        labels = torch.cat([torch.full((len(part),), index) for index, part in enumerate(per_class)])
    return standardise(images), labels.long(), list(cfg.classes)


def standardise(images: torch.Tensor) -> torch.Tensor:
    """Per-image zero mean and unit variance `(N, C, H, W)`: a flux-scale change is not the shift adapted."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    std = images.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return ((images.double() - mean) / std).float()


def load_domain(dataset: str, split: str, size: int | None = None):
    """`(images standardised per image, labels, class names)` of one split of a lensing dataset (the first
    `size` rows when given; the splits are shuffled when written)."""
    splits = load_lensing_dataset(dataset)
    if split not in splits:
        raise ValueError(f"{dataset} has no {split!r} split (splits: {sorted(splits)})")
    rows = splits[split]
    if size is not None:
        rows = rows.select(range(min(size, rows.num_rows)))
    columns = rows.with_format("torch", columns=["pixel_values", "label"])[:]
    return standardise(columns["pixel_values"].float()), columns["label"].long(), rows.features["label"].names


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


def main(argv: list[str] | None = None) -> dict:
    (args,) = parse_recipe_args((DomainAdaptArguments,), argv)
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        raise ValueError(f"methods: unknown {sorted(unknown)}; choose from {METHODS}")
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
    config = AutoConfig.for_model(
        args.model_type,
        **{
            "num_channels": source_train.shape[1],
            "image_size": source_train.shape[-1],
            "num_labels": len(class_names),
            "id2label": dict(enumerate(class_names)),
            "label2id": {name: index for index, name in enumerate(class_names)},
            **(args.model_config or {}),
        },
    )
    torch.manual_seed(args.seed)
    initial_model = AutoModelForImageClassification.from_config(config)
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


if __name__ == "__main__":
    main()
