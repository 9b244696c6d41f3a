"""DeepLense CNN baseline configuration (ResNet-18, EfficientNet-B0/B1/B2 built with timm)."""

from transformers import PreTrainedConfig

# The timm architectures of the DeepLense CNN baselines.
CNN_ARCHITECTURES = ("resnet18", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2")
# Arguments of `timm.create_model` that the config sets itself (not allowed in `model_args`).
_RESERVED_TIMM_ARGS = ("pretrained", "in_chans", "num_classes", "drop_path_rate", "features_only")


class DeepLenseCNNConfig(PreTrainedConfig):
    r"""
    Configuration of the CNN baselines used throughout the DeepLense papers. The network itself is built by
    `timm.create_model(architecture, pretrained=False, in_chans=num_channels, num_classes=0)`; this config holds
    everything needed to rebuild it, so a saved model loads without timm's own checkpoint format.

    Args:
        architecture (`str`, *optional*, defaults to `"resnet18"`):
            timm architecture name, one of `resnet18`, `efficientnet_b0`, `efficientnet_b1`, `efficientnet_b2`.
        num_channels (`int`, *optional*, defaults to 1):
            Number of input channels (1 for single-band lensing images).
        image_size (`int`, *optional*, defaults to 64):
            Expected input size (informative only: the CNNs are fully convolutional and accept any size).
        drop_path_rate (`float`, *optional*, defaults to 0.0):
            Stochastic depth rate passed to timm.
        model_args (`dict`, *optional*):
            Further keyword arguments of `timm.create_model`, e.g. `{"channels": [16, 32, 64, 128]}` for a
            narrower ResNet (the pooled width then follows the last stage).
        classifier_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout before the classification / regression head.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initializer of the linear heads.
        num_targets (`int`, *optional*, defaults to 1):
            Number of regressed quantities (`DeepLenseCNNForRegression`).
        target_mean (`float` or `list[float]`, *optional*):
            Mean of each regression target in the training set (defaults to 0); the regression loss is the MSE
            of the standardised targets `(labels - target_mean) / target_std`.
        target_std (`float` or `list[float]`, *optional*):
            Standard deviation of each regression target (defaults to 1); must be positive.
        num_labels (`int`, *optional*, defaults to 3):
            Number of classes of [`DeepLenseCNNForImageClassification`].

    Example:

    ```python
    >>> from hf_deeplense.models.cnn import DeepLenseCNNConfig, DeepLenseCNNForImageClassification

    >>> config = DeepLenseCNNConfig(architecture="efficientnet_b0", num_channels=1, num_labels=3)
    >>> model = DeepLenseCNNForImageClassification(config)
    ```"""

    model_type = "deeplense_cnn"

    architecture: str = "resnet18"
    num_channels: int = 1
    image_size: int = 64
    drop_path_rate: float = 0.0
    model_args: dict | None = None
    classifier_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    num_targets: int = 1
    target_mean: float | list[float] | None = None
    target_std: float | list[float] | None = None

    def __post_init__(self, **kwargs):
        if self.id2label is None:  # a saved classifier holds its classes in id2label, not num_labels
            kwargs.setdefault("num_labels", 3)
        if self.architecture not in CNN_ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {sorted(CNN_ARCHITECTURES)}, got {self.architecture!r}"
            )
        for name in ("num_channels", "image_size", "num_targets"):
            _check_positive_int(name, getattr(self, name))
        if not 0.0 <= self.classifier_dropout_prob < 1.0:
            raise ValueError(
                f"classifier_dropout_prob must lie in [0, 1), got {self.classifier_dropout_prob}"
            )
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must lie in [0, 1), got {self.drop_path_rate}")
        if self.model_args is not None:
            if not isinstance(self.model_args, dict):
                raise ValueError(
                    f"model_args must be a dict of timm.create_model arguments, got {self.model_args!r}"
                )
            reserved = sorted(set(self.model_args) & set(_RESERVED_TIMM_ARGS))
            if reserved:
                raise ValueError(f"model_args must not set {reserved}: use the config fields instead")
        self.target_mean = _per_target("target_mean", self.target_mean, self.num_targets, default=0.0)
        self.target_std = _per_target("target_std", self.target_std, self.num_targets, default=1.0)
        if any(std <= 0 for std in self.target_std):
            raise ValueError(f"target_std must be positive, got {self.target_std}")
        super().__post_init__(**kwargs)


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


__all__ = ["DeepLenseCNNConfig"]
