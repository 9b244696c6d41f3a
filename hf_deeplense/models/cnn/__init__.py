from .configuration_cnn import CNN_ARCHITECTURES, DeepLenseCNNConfig
from .modeling_cnn import (
    DeepLenseCNNForImageClassification,
    DeepLenseCNNForRegression,
    DeepLenseCNNModel,
    DeepLenseCNNPreTrainedModel,
)

__all__ = [
    "CNN_ARCHITECTURES",
    "DeepLenseCNNConfig",
    "DeepLenseCNNModel",
    "DeepLenseCNNPreTrainedModel",
    "DeepLenseCNNForImageClassification",
    "DeepLenseCNNForRegression",
]
