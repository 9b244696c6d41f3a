"""Pre-train a SimCLR model (NT-Xent on two augmented views of each image) with any DeepLense backbone.

    python recipes/pretrain_simclr.py --config recipes/configs/tiny_simclr.yaml --dataset DIR --output_dir outputs/simclr

The backbone is the `backbone_config` of `model_config` (`model_type: deeplense_cnn`, `deeplense_vit`,
`deeplense_hybrid`, ...). Views: `LensingAugment` (D4 rotations/flips, `max_shift`, `noise_std`), drawn
independently for each view. Data: `--dataset` (folder or repo id) or `--simulate PRESET` (set
`max_steps`). Fine-tune the backbone with `recipes/finetune.py --init_from OUTPUT_DIR` (add
`--linear_probe` for a frozen backbone).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from transformers import AutoConfig, AutoModel

from hf_deeplense.data import LensingAugment, LensingCollator, with_row_index
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
    make_image_processor,
    pretraining_data,
)
from hf_deeplense.training.modeling import num_parameters
from hf_deeplense.training.trainer import LensingTrainer, end_run, seed_everything

logger = logging.getLogger("pretrain_simclr")


@dataclass
class SimCLRArguments:
    model_type: str = field(default="deeplense_simclr", metadata={"help": "Registered SimCLR model type."})
    model_config: dict | str | None = field(
        default=None,
        metadata={
            "help": "SimCLR config (mapping or JSON): backbone_config, projection_dim, temperature, ..."
        },
    )


def main(args=None) -> dict[str, float]:
    simclr_args, data_args, training_args = parse_recipe_args(
        (SimCLRArguments, DataArguments, LensingTrainingArguments), args
    )
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING)
    seed_everything(training_args)
    publish_to = take_push_to_hub(training_args)
    training_args.prediction_loss_only = True  # the evaluation is the NT-Xent loss of held-out views

    train, eval_set, num_channels, image_size, source = pretraining_data(data_args, seed=training_args.seed)
    processor = make_image_processor(data_args, num_channels, image_size)
    model_config = as_dict(simclr_args.model_config)
    model_config["backbone_config"] = {
        "image_size": processor.size,
        "num_channels": num_channels,
        **as_dict(model_config.get("backbone_config")),
    }
    model = AutoModel.from_config(AutoConfig.for_model(simclr_args.model_type, **model_config))
    logger.info(
        "%s (backbone %s) with %d parameters",
        type(model).__name__,
        model.config.backbone_config.model_type,
        num_parameters(model),
    )

    # SimCLR needs its views whatever `augment` says; the same augmentation draws held-out eval views.
    augment = LensingAugment(max_shift=data_args.max_shift, noise_std=data_args.noise_std)
    collator = LensingCollator(processor, None, augment, two_views=True, seed=training_args.seed)
    trainer = LensingTrainer(
        model=model,
        args=training_args,
        train_dataset=with_row_index(train),
        eval_dataset=with_row_index(eval_set),
        data_collator=collator,
        callbacks=[EvalHistoryJsonCallback()],
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    metrics = trainer.evaluate() if eval_set is not None else {}
    artifacts = write_run_artifacts(
        trainer,
        task="pretraining",
        metrics=metrics,
        image_processor=processor,
        run_config=arguments_to_dict(simclr_args, data_args, training_args),
        **card_dataset_fields(data_args.dataset),
        description=f"SimCLR pre-training ({model.config.backbone_config.model_type} backbone) on {source}.",
        repo_id=publish_to,
    )
    if artifacts is not None:
        if "eval_loss" in metrics:
            print(f"eval NT-Xent loss: {metrics['eval_loss']:.4f}")
        announce_and_publish(artifacts.output_dir, publish_to, token=training_args.hub_token)
    end_run(trainer)  # destroy the process group while Python is fully alive
    return metrics


if __name__ == "__main__":
    main()
