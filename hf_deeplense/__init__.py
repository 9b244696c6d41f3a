"""hf_deeplense: deep learning on strong gravitational lensing images, the Hugging Face way.

Importing the package registers every DeepLense model, config and image processor with the
transformers Auto classes.
"""

__version__ = "0.1.0"

from .models import (  # noqa: E402  (registers the models with the Auto classes)
    MODEL_REGISTRY,
    AutoModelForLensRegression,
    DeepLenseViTConfig,
    DeepLenseViTForImageClassification,
    DeepLenseViTForRegression,
    DeepLenseViTModel,
    ModelRegistration,
    register_model,
)

__all__ = [
    "MODEL_REGISTRY",
    "AutoModelForLensRegression",
    "DeepLenseViTConfig",
    "DeepLenseViTForImageClassification",
    "DeepLenseViTForRegression",
    "DeepLenseViTModel",
    "ModelRegistration",
    "__version__",
    "register_model",
]
