"""`finetune`: classification of the substructure classes or regression of log10 m_a, as `recipes/finetune.py`.

From scratch (`model_type` + `model_config`) or from a checkpoint (`init_from`: a supervised model, an MAE, whose
encoder loads into the ViT heads, or a SimCLR model); full fine-tuning or a linear probe (`linear_probe`: frozen
backbone in eval mode); `label_fraction` trains on a stratified, seeded fraction of the labels; an `hpo:` section
searches hyperparameters first. The best checkpoint (validation split) is evaluated on the test split; the output
folder holds the model + processor, metrics.json, plots and a model card (see `hf_deeplense.training.artifacts`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from transformers import PreTrainedModel

from ..data.selection import class_names_of, finite_target_rows, labelled_subset, target_statistics
from ..evaluation.metrics import make_compute_metrics
from ..evaluation.report import report_predictions
from .arguments import LensingTrainingArguments, as_dict, parse_recipe_args
from .artifacts import finish_run, hub_id_or_none
from .data import DataArguments, load_splits, make_image_processor, on_training_device
from .hpo import MODEL_PREFIX, HPOArguments, best_run_arguments, run_hyperparameter_search
from .modeling import FINETUNE_CONFIG_FIELDS, build_model, freeze_backbone
from .trainer import LensingTrainer, make_trainer, predict_arrays, start_run

__all__ = ["FinetuneArguments", "finetune"]

logger = logging.getLogger(__name__)


@dataclass
class FinetuneArguments:
    task: str = field(default="classification", metadata={"help": "classification or regression."})
    model_type: str = field(
        default="deeplense_vit",
        metadata={"help": "Registered model type of a new model (deeplense_vit, deeplense_cnn, ...)."},
    )
    model_config: dict | str | None = field(
        default=None,
        metadata={
            "help": "Config fields (mapping or JSON): the architecture of a new model, e.g. hidden_size. With "
            "init_from the architecture is the checkpoint's: only these fields may differ from it (SimCLR: also "
            f"under backbone_config): {', '.join(sorted(FINETUNE_CONFIG_FIELDS))}; any other field must equal "
            "the checkpoint's value or the run stops with a ValueError naming it."
        },
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Checkpoint (folder or Hub id) to fine-tune: supervised, MAE, SimCLR, DINO, BYOL or SimSiam; its "
            "architecture is kept (see model_config)."
        },
    )
    linear_probe: bool = field(default=False, metadata={"help": "Freeze the backbone; train the head only."})
    label_fraction: float = field(
        default=1.0, metadata={"help": "Stratified, seeded fraction of training labels."}
    )
    label_count: int | None = field(
        default=None,
        metadata={
            "help": "Train on exactly this many labelled images, the same number of each class (seeded; a "
            "multiple of the number of classes), drawn after label_fraction."
        },
    )
    target_column: str = field(default="log10_m_a", metadata={"help": "Regression target column."})


def finetune(args: Sequence[str] | None = None) -> dict[str, float]:
    """Fine-tune (or train from scratch) a classifier or regressor and evaluate it on the test split.

    Args:
        args: command-line arguments (`--config run.yaml --dataset DIR --output_dir OUT ...`; default
            `sys.argv[1:]`) of `FinetuneArguments`, `DataArguments`, `LensingTrainingArguments` and `HPOArguments`.

    Returns:
        The final metrics (`eval_*` of the validation split, `test_*` of the test split), as in metrics.json.
    """
    recipe_args, data_args, training_args, hpo_args = parse_recipe_args(
        (FinetuneArguments, DataArguments, LensingTrainingArguments, HPOArguments), args
    )
    publish_to = start_run(training_args)
    regression = recipe_args.task == "regression"

    splits = load_splits(data_args, seed=training_args.seed)
    class_names = class_names_of(splits[data_args.train_split])
    if regression:
        splits = {
            name: finite_target_rows(split, recipe_args.target_column) for name, split in splits.items()
        }
    train = labelled_subset(
        splits[data_args.train_split],
        recipe_args.label_fraction,
        training_args.seed,
        recipe_args.label_count,
    )
    eval_set, test_set = splits.get(data_args.eval_split), splits.get(data_args.test_split)
    num_channels, height, _ = train.features["pixel_values"].shape
    processor = make_image_processor(data_args, num_channels, height)
    target_mean, target_std = (
        target_statistics(train, recipe_args.target_column) if regression else (None, None)
    )
    overrides = as_dict(recipe_args.model_config)
    if recipe_args.init_from is None:
        overrides = {"image_size": processor.size, "num_channels": num_channels, **overrides}

    def make_model(search_overrides: dict) -> PreTrainedModel:
        model = build_model(
            recipe_args.task,
            model_type=None if recipe_args.init_from else recipe_args.model_type,
            checkpoint=recipe_args.init_from,
            config_overrides={**overrides, **search_overrides},
            class_names=class_names,
            target_mean=[target_mean] if regression else None,
            target_std=[target_std] if regression else None,
        )
        if recipe_args.linear_probe:
            freeze_backbone(model)
        return model

    def new_trainer(arguments: LensingTrainingArguments, model) -> LensingTrainer:
        return make_trainer(
            model,
            arguments,
            data_args,
            processor,
            train,
            eval_set,
            label_column=recipe_args.target_column if regression else "label",
            compute_metrics=make_compute_metrics(recipe_args.task, class_names, [recipe_args.target_column]),
        )

    model = make_model({})
    trainable, total = model.num_parameters(only_trainable=True), model.num_parameters()
    logger.info(
        "%s: %d train rows, %d trainable / %d parameters", type(model).__name__, len(train), trainable, total
    )
    trainer = new_trainer(training_args, model)
    if hpo_args.config is not None:  # an `hpo:` section: Optuna search first, then train with the best values
        initial = copy.deepcopy(model)  # trials of training settings start from copies of the same weights
        searches_model = any(name.startswith(MODEL_PREFIX) for name in hpo_args.config.search_space)
        best_run = run_hyperparameter_search(trainer, hpo_args.config, make_model if searches_model else None)
        training_args, best_overrides = best_run_arguments(training_args, best_run)
        trainer = new_trainer(training_args, make_model(best_overrides) if best_overrides else initial)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    metrics, plots = trainer.evaluate() if eval_set is not None else {}, {}
    if test_set is not None:
        test_input = on_training_device(test_set, data_args, training_args, processor)
        predictions, labels, _ = predict_arrays(trainer, test_input, metric_key_prefix=data_args.test_split)
        if trainer.is_world_process_zero():
            output_dir, split, target = (
                training_args.output_dir,
                data_args.test_split,
                recipe_args.target_column,
            )
            report = report_predictions(
                recipe_args.task, predictions, labels, class_names, output_dir, split, target
            )
            metrics, plots = {**metrics, **report.metrics}, report.plots
    finish_run(
        trainer,
        (recipe_args, data_args, training_args),
        task="regression" if regression else "image-classification",
        metrics=metrics,
        image_processor=processor,
        plots=plots,
        headline=(f"{data_args.test_split}_{'mean_absolute_error' if regression else 'auc_macro'}",) * 2,
        dataset=data_args.dataset,
        dataset_split=data_args.test_split,
        description=f"Fine-tuned ({recipe_args.task}) on `{data_args.dataset}`"
        + (f" from `{recipe_args.init_from}`" if recipe_args.init_from else " from scratch")
        + (" as a linear probe" if recipe_args.linear_probe else "")
        + (f" with {recipe_args.label_fraction:.0%} of the labels" if recipe_args.label_fraction < 1 else "")
        + (f" with {recipe_args.label_count} labelled images" if recipe_args.label_count is not None else "")
        + ".",
        repo_id=publish_to,
        base_model=hub_id_or_none(recipe_args.init_from),
    )
    return metrics
