"""Masked autoencoder for lensing images: `DeepLenseMAEConfig`, `DeepLenseMAEModel`, `DeepLenseMAEForPreTraining`."""

from .configuration_mae import DeepLenseMAEConfig
from .modeling_mae import DeepLenseMAEForPreTraining, DeepLenseMAEModel, DeepLenseMAEPreTrainedModel

__all__ = [
    "DeepLenseMAEConfig",
    "DeepLenseMAEForPreTraining",
    "DeepLenseMAEModel",
    "DeepLenseMAEPreTrainedModel",
]
