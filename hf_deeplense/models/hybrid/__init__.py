from .configuration_hybrid import DeepLenseHybridConfig
from .modeling_hybrid import (
    DeepLenseHybridForImageClassification,
    DeepLenseHybridForRegression,
    DeepLenseHybridModel,
    DeepLenseHybridPreTrainedModel,
)

__all__ = [
    "DeepLenseHybridConfig",
    "DeepLenseHybridModel",
    "DeepLenseHybridPreTrainedModel",
    "DeepLenseHybridForImageClassification",
    "DeepLenseHybridForRegression",
]
