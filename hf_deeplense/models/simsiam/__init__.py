from .configuration_simsiam import SIMSIAM_BACKBONE_TYPES, DeepLenseSimSiamConfig
from .modeling_simsiam import (
    DeepLenseSimSiamForImageClassification,
    DeepLenseSimSiamForRegression,
    DeepLenseSimSiamModel,
    DeepLenseSimSiamOutput,
    DeepLenseSimSiamPredictionHead,
    DeepLenseSimSiamPreTrainedModel,
    DeepLenseSimSiamProjectionHead,
    simsiam_loss,
)

__all__ = [
    "DeepLenseSimSiamConfig",
    "DeepLenseSimSiamForImageClassification",
    "DeepLenseSimSiamForRegression",
    "DeepLenseSimSiamModel",
    "DeepLenseSimSiamOutput",
    "DeepLenseSimSiamPreTrainedModel",
    "DeepLenseSimSiamPredictionHead",
    "DeepLenseSimSiamProjectionHead",
    "SIMSIAM_BACKBONE_TYPES",
    "simsiam_loss",
]
