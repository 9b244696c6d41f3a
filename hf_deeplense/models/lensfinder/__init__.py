from .configuration_lensfinder import DeepLenseLensFinderConfig
from .modeling_lensfinder import (
    DeepLenseLensFinderForImageClassification,
    DeepLenseLensFinderModel,
    DeepLenseLensFinderPreTrainedModel,
)

__all__ = [
    "DeepLenseLensFinderConfig",
    "DeepLenseLensFinderModel",
    "DeepLenseLensFinderPreTrainedModel",
    "DeepLenseLensFinderForImageClassification",
]
