"""Pre-train a masked autoencoder (MAE) on lensing images, labels unused.

    python recipes/pretrain_mae.py --config recipes/configs/tiny_mae.yaml --dataset DIR --output_dir outputs/mae
    python recipes/pretrain_mae.py --config recipes/configs/mae_model_ii.yaml --simulate model_ii --output_dir ...

Data: a built dataset folder or Hub/local repo id (`--dataset`), or images simulated on the fly
(`--simulate PRESET`, an endless stream: set `max_steps`). Reconstructions of a fixed validation batch
are drawn at every evaluation (`plots/reconstructions/`, and TensorBoard when it is a tracker). The MAE's
encoder fine-tunes with `recipes/finetune.py --init_from OUTPUT_DIR`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from hf_deeplense.data import LensingCollator, with_row_index
from hf_deeplense.evaluation.reconstruction import write_mae_reconstructions
from hf_deeplense.training import (
    EvalHistoryJsonCallback,
    ImageLoggingCallback,
    LensingTrainingArguments,
    parse_recipe_args,
)
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
    make_augment,
    make_image_processor,
    pretraining_data,
)
from hf_deeplense.training.modeling import build_pretraining_model, num_parameters
from hf_deeplense.training.trainer import LensingTrainer, end_run, seed_everything

logger = logging.getLogger("pretrain_mae")


@dataclass
class MAEArguments:
    model_type: str = field(default="deeplense_mae", metadata={"help": "Registered MAE model type."})
    model_config: dict | str | None = field(
        default=None,
        metadata={"help": "MAE config fields (mapping or JSON): sizes, mask_ratio, norm_pix_loss."},
    )
    num_reconstructions: int = field(
        default=6, metadata={"help": "Validation images in the reconstruction figure."}
    )


def main(args=None) -> dict[str, float]:
    mae_args, data_args, training_args = parse_recipe_args(
        (MAEArguments, DataArguments, LensingTrainingArguments), args
    )
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING)
    seed_everything(training_args)
    publish_to = take_push_to_hub(training_args)

    train, eval_set, num_channels, image_size, source = pretraining_data(data_args, seed=training_args.seed)
    processor = make_image_processor(data_args, num_channels, image_size)
    model = build_pretraining_model(
        mae_args.model_type,
        {"image_size": processor.size, "num_channels": num_channels, **as_dict(mae_args.model_config)},
    )
    logger.info("%s with %d parameters", type(model).__name__, num_parameters(model))

    eval_collator = LensingCollator(processor, label_column=None)
    callbacks = [EvalHistoryJsonCallback()]
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
    trainer = LensingTrainer(
        model=model,
        args=training_args,
        train_dataset=with_row_index(train),
        eval_dataset=eval_set,
        data_collator=LensingCollator(processor, None, make_augment(data_args), seed=training_args.seed),
        eval_data_collator=eval_collator,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    metrics, plots = {}, {}
    if eval_set is not None:
        metrics.update(trainer.evaluate())
        if trainer.is_world_process_zero():
            path = Path(training_args.output_dir) / "plots" / "mae_reconstructions.png"
            plots["MAE reconstructions"] = write_mae_reconstructions(
                trainer.model, fixed_batch["pixel_values"], path
            )
    artifacts = write_run_artifacts(
        trainer,
        task="pretraining",
        metrics=metrics,
        image_processor=processor,
        plots=plots,
        run_config=arguments_to_dict(mae_args, data_args, training_args),
        **card_dataset_fields(data_args.dataset),
        description=f"Masked-autoencoder pre-training on {source}.",
        repo_id=publish_to,
    )
    if artifacts is not None:
        if "eval_loss" in metrics:
            print(f"eval reconstruction loss: {metrics['eval_loss']:.4f}")
        announce_and_publish(artifacts.output_dir, publish_to, token=training_args.hub_token)
    end_run(trainer)  # destroy the process group while Python is fully alive
    return metrics


if __name__ == "__main__":
    main()
