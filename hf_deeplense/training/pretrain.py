"""Self-supervised runs, as `recipes/pretrain_mae.py`, `recipes/pretrain_simclr.py` and `recipes/anomaly.py`.

- `pretrain_mae`: a masked autoencoder on lensing images (labels unused), from a dataset (`--dataset`) or images
  simulated on the fly (`--simulate PRESET`, an endless stream: set `max_steps`); reconstructions of a fixed
  validation batch are drawn at every evaluation (`plots/reconstructions/`, and TensorBoard when it is a tracker).
  The encoder fine-tunes with `finetune --init_from OUTPUT_DIR`.
- `pretrain_ssl`: self-supervised pre-training of any registered backbone (`model_config.backbone_config`) by SimCLR,
  DINO, BYOL or SimSiam (`model_type`, SimCLR by default); the evaluation is the method's loss on held-out views.
  DINO's teacher and BYOL's target follow their online network through `MomentumEncoderCallback`;
  `num_local_crops` / `global_crop_scale` give DINO's multi-crop views.
- `anomaly`: an MAE trained on the `normal_class` images only; its reconstruction error
  (`model.anomaly_score`) scores the test split, reported as ROC AUCs against the other classes.

`pretrain_mae` and `pretrain_ssl` also take `EncoderEvalArguments`: `--knn_eval true` ends the run with a kNN
classification of the frozen encoder's embeddings (`knn_<split>_*` in metrics.json) and their t-SNE map
(`evaluation.evaluate_encoder`). `hf_deeplense.study.evaluate_pretrained` does the same on a saved checkpoint.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers import PreTrainedModel

from ..data import LensingCollator, MultiCropTransform
from ..data.selection import class_names_of, keep_classes
from ..evaluation import evaluate_encoder
from ..evaluation.inference import anomaly_scores
from ..evaluation.reconstruction import write_mae_reconstructions
from ..evaluation.report import report_anomaly
from .arguments import LensingTrainingArguments, as_dict, parse_recipe_args
from .artifacts import finish_run
from .callbacks import ImageLoggingCallback, MomentumEncoderCallback
from .data import DataArguments, load_splits, make_image_processor, pretraining_data
from .modeling import build_pretraining_model
from .trainer import make_trainer, start_run

__all__ = [
    "AnomalyArguments",
    "EncoderEvalArguments",
    "MAEArguments",
    "SSLArguments",
    "anomaly",
    "pretrain_mae",
    "pretrain_ssl",
]

logger = logging.getLogger(__name__)


@dataclass
class MAEArguments:
    model_type: str = field(default="deeplense_mae", metadata={"help": "Registered MAE model type."})
    model_config: dict | str | None = field(
        default=None,
        metadata={"help": "MAE config fields (mapping or JSON): sizes, mask_ratio, norm_pix_loss."},
    )
    num_reconstructions: int = field(
        default=6, metadata={"help": "Images in the reconstruction figure (validation; anomaly: test)."}
    )


@dataclass
class SSLArguments:
    model_type: str = field(
        default="deeplense_simclr",
        metadata={
            "help": "Self-supervised model type: deeplense_simclr, deeplense_dino, deeplense_byol, deeplense_simsiam."
        },
    )
    model_config: dict | str | None = field(
        default=None,
        metadata={
            "help": "Model config (mapping or JSON): backbone_config and the method's fields (projection_dim, ...)."
        },
    )
    num_local_crops: int = field(
        default=0, metadata={"help": "Multi-crop (DINO): local crops per image besides the two global crops."}
    )
    global_crop_scale: list[float] | None = field(
        default=None,
        metadata={
            "help": "Multi-crop: (min, max) fraction of the image area of a global crop, e.g. 0.4 1.0. Unset with "
            "num_local_crops 0: two augmented views of the whole image (SimCLR)."
        },
    )
    local_crop_scale: list[float] = field(
        default_factory=lambda: [0.1, 0.4],
        metadata={"help": "Multi-crop: (min, max) fraction of the image area of a local crop."},
    )


@dataclass
class EncoderEvalArguments:
    knn_eval: bool = field(
        default=False,
        metadata={
            "help": "At the end of the run, classify the knn_split images by a weighted kNN vote (DINO's protocol) "
            "of the frozen encoder's embeddings, the train split as memory bank: knn_<split>_* metrics in "
            "metrics.json and a t-SNE map in plots/. Needs --dataset."
        },
    )
    knn_k: int = field(default=20, metadata={"help": "Neighbours of the kNN vote."})
    knn_temperature: float = field(default=0.07, metadata={"help": "Temperature of the kNN vote weights."})
    knn_split: str | None = field(
        default=None,
        metadata={"help": "Split the kNN classifies; default: the test split (else the eval split)."},
    )
    knn_plot: bool = field(default=True, metadata={"help": "Draw the t-SNE map of the knn_split embeddings."})


@dataclass
class AnomalyArguments(MAEArguments):
    normal_class: str = field(default="no_sub", metadata={"help": "The only class the MAE is trained on."})


def _mae(model_args: MAEArguments, processor, num_channels: int) -> PreTrainedModel:
    config = {"image_size": processor.size, "num_channels": num_channels, **as_dict(model_args.model_config)}
    model = build_pretraining_model(model_args.model_type, config)
    logger.info("%s with %d parameters", type(model).__name__, model.num_parameters())
    return model


def _check_knn_eval(knn_args: EncoderEvalArguments, data_args: DataArguments) -> None:
    """Before training: a kNN evaluation needs labelled splits of a dataset (not a simulated stream)."""
    if knn_args.knn_eval and data_args.dataset is None:
        raise ValueError(
            "--knn_eval needs --dataset (a memory bank of labelled training images), not --simulate"
        )


def _finish_pretraining(trainer, arguments, processor, metrics, plots, **artifact_fields) -> None:
    """The end of `pretrain_mae` and `pretrain_ssl`: the kNN evaluation of the trained encoder when `knn_eval` is
    on (main process; on the run's splits, classes and sample limits applied, with its image processor), then
    `finish_run` with `arguments` = (model arguments, data, training, `EncoderEvalArguments`)."""
    _, data_args, training_args, knn_args = arguments
    if knn_args.knn_eval and trainer.is_world_process_zero():
        splits = load_splits(data_args, seed=training_args.seed)
        split = knn_args.knn_split or (
            data_args.test_split if data_args.test_split in splits else data_args.eval_split
        )
        knn = evaluate_encoder(
            trainer.model,
            splits,
            processor=processor,
            train_split=data_args.train_split,
            eval_split=split,
            k=knn_args.knn_k,
            temperature=knn_args.knn_temperature,
            output_dir=training_args.output_dir,
            plot=knn_args.knn_plot,
            batch_size=training_args.per_device_eval_batch_size,
            seed=training_args.seed,
            progress=not training_args.disable_tqdm,
        )
        metrics.update(knn.metrics)
        plots.update(knn.plots)
    finish_run(
        trainer,
        arguments,
        task="pretraining",
        metrics=metrics,
        image_processor=processor,
        plots=plots,
        dataset=data_args.dataset,
        **artifact_fields,
    )


def pretrain_mae(args: Sequence[str] | None = None) -> dict[str, float]:
    """Pre-train a masked autoencoder. `args`: the command line of `MAEArguments`, `DataArguments`, `LensingTrainingArguments`
    (default `sys.argv[1:]`). Returns the final metrics (`eval_loss`: the reconstruction loss of the validation images)."""
    mae_args, data_args, training_args, knn_args = parse_recipe_args(
        (MAEArguments, DataArguments, LensingTrainingArguments, EncoderEvalArguments), args
    )
    _check_knn_eval(knn_args, data_args)
    publish_to = start_run(training_args)
    train, eval_set, num_channels, image_size, source = pretraining_data(data_args, seed=training_args.seed)
    processor = make_image_processor(data_args, num_channels, image_size)
    model = _mae(mae_args, processor, num_channels)

    eval_collator = LensingCollator(processor, label_column=None)
    callbacks, fixed_batch = [], None
    if eval_set is not None and len(eval_set):
        fixed_batch = eval_collator(
            [eval_set[i] for i in range(min(mae_args.num_reconstructions, len(eval_set)))]
        )
        callbacks.append(
            ImageLoggingCallback(
                lambda model, path: write_mae_reconstructions(model, fixed_batch["pixel_values"], path),
                subdir="plots/reconstructions",
                name="mae",
            )
        )
    trainer = make_trainer(model, training_args, data_args, processor, train, eval_set, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    metrics, plots = (trainer.evaluate() if eval_set is not None else {}), {}
    if fixed_batch is not None and trainer.is_world_process_zero():
        path = Path(training_args.output_dir) / "plots" / "mae_reconstructions.png"
        plots["MAE reconstructions"] = write_mae_reconstructions(
            trainer.model, fixed_batch["pixel_values"], path
        )
    _finish_pretraining(
        trainer,
        (mae_args, data_args, training_args, knn_args),
        processor,
        metrics,
        plots,
        headline=("eval reconstruction loss", "eval_loss"),
        description=f"Masked-autoencoder pre-training on {source}.",
        repo_id=publish_to,
    )
    return metrics


def pretrain_ssl(args: Sequence[str] | None = None) -> dict[str, float]:
    """Self-supervised pre-training of a backbone (SimCLR, DINO, BYOL or SimSiam). `args`: the command line of
    `SSLArguments`, `DataArguments`, `LensingTrainingArguments`, `EncoderEvalArguments` (default `sys.argv[1:]`).
    Returns the final metrics (`eval_loss`: the method's loss on held-out views; `knn_*` with `--knn_eval true`)."""
    ssl_args, data_args, training_args, knn_args = parse_recipe_args(
        (SSLArguments, DataArguments, LensingTrainingArguments, EncoderEvalArguments), args
    )
    _check_knn_eval(knn_args, data_args)
    publish_to = start_run(training_args)
    training_args.prediction_loss_only = True  # the evaluation is the loss of held-out views
    train, eval_set, num_channels, image_size, source = pretraining_data(data_args, seed=training_args.seed)
    processor = make_image_processor(data_args, num_channels, image_size)
    model_config = as_dict(ssl_args.model_config)
    model_config["backbone_config"] = {
        "image_size": processor.size,
        "num_channels": num_channels,
        **as_dict(model_config.get("backbone_config")),
    }
    model = build_pretraining_model(ssl_args.model_type, model_config)
    backbone = model.config.backbone_config.model_type
    method = type(model).__name__.removeprefix("DeepLense").removesuffix("Model")
    logger.info("%s (backbone %s) with %d parameters", type(model).__name__, backbone, model.num_parameters())

    # The views are needed whatever `augment` says; the same augmentation draws held-out eval views.
    augment = data_args.lensing_augment()
    if ssl_args.num_local_crops and "local_pixel_values" not in inspect.signature(model.forward).parameters:
        raise ValueError(
            f"num_local_crops: {type(model).__name__} takes two views only (local crops are DINO's)"
        )
    if ssl_args.num_local_crops or ssl_args.global_crop_scale is not None:
        crop_scale = ssl_args.global_crop_scale or (0.4, 1.0)
        views = {
            "multi_crop": MultiCropTransform(
                ssl_args.num_local_crops, crop_scale, ssl_args.local_crop_scale, augment
            )
        }
    else:
        views = {"augment": augment, "two_views": True}
    callbacks = [MomentumEncoderCallback()] if hasattr(model, "momentum_pairs") else []
    trainer = make_trainer(
        model, training_args, data_args, processor, train, eval_set, views=views, callbacks=callbacks
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    metrics, plots = (trainer.evaluate() if eval_set is not None else {}), {}
    _finish_pretraining(
        trainer,
        (ssl_args, data_args, training_args, knn_args),
        processor,
        metrics,
        plots,
        headline=(f"eval {method} loss", "eval_loss"),
        description=f"{method} pre-training ({backbone} backbone) on {source}.",
        repo_id=publish_to,
    )
    return metrics


def anomaly(args: Sequence[str] | None = None) -> dict[str, float]:
    """Train an MAE on the `normal_class` images only and score the test split by reconstruction error. `args`: the command line of `AnomalyArguments`, `DataArguments`, `LensingTrainingArguments`
    (default `sys.argv[1:]`). Returns the final metrics (`test_anomaly_auc` and one AUC per other class)."""
    anomaly_args, data_args, training_args = parse_recipe_args(
        (AnomalyArguments, DataArguments, LensingTrainingArguments), args
    )
    if data_args.classes or data_args.simulate:
        raise ValueError("anomaly takes --normal_class and a --dataset; not --classes or --simulate")
    publish_to = start_run(training_args)
    training_args.prediction_loss_only = True
    splits = load_splits(data_args, seed=training_args.seed)
    class_names = class_names_of(splits[data_args.train_split])
    train = keep_classes(splits[data_args.train_split], [anomaly_args.normal_class])
    eval_set = splits.get(data_args.eval_split)
    eval_set = keep_classes(eval_set, [anomaly_args.normal_class]) if eval_set is not None else None
    test_set = splits[data_args.test_split]
    num_channels, image_size, _ = train.features["pixel_values"].shape
    processor = make_image_processor(data_args, num_channels, image_size)
    model = _mae(anomaly_args, processor, num_channels)
    logger.info("training on %d %s images", len(train), anomaly_args.normal_class)
    trainer = make_trainer(model, training_args, data_args, processor, train, eval_set)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    metrics, plots = (trainer.evaluate() if eval_set is not None else {}), {}
    if trainer.is_world_process_zero():
        test_collator = LensingCollator(processor, label_column="label")
        scores, labels = anomaly_scores(
            trainer.model,
            test_set,
            test_collator,
            training_args.per_device_eval_batch_size,
            training_args.seed,
        )
        output_dir, split = training_args.output_dir, data_args.test_split
        report = report_anomaly(scores, labels, class_names, anomaly_args.normal_class, output_dir, split)
        metrics.update(report.metrics)
        plots = report.plots
        count = min(anomaly_args.num_reconstructions, len(test_set))
        first = test_collator([test_set[i] for i in range(count)])["pixel_values"]
        plots["MAE reconstructions"] = write_mae_reconstructions(
            trainer.model, first, Path(output_dir) / "plots" / "mae_reconstructions.png"
        )
    finish_run(
        trainer,
        (anomaly_args, data_args, training_args),
        task="pretraining",
        metrics=metrics,
        image_processor=processor,
        plots=plots,
        headline=(f"{data_args.test_split}_anomaly_auc",) * 2,
        dataset=data_args.dataset,
        dataset_split=data_args.test_split,
        description=f"MAE trained on `{anomaly_args.normal_class}` images of `{data_args.dataset}` only; its "
        "reconstruction error (`model.anomaly_score`) is an anomaly score for the other classes.",
        repo_id=publish_to,
    )
    return metrics
