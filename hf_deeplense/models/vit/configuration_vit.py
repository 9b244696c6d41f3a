"""DeepLense ViT configuration."""

from transformers import PreTrainedConfig

# Keyword arguments every `PreTrainedConfig` understands; the only ones kept when the ViT config is built
# from another architecture's config dict (see `DeepLenseViTConfig.__post_init__`).
_COMMON_CONFIG_KWARGS = (
    "name_or_path",
    "output_attentions",
    "attn_implementation",
    "torch_dtype",
    "num_labels",
)


class DeepLenseViTConfig(PreTrainedConfig):
    r"""Configuration of a Vision Transformer for lensing images ([`DeepLenseViTModel`] and its heads).

    The defaults are a ViT-S/8 for single-channel 64x64 images; `image_size=150, patch_size=10` fits the
    150x150 DeepLense data. The `hidden_size`, layers and heads of the encoder have the same names and
    meaning as in [`DeepLenseMAEConfig`], so an MAE checkpoint loads into the ViT heads.

    Args:
        image_size (`int`, *optional*, defaults to 64):
            Height and width of the (square) input images, in pixels.
        patch_size (`int`, *optional*, defaults to 8):
            Height and width of each patch, in pixels; must divide `image_size`.
        num_channels (`int`, *optional*, defaults to 1):
            Number of image channels (1 for the simulated lensing images, 3 for multi-band data).
        hidden_size (`int`, *optional*, defaults to 384):
            Width of the token embeddings and of the encoder layers.
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of transformer layers.
        num_attention_heads (`int`, *optional*, defaults to 6):
            Number of attention heads; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 1536):
            Width of the MLP inside each layer.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the MLP (any key of `transformers.activations.ACT2FN`).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout after the attention output and the MLP.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        classifier_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout before the classification / regression head.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal initialisation of the weights.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the layer norms.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the fused query/key/value projection has a bias.
        num_targets (`int`, *optional*, defaults to 1):
            Number of regression targets of [`DeepLenseViTForRegression`] (e.g. 1 for `log10_m_a`).
        target_mean (`float` or `list[float]`, *optional*):
            Mean of the regression targets in the training set: one value for all targets or one per target
            (`None` = 0); stored as a list of `num_targets` values. The regression loss is the MSE of the
            standardised targets `(labels - target_mean) / target_std`.
        target_std (`float` or `list[float]`, *optional*):
            Standard deviation of the regression targets, one value or one per target (`None` = 1); positive.
        num_labels (`int`, *optional*, defaults to 3):
            Number of classes of [`DeepLenseViTForImageClassification`] (3: no substructure, CDM subhalos,
            axion vortices).

    Example:

    ```python
    >>> from hf_deeplense import DeepLenseViTConfig, DeepLenseViTForImageClassification
    >>> config = DeepLenseViTConfig(image_size=150, patch_size=10)
    >>> model = DeepLenseViTForImageClassification(config)
    ```
    """

    model_type = "deeplense_vit"

    image_size: int = 64
    patch_size: int = 8
    num_channels: int = 1
    hidden_size: int = 384
    num_hidden_layers: int = 12
    num_attention_heads: int = 6
    intermediate_size: int = 1536
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
        # A config dict of another architecture (an MAE checkpoint loaded into the ViT heads to fine-tune its
        # encoder) brings its own `model_type` and fields such as `decoder_*`: keep the shared encoder fields only.
        # Its label maps (a pre-training config has no real classes) are dropped too.
        if kwargs.pop("model_type", self.model_type) != self.model_type:
            kwargs = {key: value for key, value in kwargs.items() if key in _COMMON_CONFIG_KWARGS}
            self.id2label = self.label2id = None
        if self.id2label is None:  # a saved classifier holds its classes in id2label, not num_labels
            kwargs.setdefault("num_labels", 3)
        for name in ("image_size", "patch_size", "num_channels", "hidden_size", "num_hidden_layers"):
            _check_positive_int(name, getattr(self, name))
        for name in ("num_attention_heads", "intermediate_size", "num_targets"):
            _check_positive_int(name, getattr(self, name))
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size ({self.image_size}) must be divisible by patch_size ({self.patch_size})"
            )
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


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


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


__all__ = ["DeepLenseViTConfig"]
