from .configuration_equivariant import GROUP_ORDERS, DeepLenseEquivariantConfig
from .modeling_equivariant import (
    DeepLenseEquivariantForImageClassification,
    DeepLenseEquivariantForRegression,
    DeepLenseEquivariantModel,
    DeepLenseEquivariantPreTrainedModel,
)

__all__ = [
    "GROUP_ORDERS",
    "DeepLenseEquivariantConfig",
    "DeepLenseEquivariantModel",
    "DeepLenseEquivariantPreTrainedModel",
    "DeepLenseEquivariantForImageClassification",
    "DeepLenseEquivariantForRegression",
]
