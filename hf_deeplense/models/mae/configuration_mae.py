"""DeepLense masked-autoencoder (MAE) configuration."""

from transformers import PreTrainedConfig


class DeepLenseMAEConfig(PreTrainedConfig):
    r"""Configuration of a masked autoencoder ([0]) for lensing images ([`DeepLenseMAEForPreTraining`]).

    The encoder fields have the same names, meaning and defaults as in [`DeepLenseViTConfig`] (a ViT-S/8 for
    single-channel 64x64 images), so the pre-trained encoder loads into the ViT heads:
    `DeepLenseViTForImageClassification.from_pretrained(mae_dir, num_labels=3)`.

    - [0] He et al., Masked Autoencoders Are Scalable Vision Learners, 2021, https://arxiv.org/abs/2111.06377

    Args:
        image_size (`int`, *optional*, defaults to 64):
            Height and width of the (square) input images, in pixels.
        patch_size (`int`, *optional*, defaults to 8):
            Height and width of each patch, in pixels; must divide `image_size`.
        num_channels (`int`, *optional*, defaults to 1):
            Number of image channels.
        hidden_size (`int`, *optional*, defaults to 384):
            Width of the encoder; must be divisible by 4 (2D sine-cosine position embeddings).
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of encoder layers.
        num_attention_heads (`int`, *optional*, defaults to 6):
            Number of encoder attention heads; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 1536):
            Width of the MLP inside each encoder layer.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the MLPs (any key of `transformers.activations.ACT2FN`).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout after the attention output and the MLP.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal initialisation of the weights.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the layer norms.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the fused query/key/value projections have a bias.
        decoder_hidden_size (`int`, *optional*, defaults to 256):
            Width of the (light) decoder; must be divisible by 4.
        decoder_num_hidden_layers (`int`, *optional*, defaults to 4):
            Number of decoder layers.
        decoder_num_attention_heads (`int`, *optional*, defaults to 8):
            Number of decoder attention heads; must divide `decoder_hidden_size`.
        decoder_intermediate_size (`int`, *optional*, defaults to 1024):
            Width of the MLP inside each decoder layer.
        mask_ratio (`float`, *optional*, defaults to 0.75):
            Fraction of the patches hidden from the encoder, in [0, 1); at least one patch stays visible.
        norm_pix_loss (`bool`, *optional*, defaults to `False`):
            Reconstruct each patch standardised by its own mean and variance (Table 3 of [0]) instead of raw pixels.

    Example:

    ```python
    >>> from hf_deeplense import DeepLenseMAEConfig, DeepLenseMAEForPreTraining
    >>> model = DeepLenseMAEForPreTraining(DeepLenseMAEConfig(image_size=150, patch_size=10))
    ```
    """

    model_type = "deeplense_mae"

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
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    decoder_hidden_size: int = 256
    decoder_num_hidden_layers: int = 4
    decoder_num_attention_heads: int = 8
    decoder_intermediate_size: int = 1024
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False

    def __post_init__(self, **kwargs):
        for name in (
            "image_size",
            "patch_size",
            "num_channels",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "decoder_hidden_size",
            "decoder_num_hidden_layers",
            "decoder_num_attention_heads",
            "decoder_intermediate_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size ({self.image_size}) must be divisible by patch_size ({self.patch_size})"
            )
        for width, heads in (
            ("hidden_size", "num_attention_heads"),
            ("decoder_hidden_size", "decoder_num_attention_heads"),
        ):
            if getattr(self, width) % getattr(self, heads):
                raise ValueError(
                    f"{width} ({getattr(self, width)}) must be divisible by {heads} ({getattr(self, heads)})"
                )
            if getattr(self, width) % 4:
                raise ValueError(
                    f"{width} ({getattr(self, width)}) must be divisible by 4 (2D sine-cosine position embeddings)"
                )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        num_patches = (self.image_size // self.patch_size) ** 2
        if not 0.0 <= self.mask_ratio < 1.0 or int(num_patches * (1 - self.mask_ratio)) < 1:
            raise ValueError(
                f"mask_ratio ({self.mask_ratio}) must lie in [0, 1) and keep at least one of the {num_patches} patches"
            )
        super().__post_init__(**kwargs)


__all__ = ["DeepLenseMAEConfig"]
