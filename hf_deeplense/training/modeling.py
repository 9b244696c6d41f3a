"""Building the model of a run: from scratch (a registered `model_type` + config overrides) or from a
checkpoint (fine-tuning a supervised, MAE or self-supervised checkpoint), and freezing the backbone for a linear
probe. No model code here: everything goes through the Auto classes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn
from transformers import (
    CONFIG_MAPPING,
    AutoConfig,
    AutoModelForPreTraining,
    PreTrainedConfig,
    PreTrainedModel,
)

from ..models import TASK_AUTO_CLASSES
from ..models.utils import freeze

__all__ = [
    "DOWNSTREAM_MODEL_TYPE",
    "FINETUNE_CONFIG_FIELDS",
    "build_model",
    "build_pretraining_model",
    "class_label_fields",
    "freeze_backbone",
]

# Pre-training architectures without heads of their own, and the architecture whose heads load their encoder.
# SimCLR, DINO, BYOL and SimSiam have heads of their own that keep the encoder (`backbone.*`).
DOWNSTREAM_MODEL_TYPE = {"deeplense_mae": "deeplense_vit"}

# Config fields a fine-tuning run may set on a checkpoint's config (`build_model(checkpoint=...)`): they change
# no parameter shape of the pre-trained part. Dropouts (ViT, hybrid, equivariant, MAE encoder; CNN drop path)
# and the task head (classes, regression targets and their statistics, lens finder class weights). Every other
# field (hidden_size, num_hidden_layers, patch_size, image_size, num_channels, architecture, stage_channels,
# backbone_config.<field>, ...) comes from the checkpoint.
FINETUNE_CONFIG_FIELDS = frozenset(
    {
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "classifier_dropout_prob",
        "drop_path_rate",
        "num_labels",
        "id2label",
        "label2id",
        "problem_type",
        "num_targets",
        "target_mean",
        "target_std",
        "class_weights",
    }
)


def class_label_fields(class_names: Sequence[str]) -> dict[str, Any]:
    """`num_labels`, `id2label` and `label2id` of a classifier's config."""
    return {
        "num_labels": len(class_names),
        "id2label": dict(enumerate(class_names)),
        "label2id": {name: index for index, name in enumerate(class_names)},
    }


def build_model(
    task: str,
    *,
    model_type: str | None = None,
    checkpoint: str | None = None,
    config_overrides: dict[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
    target_mean: float | list[float] | None = None,
    target_std: float | list[float] | None = None,
    num_targets: int = 1,
) -> PreTrainedModel:
    """A classification or regression model, new or from a checkpoint.

    Args:
        task: `"classification"` or `"regression"`.
        model_type: a registered `model_type` (`deeplense_vit`, `deeplense_cnn`, ...) for a new model.
        checkpoint: a saved model (folder or Hub id) to fine-tune instead: a supervised checkpoint (its
            head is replaced when the classes differ), an MAE (its encoder loads into the ViT heads)
            or a SimCLR, DINO, BYOL or SimSiam model (its `backbone` is kept: DINO's teacher, BYOL's online
            network).
        config_overrides: config fields (`image_size`, `hidden_size`, dropout, ...). With `checkpoint`, only
            `FINETUNE_CONFIG_FIELDS` may differ from the checkpoint's config (for SimCLR, nested under
            `backbone_config` too); the architecture is the checkpoint's.
        class_names: the classes (classification).
        target_mean, target_std: statistics of the regression targets in the training set (the loss
            standardises targets with them).
        num_targets: regression targets.

    Raises:
        ValueError: with `checkpoint`, when `config_overrides` sets a field outside `FINETUNE_CONFIG_FIELDS` to a
            value other than the checkpoint's, or a field the checkpoint's config does not have.
    """
    if (model_type is None) == (checkpoint is None):
        raise ValueError("give exactly one of model_type (a new model) and checkpoint (fine-tuning)")
    if task == "classification":
        if not class_names:
            raise ValueError("classification needs class_names")
        head_kwargs = class_label_fields(class_names)
    elif task == "regression":
        head_kwargs = {"num_targets": num_targets, "target_mean": target_mean, "target_std": target_std}
        head_kwargs = {key: value for key, value in head_kwargs.items() if value is not None}
    else:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    auto_class = TASK_AUTO_CLASSES[task]
    if model_type is not None:
        return auto_class.from_config(
            AutoConfig.for_model(model_type, **{**(config_overrides or {}), **head_kwargs})
        )
    config = AutoConfig.from_pretrained(checkpoint)
    if config.model_type in DOWNSTREAM_MODEL_TYPE:  # e.g. an MAE: its encoder loads into the ViT heads
        config = CONFIG_MAPPING[DOWNSTREAM_MODEL_TYPE[config.model_type]].from_pretrained(checkpoint)
    fields = _merge_finetune_overrides(config, config_overrides or {}, f"checkpoint {checkpoint}")
    config = type(config).from_dict({**fields, **head_kwargs})  # runs the config's validation
    # ignore_mismatched_sizes: a supervised checkpoint's head is replaced when the classes differ
    return auto_class.from_pretrained(checkpoint, config=config, ignore_mismatched_sizes=True)


def _plain(value: Any) -> Any:
    """Tuples as lists, int dict keys as strings: values compared as they would be saved in config.json."""
    return json.loads(json.dumps(value, default=str))


def _merge_finetune_overrides(
    config: PreTrainedConfig, overrides: Mapping[str, Any], source: str, prefix: str = ""
) -> dict[str, Any]:
    """`config.to_dict()` with `overrides` applied, after checking that they leave the architecture alone."""
    fields = config.to_dict()
    for name, value in overrides.items():
        if not hasattr(config, name):
            raise ValueError(
                f"model_config field {prefix}{name} is not a field of the {config.model_type} config of {source}"
            )
        current = getattr(config, name)
        if isinstance(current, PreTrainedConfig) and isinstance(value, Mapping):  # SimCLR's backbone_config
            fields[name] = _merge_finetune_overrides(current, value, source, prefix=f"{prefix}{name}.")
            continue
        if name not in FINETUNE_CONFIG_FIELDS and _plain(value) != _plain(current):
            raise ValueError(
                f"model_config sets {prefix}{name}={value!r}, but {source} has {prefix}{name}={current!r}: "
                "the architecture of a checkpoint cannot change when fine-tuning from it (drop the field). "
                f"Fields that may change: {', '.join(sorted(FINETUNE_CONFIG_FIELDS))}"
            )
        fields[name] = value
    return fields


def build_pretraining_model(
    model_type: str, config_overrides: dict[str, Any] | None = None
) -> PreTrainedModel:
    """A new self-supervised model (`deeplense_mae`, `deeplense_simclr`) through `AutoModelForPreTraining`."""
    return AutoModelForPreTraining.from_config(AutoConfig.for_model(model_type, **(config_overrides or {})))


def freeze_backbone(model: PreTrainedModel) -> nn.Module:
    """Linear probe: `freeze` the base model (`model.base_model`) while the head trains.

    Returns:
        The frozen backbone.

    Raises:
        ValueError: if nothing would remain trainable (the model has no separate head).
    """
    backbone = model.base_model
    if backbone is model:
        raise ValueError(f"{type(model).__name__} has no head separate from its base model to probe")
    freeze(backbone)
    if not any(parameter.requires_grad for parameter in model.parameters()):
        raise ValueError(f"freezing the backbone of {type(model).__name__} leaves nothing to train")
    return backbone
