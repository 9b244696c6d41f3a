from .configuration_simclr import SIMCLR_BACKBONE_TYPES, DeepLenseSimCLRConfig
from .loss_simclr import NTXentLoss, nt_xent_loss
from .modeling_simclr import (
    DeepLenseSimCLRForImageClassification,
    DeepLenseSimCLRForRegression,
    DeepLenseSimCLRModel,
    DeepLenseSimCLROutput,
    DeepLenseSimCLRPreTrainedModel,
)

__all__ = [
    "SIMCLR_BACKBONE_TYPES",
    "DeepLenseSimCLRConfig",
    "DeepLenseSimCLRModel",
    "DeepLenseSimCLROutput",
    "DeepLenseSimCLRPreTrainedModel",
    "DeepLenseSimCLRForImageClassification",
    "DeepLenseSimCLRForRegression",
    "NTXentLoss",
    "nt_xent_loss",
]
