from .configuration_byol import BYOL_BACKBONE_TYPES, DeepLenseBYOLConfig
from .modeling_byol import (
    DeepLenseBYOLMLP,
    DeepLenseBYOLModel,
    DeepLenseBYOLOutput,
    DeepLenseBYOLPreTrainedModel,
    byol_loss,
)

__all__ = [
    "BYOL_BACKBONE_TYPES",
    "DeepLenseBYOLConfig",
    "DeepLenseBYOLMLP",
    "DeepLenseBYOLModel",
    "DeepLenseBYOLOutput",
    "DeepLenseBYOLPreTrainedModel",
    "byol_loss",
]
