from .configuration_dino import DINO_BACKBONE_TYPES, DeepLenseDINOConfig
from .loss_dino import dino_loss, updated_center
from .modeling_dino import (
    DeepLenseDINOForImageClassification,
    DeepLenseDINOForRegression,
    DeepLenseDINOHead,
    DeepLenseDINOModel,
    DeepLenseDINOOutput,
    DeepLenseDINOPreTrainedModel,
)

__all__ = [
    "DINO_BACKBONE_TYPES",
    "DeepLenseDINOConfig",
    "DeepLenseDINOForImageClassification",
    "DeepLenseDINOForRegression",
    "DeepLenseDINOHead",
    "DeepLenseDINOModel",
    "DeepLenseDINOOutput",
    "DeepLenseDINOPreTrainedModel",
    "dino_loss",
    "updated_center",
]
