"""`lens_finding`: lens vs non-lens on 3-band (g, r, i) cut-outs, image only vs image + meta features, as
`recipes/lens_finding.py`.

Data: a built lens-finding dataset (`--dataset_dir`, `dataset_scripts/build_sim.py --preset lens_finding`:
`pixel_values`, `label`, optional meta columns) or, without one, images simulated on the fly with the
`lens_finding` preset. Meta features: `photometric` (catalogue photometry measured on every image, see
`hf_deeplense.data.lens_finding`) and/or named columns; features that alone separate the classes (the
simulator's source meta features, NaN/0 for every non-lens) are refused as label leakage. Class imbalance
(~6% lenses): class-weighted cross-entropy (`class_weighting: balanced`). Each variant in `variants` trains
the same `deeplense_lensfinder` CNN (with or without the meta branch); `comparison.json` lists ROC AUC,
PR AUC and the TPR at FPR 1e-2 and 1e-3 on the test split for each; `eval_prevalence: deeplense` quotes the
PR AUC at the DeepLense test set's 1 % lenses (195 of 19,650), so it compares with their figures. An `hpo:` section runs an Optuna
search per variant first (see `hf_deeplense.training.hpo`), scored on the validation split (never the test
split). The saved models take `pixel_values = asinh(image / asinh_softening)` of images in e-/s (not
`LensImageProcessor`'s min-max), and the fused model its raw meta features in the order of
`config.meta_feature_names`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import Trainer

from ..data.lens_finding import (
    LensFindingDataset,
    balanced_class_weights,
    check_feature_leakage,
    load_lens_finding_split,
    meta_feature_columns,
    meta_feature_names,
    simulate_lens_finding_arrays,
    stack_features,
)
from ..evaluation.metrics import detection_metrics, softmax
from ..models.lensfinder import DeepLenseLensFinderConfig, DeepLenseLensFinderForImageClassification
from ..simulation import get_preset
from .arguments import LensingTrainingArguments, as_dict, parse_recipe_args
from .hpo import HPOArguments, best_run_arguments, run_hyperparameter_search
from .modeling import class_label_fields

__all__ = ["LensFindingArguments", "lens_finding"]

CLASS_NAMES = ["non_lens", "lens"]


@dataclass
class LensFindingArguments:
    dataset_dir: str | None = field(
        default=None, metadata={"help": "Built lens-finding dataset (else: simulate)."}
    )
    preset_overrides: dict | str | None = field(
        default=None,
        metadata={"help": "SimulationConfig overrides of the lens_finding preset (e.g. image_size)."},
    )
    train_size: int = field(default=2000, metadata={"help": "Simulated training images."})
    test_size: int = field(default=2000, metadata={"help": "Simulated test images (disjoint indices)."})
    validation_size: int = field(
        default=1000,
        metadata={"help": "Simulated validation images (disjoint indices; model selection and the search)."},
    )
    train_lens_fraction: float = field(
        default=0.06, metadata={"help": "Lens fraction of the simulated train split."}
    )
    test_lens_fraction: float = field(
        default=0.06, metadata={"help": "Lens fraction of the simulated test split."}
    )
    simulation_seed: int = field(default=0, metadata={"help": "Simulation seed."})
    meta_features: list[str] = field(
        default_factory=lambda: ["photometric"],
        metadata={"help": "'photometric' (measured catalogue features) and/or meta column names."},
    )
    variants: list[str] = field(
        default_factory=lambda: ["image", "image+meta"],
        metadata={"help": "Models to compare: image, image+meta."},
    )
    class_weighting: str = field(
        default="balanced", metadata={"help": "'balanced' (inverse frequency) or 'none'."}
    )
    conv_channels: list[int] = field(
        default_factory=lambda: [16, 32, 64], metadata={"help": "CNN stage widths."}
    )
    hidden_size: int = field(default=64, metadata={"help": "Width of the fused representation."})
    asinh_softening: float = field(
        default=1.0, metadata={"help": "pixel_values = asinh(image / softening) (e-/s)."}
    )
    eval_prevalence: str | None = field(
        default=None,
        metadata={
            "help": "Evaluate PR AUC at this lens fraction: 'deeplense' (195 / 19,650, the DeepLense test set), "
            "a fraction, or none (the split's own). ROC AUC and TPR-at-FPR do not depend on it."
        },
    )

    def __post_init__(self):
        self.preset_overrides = as_dict(self.preset_overrides)
        if unknown := set(self.variants) - {"image", "image+meta"}:
            raise ValueError(
                f"variants: unknown variant(s) {sorted(unknown)}; use 'image' and/or 'image+meta'"
            )
        if self.eval_prevalence not in (None, "deeplense"):
            self.eval_prevalence = float(self.eval_prevalence)


def load_split(args: LensFindingArguments, split: str) -> dict:
    """Raw images (e-/s), labels and every meta column of one split, from `dataset_dir` or simulated."""
    if args.dataset_dir:
        return load_lens_finding_split(args.dataset_dir, split)
    # disjoint image indices: train, test, then validation (so adding validation kept the test images)
    size, fraction, start = {
        "train": (args.train_size, args.train_lens_fraction, 0),
        "test": (args.test_size, args.test_lens_fraction, args.train_size),
        "validation": (args.validation_size, args.test_lens_fraction, args.train_size + args.test_size),
    }[split]
    return simulate_lens_finding_arrays(
        get_preset("lens_finding", **args.preset_overrides),
        size,
        seed=args.simulation_seed,
        lens_fraction=fraction,
        start=start,
    )


def lens_finding(args: Sequence[str] | None = None) -> dict:
    """Train and compare the lens finders of `variants` on the test split. `args`: the command line of
    `LensFindingArguments`, `HPOArguments`, `LensingTrainingArguments` (default `sys.argv[1:]`). Returns
    `comparison.json`'s content."""
    args, hpo_args, training_args = parse_recipe_args(
        (LensFindingArguments, HPOArguments, LensingTrainingArguments), args
    )
    output_dir = Path(training_args.output_dir)
    pixel_scale = get_preset("lens_finding", **args.preset_overrides).pixel_scale
    splits = {split: load_split(args, split) for split in ("train", "validation", "test")}
    columns = {
        split: meta_feature_columns(data, args.meta_features, pixel_scale) for split, data in splits.items()
    }
    feature_names = meta_feature_names(args.meta_features)
    train_images = splits["train"]["images"]
    single_aucs = check_feature_leakage(
        {name: columns["train"][name] for name in feature_names}, splits["train"]["labels"]
    )
    train_meta = stack_features(columns["train"], feature_names)
    meta_config = {  # the fused model's meta branch
        "num_meta_features": len(feature_names),
        "meta_feature_names": list(feature_names),
        "meta_mean": train_meta.mean(dim=0).tolist(),
        "meta_std": train_meta.std(dim=0).clamp_min(1e-6).tolist(),
    }
    class_weights = (
        balanced_class_weights(splits["train"]["labels"], len(CLASS_NAMES))
        if args.class_weighting == "balanced"
        else None
    )

    def dataset(split: str, with_meta: bool) -> LensFindingDataset:
        data = splits[split]
        pixel_values = torch.asinh(data["images"].float() / args.asinh_softening)
        meta = stack_features(columns[split], feature_names) if with_meta else None
        return LensFindingDataset(pixel_values, data["labels"], meta)

    def lens_finder(model_overrides: dict, with_meta: bool) -> DeepLenseLensFinderForImageClassification:
        config = DeepLenseLensFinderConfig(
            num_channels=train_images.shape[1],
            image_size=train_images.shape[-1],
            conv_channels=args.conv_channels,
            hidden_size=args.hidden_size,
            class_weights=class_weights,
            **class_label_fields(CLASS_NAMES),
            **(meta_config if with_meta else {}),
            **model_overrides,
        )
        return DeepLenseLensFinderForImageClassification(config)

    def variant_trainer(arguments, model_overrides: dict, with_meta: bool) -> Trainer:
        return Trainer(
            model_init=lambda trial=None: lens_finder(model_overrides, with_meta),  # after Trainer seeds
            args=arguments,
            train_dataset=dataset("train", with_meta),
            eval_dataset=dataset("validation", with_meta),  # the search and model selection never see test
            compute_metrics=lambda prediction: detection_metrics(
                softmax(prediction.predictions)[:, 1], prediction.label_ids, prevalence=args.eval_prevalence
            ),
        )

    results = {"single_feature_auc": single_aucs, "class_weights": class_weights, "variants": {}}
    for variant in args.variants:
        with_meta = variant == "image+meta"
        variant_args = dataclasses.replace(training_args, output_dir=str(output_dir / variant))
        trainer = variant_trainer(variant_args, {}, with_meta)
        if hpo_args.config is not None:
            variant_model = functools.partial(lens_finder, with_meta=with_meta)
            best_run = run_hyperparameter_search(trainer, hpo_args.config, build_model=variant_model)
            trainer = variant_trainer(*best_run_arguments(variant_args, best_run), with_meta)
        trainer.train()
        metrics = trainer.evaluate(dataset("test", with_meta))
        trainer.save_model(str(output_dir / variant / "model"))
        results["variants"][variant] = {key.removeprefix("eval_"): value for key, value in metrics.items()}
    (output_dir / "comparison.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    for variant, metrics in results["variants"].items():
        print(
            f"{variant:>11}: ROC AUC {metrics['roc_auc']:.4f}  PR AUC {metrics['pr_auc']:.4f}  "
            f"TPR@FPR=1e-2 {metrics['tpr_at_fpr_0.01']:.3f}  TPR@FPR=1e-3 {metrics['tpr_at_fpr_0.001']:.3f}"
        )
    return results
