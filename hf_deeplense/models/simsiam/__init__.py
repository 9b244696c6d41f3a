from .configuration_simsiam import SIMSIAM_BACKBONE_TYPES, DeepLenseSimSiamConfig
from .modeling_simsiam import (
    DeepLenseSimSiamModel,
    DeepLenseSimSiamOutput,
    DeepLenseSimSiamPredictionHead,
    DeepLenseSimSiamPreTrainedModel,
    DeepLenseSimSiamProjectionHead,
    simsiam_loss,
)

__all__ = [
    "SIMSIAM_BACKBONE_TYPES",
    "DeepLenseSimSiamConfig",
    "DeepLenseSimSiamModel",
    "DeepLenseSimSiamOutput",
    "DeepLenseSimSiamPredictionHead",
    "DeepLenseSimSiamPreTrainedModel",
    "DeepLenseSimSiamProjectionHead",
    "simsiam_loss",
]
