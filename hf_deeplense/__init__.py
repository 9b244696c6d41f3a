"""hf_deeplense: deep learning on strong gravitational lensing images, the Hugging Face way.

Importing the package registers every DeepLense model, config and image processor with the
transformers Auto classes.
"""

__version__ = "0.1.0"

from .image_processing_lens import LensImageProcessor, register_lens_image_processor  # noqa: E402
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

# every DeepLense model type resolves AutoImageProcessor to LensImageProcessor
register_lens_image_processor(registration.config_class for registration in MODEL_REGISTRY)

__all__ = [
    "MODEL_REGISTRY",
    "AutoModelForLensRegression",
    "DeepLenseViTConfig",
    "DeepLenseViTForImageClassification",
    "DeepLenseViTForRegression",
    "DeepLenseViTModel",
    "LensImageProcessor",
    "ModelRegistration",
    "__version__",
    "register_model",
]
