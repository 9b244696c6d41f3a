"""DeepLense hybrid CNN-transformer configuration."""

from transformers import PreTrainedConfig


class DeepLenseHybridConfig(PreTrainedConfig):
    r"""Configuration of a hybrid CNN-transformer ([`DeepLenseHybridModel`] and its heads).

    A convolutional stem turns the image into a feature map; each position of that map (after an optional
    `patch_size` x `patch_size` projection) becomes a token of a pre-norm ViT encoder with a CLS token and learned
    position embeddings (the "hybrid" ViT of Dosovitskiy et al. 2020, https://arxiv.org/abs/2010.11929, sec. 3.1).
    The stem is either a small stack of stride-2 conv blocks (default) or the first stages of a timm CNN.

    Args:
        image_size (`int`, *optional*, defaults to 64):
            Height and width of the (square) input images, in pixels (e.g. 64 or 150).
        num_channels (`int`, *optional*, defaults to 1):
            Number of image channels.
        stem_channels (`list[int]`, *optional*, defaults to `[32, 64, 128]`):
            Output channels of the conv blocks of the default stem; each block is a 3x3 convolution of stride 2,
            batch norm and ReLU, so the feature map is `ceil(image_size / 2 ** len(stem_channels))` wide.
        stem_backbone (`str`, *optional*):
            A timm CNN (e.g. `"resnet18"`, `"efficientnet_b0"`) used as stem instead of the conv blocks, built
            with `features_only=True` and random weights.
        stem_feature_index (`int`, *optional*, defaults to 2):
            Which feature level of `stem_backbone` becomes the token map (timm `out_indices`; 2 = stride 8).
        patch_size (`int`, *optional*, defaults to 1):
            Kernel and stride of the convolution projecting the stem feature map to `hidden_size` tokens.
        hidden_size (`int`, *optional*, defaults to 256):
            Width of the tokens and of the encoder layers.
        num_hidden_layers (`int`, *optional*, defaults to 4):
            Number of transformer layers.
        num_attention_heads (`int`, *optional*, defaults to 4):
            Number of attention heads; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 1024):
            Width of the MLP inside each layer.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the MLP (any key of `transformers.activations.ACT2FN`).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout after the embeddings, the attention output and the MLP.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        classifier_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout before the classification / regression head.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal initialisation of the transformer weights.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the layer norms.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the fused query/key/value projection has a bias.
        num_targets (`int`, *optional*, defaults to 1):
            Number of regression targets of [`DeepLenseHybridForRegression`].
        target_mean (`float` or `list[float]`, *optional*):
            Mean of each regression target (defaults to 0); the regression loss is the MSE of the standardised
            targets `(labels - target_mean) / target_std`.
        target_std (`float` or `list[float]`, *optional*):
            Standard deviation of each regression target (defaults to 1); must be positive.
        num_labels (`int`, *optional*, defaults to 3):
            Number of classes of [`DeepLenseHybridForImageClassification`].

    Example:

    ```python
    >>> from hf_deeplense.models.hybrid import DeepLenseHybridConfig, DeepLenseHybridForImageClassification
    >>> config = DeepLenseHybridConfig(image_size=150, stem_backbone="resnet18", stem_feature_index=3)
    >>> model = DeepLenseHybridForImageClassification(config)  # 10 x 10 = 100 tokens + CLS
    ```
    """

    model_type = "deeplense_hybrid"

    image_size: int = 64
    num_channels: int = 1
    stem_channels: list[int] | tuple[int, ...] = (32, 64, 128)
    stem_backbone: str | None = None
    stem_feature_index: int = 2
    patch_size: int = 1
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    classifier_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    num_targets: int = 1
    target_mean: float | list[float] | None = None
    target_std: float | list[float] | None = None

    def __post_init__(self, **kwargs):
        if self.id2label is None:  # a saved classifier holds its classes in id2label, not num_labels
            kwargs.setdefault("num_labels", 3)
        for name in ("image_size", "num_channels", "patch_size", "hidden_size", "num_hidden_layers"):
            _check_positive_int(name, getattr(self, name))
        for name in ("num_attention_heads", "intermediate_size", "num_targets"):
            _check_positive_int(name, getattr(self, name))
        self.stem_channels = list(self.stem_channels)
        if not self.stem_channels:
            raise ValueError("stem_channels must list at least one conv block")
        for channels in self.stem_channels:
            _check_positive_int("stem_channels", channels)
        if isinstance(self.stem_feature_index, bool) or not isinstance(self.stem_feature_index, int):
            raise ValueError(f"stem_feature_index must be an integer, got {self.stem_feature_index!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
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


__all__ = ["DeepLenseHybridConfig"]
