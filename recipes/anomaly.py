"""Anomaly detection: an MAE trained on the images of one class only (`no_sub`: no substructure); its
reconstruction error (`anomaly_score`) flags the other classes.

    python recipes/anomaly.py --config recipes/configs/tiny_anomaly.yaml --dataset DIR --output_dir outputs/anomaly

Training and validation use `normal_class` only; the test split keeps every class and is scored with the
deterministic `anomaly_score` (every patch reconstructed once from the others). Reported: the AUC of the
score for `normal_class` against all other classes, against each class, and their macro average, with
score histograms, ROC curves and reconstructions in `plots/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from hf_deeplense.data import LensingCollator, with_row_index
from hf_deeplense.evaluation.inference import anomaly_scores
from hf_deeplense.evaluation.reconstruction import write_mae_reconstructions
from hf_deeplense.evaluation.report import report_anomaly
from hf_deeplense.training import EvalHistoryJsonCallback, LensingTrainingArguments, parse_recipe_args
from hf_deeplense.training.artifacts import (
    announce_and_publish,
    arguments_to_dict,
    card_dataset_fields,
    take_push_to_hub,
    write_run_artifacts,
)
from hf_deeplense.training.data import (
    DataArguments,
    as_dict,
    class_names_of,
    keep_classes,
    load_splits,
    make_augment,
    make_image_processor,
)
from hf_deeplense.training.modeling import build_pretraining_model
from hf_deeplense.training.trainer import LensingTrainer, end_run, seed_everything

logger = logging.getLogger("anomaly")


@dataclass
class AnomalyArguments:
    normal_class: str = field(default="no_sub", metadata={"help": "The only class the MAE is trained on."})
    model_type: str = field(default="deeplense_mae", metadata={"help": "Registered MAE model type."})
    model_config: dict | str | None = field(
        default=None, metadata={"help": "MAE config fields (mapping or JSON)."}
    )


def main(args=None) -> dict[str, float]:
    anomaly_args, data_args, training_args = parse_recipe_args(
        (AnomalyArguments, DataArguments, LensingTrainingArguments), args
    )
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING)
    if data_args.classes or data_args.simulate:
        raise ValueError("anomaly.py takes --normal_class and a --dataset; not --classes or --simulate")
    seed_everything(training_args)
    publish_to = take_push_to_hub(training_args)
    training_args.prediction_loss_only = True

    splits = load_splits(data_args, seed=training_args.seed)
    class_names = class_names_of(splits[data_args.train_split])
    train = keep_classes(splits[data_args.train_split], [anomaly_args.normal_class])
    eval_set = splits.get(data_args.eval_split)
    eval_set = keep_classes(eval_set, [anomaly_args.normal_class]) if eval_set is not None else None
    test_set = splits[data_args.test_split]
    num_channels, image_size, _ = train.features["pixel_values"].shape
    processor = make_image_processor(data_args, num_channels, image_size)
    model = build_pretraining_model(
        anomaly_args.model_type,
        {"image_size": processor.size, "num_channels": num_channels, **as_dict(anomaly_args.model_config)},
    )
    logger.info("training on %d %s images", len(train), anomaly_args.normal_class)

    eval_collator = LensingCollator(processor, label_column="label")
    trainer = LensingTrainer(
        model=model,
        args=training_args,
        train_dataset=with_row_index(train),
        eval_dataset=eval_set,
        data_collator=LensingCollator(processor, None, make_augment(data_args), seed=training_args.seed),
        eval_data_collator=LensingCollator(processor, label_column=None),
        callbacks=[EvalHistoryJsonCallback()],
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    metrics, plots = ({**trainer.evaluate()} if eval_set is not None else {}), {}
    if trainer.is_world_process_zero():
        scores, labels = anomaly_scores(
            trainer.model,
            test_set,
            eval_collator,
            training_args.per_device_eval_batch_size,
            training_args.seed,
        )
        report = report_anomaly(
            scores,
            labels,
            class_names,
            anomaly_args.normal_class,
            training_args.output_dir,
            data_args.test_split,
        )
        metrics.update(report.metrics)
        plots = {name.replace("_", " "): path for name, path in report.plots.items()}
        first = eval_collator([test_set[i] for i in range(min(6, len(test_set)))])["pixel_values"]
        plots["MAE reconstructions"] = write_mae_reconstructions(
            trainer.model, first, Path(training_args.output_dir) / "plots" / "mae_reconstructions.png"
        )
    artifacts = write_run_artifacts(
        trainer,
        task="pretraining",
        metrics=metrics,
        image_processor=processor,
        plots=plots,
        run_config=arguments_to_dict(anomaly_args, data_args, training_args),
        **card_dataset_fields(data_args.dataset),
        dataset_split=data_args.test_split,
        description=f"MAE trained on `{anomaly_args.normal_class}` images of `{data_args.dataset}` only; its "
        "reconstruction error (`model.anomaly_score`) is an anomaly score for the other classes.",
        repo_id=publish_to,
    )
    if artifacts is not None:
        key = f"{data_args.test_split}_anomaly_auc"
        print(f"{key}: {metrics[key]:.4f}")
        announce_and_publish(artifacts.output_dir, publish_to, token=training_args.hub_token)
    end_run(trainer)  # destroy the process group while Python is fully alive
    return metrics


if __name__ == "__main__":
    main()
