"""DeepLense SimSiam configuration: a DeepLense backbone (sub-config) and the projector and predictor sizes."""

from transformers import AutoConfig, PreTrainedConfig
from transformers.dynamic_module_utils import get_class_from_dynamic_module
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

try:  # transformers >= 5.2x declares sub-configs with a spec (AutoConfig + the default model type)
    from transformers.configuration_utils import SubConfigSpec
except ImportError:  # earlier 5.x maps the sub-config name to its config class
    SubConfigSpec = None

# Backbones whose base model returns `pooler_output (batch, hidden)`: the SimSiam embedding.
SIMSIAM_BACKBONE_TYPES = ("deeplense_cnn", "deeplense_vit", "deeplense_hybrid", "deeplense_equivariant")
DEFAULT_BACKBONE_TYPE = "deeplense_cnn"  # a ResNet-18


class DeepLenseSimSiamConfig(PreTrainedConfig):
    r"""Configuration of SimSiam pre-training ([`DeepLenseSimSiamModel`]).

    - [0] SimSiam, 2021, https://arxiv.org/abs/2011.10566 (Chen, He)

    Args:
        backbone_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the encoder, any of `deeplense_cnn`, `deeplense_vit`, `deeplense_hybrid`,
            `deeplense_equivariant` (a dict needs its `model_type`). Defaults to a `deeplense_cnn` ResNet-18.
        projection_dim (`int`, *optional*, defaults to 2048):
            Width of the hidden and output layers of the 3-layer projector (batch norm on every layer, Sec. 4 of [0]).
        prediction_hidden_size (`int`, *optional*, defaults to 512):
            Bottleneck width of the 2-layer predictor.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the heads.
        classifier_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout before the classification / regression head.
        num_targets (`int`, *optional*, defaults to 1):
            Number of regression targets of [`DeepLenseSimSiamForRegression`].
        target_mean (`float` or `list[float]`, *optional*):
            Mean of each regression target (defaults to 0); the regression loss is the MSE of the standardised
            targets `(labels - target_mean) / target_std`.
        target_std (`float` or `list[float]`, *optional*):
            Standard deviation of each regression target (defaults to 1); must be positive.
        num_labels (`int`, *optional*, defaults to 3):
            Number of classes of [`DeepLenseSimSiamForImageClassification`].

    `num_channels` and `image_size` are read from the backbone config. The heads
    [`DeepLenseSimSiamForImageClassification`] and [`DeepLenseSimSiamForRegression`] keep the backbone (`backbone.*`), so
    `AutoModelForImageClassification.from_pretrained(simsiam_dir, num_labels=3)` and
    `AutoModelForLensRegression.from_pretrained(simsiam_dir)` fine-tune the pre-trained encoder.
    """

    model_type = "deeplense_simsiam"
    if SubConfigSpec is not None:
        sub_configs_defaults = {
            "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type=DEFAULT_BACKBONE_TYPE)
        }
    else:
        sub_configs = {"backbone_config": AutoConfig}
    # Loaded as remote code without hf_deeplense, the default backbone type is not registered, so the class cannot
    # be built without arguments; transformers < 5.2x builds one to diff against when it serialises a config.
    has_no_defaults_at_init = __name__.startswith("transformers_modules.")

    backbone_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 2048
    prediction_hidden_size: int = 512
    initializer_range: float = 0.02
    classifier_dropout_prob: float = 0.0
    num_targets: int = 1
    target_mean: float | list[float] | None = None
    target_std: float | list[float] | None = None

    def __post_init__(self, **kwargs):
        if self.id2label is None:  # a saved classifier holds its classes in id2label, not num_labels
            kwargs.setdefault("num_labels", 3)
        self.backbone_config = self._resolve_backbone_config(
            self.backbone_config, kwargs.get("name_or_path", "")
        )
        for name in ("projection_dim", "prediction_hidden_size"):
            _check_positive_int(name, getattr(self, name))
        _check_positive_int("num_targets", self.num_targets)
        if not 0.0 <= self.classifier_dropout_prob < 1.0:
            raise ValueError(
                f"classifier_dropout_prob must lie in [0, 1), got {self.classifier_dropout_prob}"
            )
        self.target_mean = _per_target("target_mean", self.target_mean, self.num_targets, default=0.0)
        self.target_std = _per_target("target_std", self.target_std, self.num_targets, default=1.0)
        if any(std <= 0 for std in self.target_std):
            raise ValueError(f"target_std must be positive, got {self.target_std}")
        super().__post_init__(**kwargs)

    # Copied from hf_deeplense.models.simclr.configuration_simclr.DeepLenseSimCLRConfig.from_pretrained with SimCLR->SimSiam
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "DeepLenseSimSiamConfig":
        # `AutoConfig` passes the path on; a direct `from_pretrained` must too, so that remote code finds the
        # backbone's code saved next to the weights (see `_resolve_backbone_config`).
        kwargs.setdefault("name_or_path", str(pretrained_model_name_or_path))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    # Copied from hf_deeplense.models.simclr.configuration_simclr.DeepLenseSimCLRConfig._resolve_backbone_config with SimCLR->SimSiam, SIMCLR->SIMSIAM
    @classmethod
    def _resolve_backbone_config(cls, backbone_config, name_or_path: str) -> PreTrainedConfig:
        """`None` / dict / config -> the backbone config object.

        With hf_deeplense imported the backbone types are registered with `AutoConfig`. Loaded as remote code
        without the package, the backbone config class comes from the `configuration_<backbone>.py` file that
        `DeepLenseSimSiamPreTrainedModel.save_pretrained` stored next to the weights (named in the backbone's
        `auto_map`), from the same directory or Hub repository as this (already trusted) code.
        """
        if isinstance(backbone_config, PreTrainedConfig):
            model_type = backbone_config.model_type
        else:
            backbone_config = dict(backbone_config or {})
            model_type = backbone_config.setdefault("model_type", DEFAULT_BACKBONE_TYPE)
        if model_type not in SIMSIAM_BACKBONE_TYPES:
            raise ValueError(
                f"backbone_config must be one of the model types {list(SIMSIAM_BACKBONE_TYPES)}, got {model_type!r}"
            )
        if isinstance(backbone_config, PreTrainedConfig):
            return backbone_config
        if model_type in CONFIG_MAPPING:
            return CONFIG_MAPPING[model_type].from_dict(backbone_config)
        config_reference = (backbone_config.get("auto_map") or {}).get("AutoConfig")
        if cls.__module__.startswith("transformers_modules.") and config_reference and name_or_path:
            config_class = get_class_from_dynamic_module(config_reference, name_or_path)
            config = config_class.from_dict(backbone_config)
            config._name_or_path = name_or_path  # where `AutoModel.from_config` finds the backbone's code
            return config
        raise ValueError(
            f"backbone_config has model_type {model_type!r}, which is not registered: `import hf_deeplense`, or "
            "load a directory saved by hf_deeplense (it carries the backbone's code) with trust_remote_code=True"
        )

    @property
    def num_channels(self) -> int:
        """Input channels of the backbone."""
        return self.backbone_config.num_channels

    @property
    def image_size(self) -> int:
        """Input size of the backbone."""
        return self.backbone_config.image_size


# Copied from hf_deeplense.models.vit.configuration_vit._check_positive_int
def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


# Copied from hf_deeplense.models.vit.configuration_vit._per_target
def _per_target(name: str, value, num_targets: int, default: float) -> list[float]:
    """`None` -> `[default] * num_targets`, a number -> one value per target, a list must have `num_targets` values."""
    if value is None:
        value = default
    # A one-value list is one value for every target: `from_pretrained(path, num_targets=2)` sets
    # `num_targets` after validation, so a saved config may hold `num_targets=2, target_mean=[0.0]`.
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (int, float)):
        return [float(value)] * num_targets
    value = [float(item) for item in value]
    if len(value) != num_targets:
        raise ValueError(f"{name} must have num_targets ({num_targets}) values, got {len(value)}")
    return value


__all__ = ["DeepLenseSimSiamConfig"]
