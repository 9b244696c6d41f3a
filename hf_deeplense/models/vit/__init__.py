"""Vision Transformer for lensing images: `DeepLenseViTConfig` and the `DeepLenseViT...` models."""

from .configuration_vit import DeepLenseViTConfig
from .modeling_vit import (
    DeepLenseViTForImageClassification,
    DeepLenseViTForRegression,
    DeepLenseViTModel,
    DeepLenseViTPreTrainedModel,
)

__all__ = [
    "DeepLenseViTConfig",
    "DeepLenseViTForImageClassification",
    "DeepLenseViTForRegression",
    "DeepLenseViTModel",
    "DeepLenseViTPreTrainedModel",
]
