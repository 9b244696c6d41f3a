"""Registration of the DeepLense architectures with the transformers Auto classes.

Every architecture is one [`ModelRegistration`] line in `hf_deeplense.models.MODEL_REGISTRY`; importing
`hf_deeplense` calls [`register_model`] on each, which

- registers the config with `AutoConfig` and each head with its Auto class (so a saved directory loads
  through `AutoModel...from_pretrained(path)` with the package installed, without `trust_remote_code`);
- calls `register_for_auto_class` on the config and every head, so `save_pretrained` / `push_to_hub`
  copy `configuration_<arch>.py` and `modeling_<arch>.py` next to the weights;
- records the full `auto_map` (every Auto class the architecture serves) on the model classes, which
  their `save_pretrained` writes into `config.json` (transformers itself only writes the saved class).

A directory saved that way loads with `trust_remote_code=True` where hf_deeplense is not installed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping


class AutoModelForLensRegression(_BaseAutoModelClass):
    """Auto class for the regression heads (`DeepLense...ForRegression`): `logits (batch, num_targets)`.

    Works like `AutoModelForImageClassification`:

    ```python
    model = AutoModelForLensRegression.from_config(DeepLenseViTConfig(num_targets=1))
    model = AutoModelForLensRegression.from_pretrained("path/or/repo")
    ```
    Without hf_deeplense (remote code), load the class named in `config.auto_map["AutoModelForLensRegression"]`
    with `transformers.dynamic_module_utils.get_class_from_dynamic_module`.
    """

    # No built-in transformers model serves this task: the mapping holds only registered classes.
    _model_mapping = _LazyAutoMapping(OrderedDict(), OrderedDict())


AUTO_CLASSES: dict[str, type[_BaseAutoModelClass]] = {
    "AutoModel": AutoModel,
    "AutoModelForImageClassification": AutoModelForImageClassification,
    "AutoModelForLensRegression": AutoModelForLensRegression,
    "AutoModelForPreTraining": AutoModelForPreTraining,
}
"""Auto class name -> Auto class, for every task a DeepLense head may serve."""

TASK_AUTO_CLASSES: dict[str, type[_BaseAutoModelClass]] = {
    "classification": AutoModelForImageClassification,
    "regression": AutoModelForLensRegression,
    "pretraining": AutoModelForPreTraining,
}
"""Task -> the Auto class of its heads."""

_TASK_SUFFIXES = {
    "ForImageClassification": "classification",
    "ForRegression": "regression",
    "ForPreTraining": "pretraining",
}


def task_of(config: PreTrainedConfig) -> str | None:
    """The task of a saved model (a key of `TASK_AUTO_CLASSES`) from the class names in `config.architectures`, or
    None for a base model or a config that names no architecture."""
    for name in config.architectures or []:
        for suffix, task in _TASK_SUFFIXES.items():
            if name.endswith(suffix):
                return task
    return None


@dataclass(frozen=True)
class ModelRegistration:
    """One architecture: its config and the model class served by each Auto class (None: not served).

    Args:
        config_class: the `PreTrainedConfig` subclass; its `model_type` is registered with `AutoConfig`.
        model_class: the base model (`AutoModel`): returns `last_hidden_state` and `pooler_output`.
        image_classification_class: the `...ForImageClassification` head (`AutoModelForImageClassification`).
        regression_class: the `...ForRegression` head (`AutoModelForLensRegression`).
        pretraining_class: the self-supervised model (`AutoModelForPreTraining`), e.g. MAE's `...ForPreTraining`;
            may be `model_class` itself when the base model carries the pre-training head and loss (SimCLR).
    """

    config_class: type[PreTrainedConfig]
    model_class: type[PreTrainedModel]
    image_classification_class: type[PreTrainedModel] | None = None
    regression_class: type[PreTrainedModel] | None = None
    pretraining_class: type[PreTrainedModel] | None = None

    @property
    def model_type(self) -> str:
        return self.config_class.model_type

    def auto_classes(self) -> dict[str, type[PreTrainedModel]]:
        """Auto class name -> model class, for every Auto class this architecture serves."""
        classes = {
            "AutoModel": self.model_class,
            "AutoModelForImageClassification": self.image_classification_class,
            "AutoModelForLensRegression": self.regression_class,
            "AutoModelForPreTraining": self.pretraining_class,
        }
        return {name: model_class for name, model_class in classes.items() if model_class is not None}

    def auto_map(self) -> dict[str, str]:
        """The `auto_map` written into a saved `config.json`: `{"AutoModel": "modeling_vit.DeepLenseViTModel", ...}`."""
        auto_map = {"AutoConfig": _module_qualified_name(self.config_class)}
        for auto_name, model_class in self.auto_classes().items():
            auto_map[auto_name] = _module_qualified_name(model_class)
        return auto_map


def _module_qualified_name(cls: type) -> str:
    """`hf_deeplense.models.vit.modeling_vit.DeepLenseViTModel` -> `modeling_vit.DeepLenseViTModel` (the remote-code form)."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def register_model(registration: ModelRegistration) -> None:
    """Register one architecture with AutoConfig, the Auto model classes and the remote-code machinery.

    Safe to call twice (`exist_ok=True`).
    """
    config_class = registration.config_class
    AutoConfig.register(registration.model_type, config_class, exist_ok=True)
    config_class.register_for_auto_class("AutoConfig")
    auto_map = registration.auto_map()
    named: set[type[PreTrainedModel]] = set()
    for auto_name, model_class in registration.auto_classes().items():
        if model_class.config_class is not config_class:
            raise ValueError(
                f"{model_class.__name__}.config_class is {model_class.config_class.__name__}, "
                f"expected {config_class.__name__} (registration of {registration.model_type!r})"
            )
        AUTO_CLASSES[auto_name].register(config_class, model_class, exist_ok=True)
        # What `register_for_auto_class` does, minus its check that the name is a transformers Auto class
        # (AutoModelForLensRegression is ours). A class serving several Auto classes (SimCLR's model is AutoModel
        # and AutoModelForPreTraining) keeps the first; `_auto_map` below lists them all anyway.
        if model_class not in named:
            model_class._auto_class = auto_name
            named.add(model_class)
        # Read by the model's `save_pretrained` (see `DeepLenseViTPreTrainedModel.save_pretrained`).
        model_class._auto_map = auto_map
