from .configuration_byol import BYOL_BACKBONE_TYPES, DeepLenseBYOLConfig
from .modeling_byol import (
    DeepLenseBYOLForImageClassification,
    DeepLenseBYOLForRegression,
    DeepLenseBYOLMLP,
    DeepLenseBYOLModel,
    DeepLenseBYOLOutput,
    DeepLenseBYOLPreTrainedModel,
    byol_loss,
)

__all__ = [
    "BYOL_BACKBONE_TYPES",
    "DeepLenseBYOLConfig",
    "DeepLenseBYOLForImageClassification",
    "DeepLenseBYOLForRegression",
    "DeepLenseBYOLMLP",
    "DeepLenseBYOLModel",
    "DeepLenseBYOLOutput",
    "DeepLenseBYOLPreTrainedModel",
    "byol_loss",
]
