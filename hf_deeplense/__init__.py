"""hf_deeplense: deep learning on strong gravitational lensing images, the Hugging Face way.

Importing the package registers every DeepLense model, config and image processor with the
transformers Auto classes.
"""

__version__ = "0.1.0"

from . import models  # noqa: E402  (registers every architecture with the Auto classes)
from .image_processing_lens import LensImageProcessor, register_lens_image_processor  # noqa: E402
from .models import *  # noqa: E402, F403  (configs, models, AutoModelForLensRegression: see models.__all__)
from .models import MODEL_REGISTRY  # noqa: E402

# every DeepLense model type resolves AutoImageProcessor to LensImageProcessor
register_lens_image_processor(registration.config_class for registration in MODEL_REGISTRY)

__all__ = ["LensImageProcessor", "__version__", *models.__all__]
