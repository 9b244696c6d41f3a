"""DeepLense rotation-equivariant model configuration."""

from transformers import PreTrainedConfig

GROUP_ORDERS = {"C4": 4, "D4": 8}
"""Supported symmetry groups -> number of elements: `C4` (p4: rotations by 90°) and `D4` (p4m: + mirror)."""


class DeepLenseEquivariantConfig(PreTrainedConfig):
    r"""Configuration of [`DeepLenseEquivariantModel`]: a group-convolution stem (C4 or D4) with group pooling,
    feeding a small transformer over rotation-invariant tokens.

    The stem is a lifting convolution followed by residual group-convolution stages (Cohen & Welling 2016,
    https://arxiv.org/abs/1602.07576), each stage halving the feature map with an exactly symmetric adaptive
    average pool. The group axis is then max-pooled, each pixel of the resulting map becomes a token, and the
    tokens get a learned embedding of their distance to the image centre (a position code that does not change
    under the group). The class scores are therefore invariant to 90° rotations (and mirror flips for `D4`) of
    a square input, up to float rounding.

    Args:
        group (`str`, *optional*, defaults to `"D4"`):
            Symmetry group: `"C4"` (4 rotations) or `"D4"` (4 rotations and their mirror images).
        image_size (`int`, *optional*, defaults to 64):
            Expected (square) input size in pixels; informative only (the network accepts any square size).
        num_channels (`int`, *optional*, defaults to 1):
            Number of input channels (1 for single-band lensing images, 3 for g, r, i cut-outs).
        stem_kernel_size (`int`, *optional*, defaults to 5):
            Kernel size of the lifting convolution; must be odd (an even kernel has no centre to rotate about).
        stage_channels (`list[int]`, *optional*, defaults to `[8, 16, 32]`):
            Channels per group element of each group-convolution stage (a stage holds
            `channels * |G|` feature maps).
        kernel_size (`int`, *optional*, defaults to 3):
            Kernel size of the group convolutions; must be odd.
        hidden_size (`int`, *optional*, defaults to 64):
            Width of the tokens and of the transformer layers (`pooler_output` width).
        num_hidden_layers (`int`, *optional*, defaults to 2):
            Number of transformer layers after the stem (0: the pooled stem features go straight to the head).
        num_attention_heads (`int`, *optional*, defaults to 4):
            Attention heads; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 128):
            Width of the MLP in each transformer layer.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the stem and of the MLPs (a key of `transformers.activations.ACT2FN`).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout in the transformer layers.
        classifier_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout before the classification / regression head.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the layer norms.
        num_targets (`int`, *optional*, defaults to 1):
            Number of regression targets of [`DeepLenseEquivariantForRegression`].
        target_mean (`float` or `list[float]`, *optional*):
            Per-target mean used to standardise regression labels (defaults to 0); one value is used for every
            target.
        target_std (`float` or `list[float]`, *optional*):
            Per-target standard deviation used to standardise regression labels (defaults to 1); positive.

    Example:

    ```python
    >>> from hf_deeplense.models.equivariant import DeepLenseEquivariantConfig, DeepLenseEquivariantForImageClassification
    >>> config = DeepLenseEquivariantConfig(group="C4", stage_channels=[8, 16], num_labels=3)
    >>> model = DeepLenseEquivariantForImageClassification(config)
    ```
    """

    model_type = "deeplense_equivariant"

    group: str = "D4"
    image_size: int = 64
    num_channels: int = 1
    stem_kernel_size: int = 5
    stage_channels: list[int] | None = None
    kernel_size: int = 3
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 128
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    classifier_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    num_targets: int = 1
    target_mean: float | list[float] | None = None
    target_std: float | list[float] | None = None

    def __post_init__(self, **kwargs):
        if self.id2label is None:  # a saved classifier holds its classes in id2label, not num_labels
            kwargs.setdefault("num_labels", 3)
        if self.group not in GROUP_ORDERS:
            raise ValueError(f"group ({self.group!r}) must be one of {sorted(GROUP_ORDERS)}")
        if self.stage_channels is None:
            self.stage_channels = [8, 16, 32]
        self.stage_channels = [int(channels) for channels in self.stage_channels]
        if not self.stage_channels or any(channels < 1 for channels in self.stage_channels):
            raise ValueError(
                f"stage_channels ({self.stage_channels}) must be a non-empty list of positive ints"
            )
        for name in ("stem_kernel_size", "kernel_size"):
            size = getattr(self, name)
            if size < 1 or size % 2 == 0:
                raise ValueError(
                    f"{name} ({size}) must be a positive odd integer (rotations need a centre pixel)"
                )
        for name in (
            "num_channels",
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "num_targets",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} ({getattr(self, name)}) must be >= 1")
        if self.num_hidden_layers < 0:
            raise ValueError(f"num_hidden_layers ({self.num_hidden_layers}) must be >= 0")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )
        for name in ("hidden_dropout_prob", "classifier_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        self.target_mean = _per_target("target_mean", self.target_mean, self.num_targets, default=0.0)
        self.target_std = _per_target("target_std", self.target_std, self.num_targets, default=1.0)
        if any(std <= 0 for std in self.target_std):
            raise ValueError(f"target_std ({self.target_std}) must be positive")
        super().__post_init__(**kwargs)

    @property
    def group_order(self) -> int:
        """Number of group elements |G| (4 for C4, 8 for D4)."""
        return GROUP_ORDERS[self.group]


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


__all__ = ["DeepLenseEquivariantConfig", "GROUP_ORDERS"]
