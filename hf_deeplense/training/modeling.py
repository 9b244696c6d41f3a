"""Building the model of a run: from scratch (a registered `model_type` + config overrides) or from a
checkpoint (fine-tuning a supervised, MAE or SimCLR checkpoint), and freezing the backbone for a linear
probe. No model code here: everything goes through the Auto classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from transformers import (
    CONFIG_MAPPING,
    AutoConfig,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
    PreTrainedModel,
)

from ..models import AutoModelForLensRegression

__all__ = [
    "DOWNSTREAM_MODEL_TYPE",
    "build_model",
    "build_pretraining_model",
    "freeze_backbone",
    "num_parameters",
]

# Pre-training architectures without heads of their own, and the architecture whose heads load their encoder.
DOWNSTREAM_MODEL_TYPE = {"deeplense_mae": "deeplense_vit"}

TASKS = ("classification", "regression")


def _auto_class(task: str):
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return AutoModelForImageClassification if task == "classification" else AutoModelForLensRegression


def _head_kwargs(
    task: str,
    class_names: Sequence[str] | None,
    target_mean: float | list[float] | None,
    target_std: float | list[float] | None,
    num_targets: int,
) -> dict[str, Any]:
    if task == "classification":
        if not class_names:
            raise ValueError("classification needs class_names")
        return {
            "num_labels": len(class_names),
            "id2label": dict(enumerate(class_names)),
            "label2id": {name: index for index, name in enumerate(class_names)},
        }
    kwargs: dict[str, Any] = {"num_targets": num_targets}
    if target_mean is not None:
        kwargs["target_mean"] = target_mean
    if target_std is not None:
        kwargs["target_std"] = target_std
    return kwargs


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
            or a SimCLR model (its backbone is kept).
        config_overrides: config fields (`image_size`, `hidden_size`, dropout, ...).
        class_names: the classes (classification).
        target_mean, target_std: statistics of the regression targets in the training set (the loss
            standardises targets with them).
        num_targets: regression targets.
    """
    if (model_type is None) == (checkpoint is None):
        raise ValueError("give exactly one of model_type (a new model) and checkpoint (fine-tuning)")
    auto_class = _auto_class(task)
    overrides = {
        **(config_overrides or {}),
        **_head_kwargs(task, class_names, target_mean, target_std, num_targets),
    }
    if model_type is not None:
        return auto_class.from_config(AutoConfig.for_model(model_type, **overrides))
    source_type = AutoConfig.from_pretrained(checkpoint).model_type
    if source_type in DOWNSTREAM_MODEL_TYPE:
        model_class = auto_class._model_mapping[CONFIG_MAPPING[DOWNSTREAM_MODEL_TYPE[source_type]]]
        return model_class.from_pretrained(checkpoint, **overrides)
    return auto_class.from_pretrained(checkpoint, ignore_mismatched_sizes=True, **overrides)


def build_pretraining_model(
    model_type: str, config_overrides: dict[str, Any] | None = None
) -> PreTrainedModel:
    """A new self-supervised model (`deeplense_mae`, `deeplense_simclr`) through `AutoModelForPreTraining`."""
    return AutoModelForPreTraining.from_config(AutoConfig.for_model(model_type, **(config_overrides or {})))


def _keep_in_eval_mode(module: nn.Module, inputs: Any) -> None:
    if module.training:
        module.eval()


def freeze_backbone(model: PreTrainedModel) -> nn.Module:
    """Linear probe: freeze the base model (`model.base_model`) and keep it in eval mode, so that
    batch-norm statistics and dropout of the backbone stay fixed while the head trains.

    Returns:
        The frozen backbone.

    Raises:
        ValueError: if nothing would remain trainable (the model has no separate head).
    """
    backbone = model.base_model
    if backbone is model:
        raise ValueError(f"{type(model).__name__} has no head separate from its base model to probe")
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    if not any(parameter.requires_grad for parameter in model.parameters()):
        raise ValueError(f"freezing the backbone of {type(model).__name__} leaves nothing to train")
    backbone.register_forward_pre_hook(_keep_in_eval_mode)
    return backbone


def num_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
