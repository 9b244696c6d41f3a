"""DeepLense model architectures, registered with the transformers Auto classes on import.

To add an architecture: create `hf_deeplense/models/<arch>/` and add ONE line to `MODEL_REGISTRY` below
(plus its imports), then a tester in `tests/models/test_<arch>.py` (see `tests/models/test_modeling_common.py`).
"""

from .auto import (
    AUTO_CLASSES,
    TASK_AUTO_CLASSES,
    AutoModelForLensRegression,
    ModelRegistration,
    register_model,
    task_of,
)
from .byol import (
    DeepLenseBYOLConfig,
    DeepLenseBYOLForImageClassification,
    DeepLenseBYOLForRegression,
    DeepLenseBYOLModel,
)
from .cnn import (
    DeepLenseCNNConfig,
    DeepLenseCNNForImageClassification,
    DeepLenseCNNForRegression,
    DeepLenseCNNModel,
)
from .dino import (
    DeepLenseDINOConfig,
    DeepLenseDINOForImageClassification,
    DeepLenseDINOForRegression,
    DeepLenseDINOModel,
)
from .equivariant import (
    DeepLenseEquivariantConfig,
    DeepLenseEquivariantForImageClassification,
    DeepLenseEquivariantForRegression,
    DeepLenseEquivariantModel,
)
from .hybrid import (
    DeepLenseHybridConfig,
    DeepLenseHybridForImageClassification,
    DeepLenseHybridForRegression,
    DeepLenseHybridModel,
)
from .lensfinder import (
    DeepLenseLensFinderConfig,
    DeepLenseLensFinderForImageClassification,
    DeepLenseLensFinderModel,
)
from .mae import DeepLenseMAEConfig, DeepLenseMAEForPreTraining, DeepLenseMAEModel
from .simclr import (
    DeepLenseSimCLRConfig,
    DeepLenseSimCLRForImageClassification,
    DeepLenseSimCLRForRegression,
    DeepLenseSimCLRModel,
)
from .simsiam import (
    DeepLenseSimSiamConfig,
    DeepLenseSimSiamForImageClassification,
    DeepLenseSimSiamForRegression,
    DeepLenseSimSiamModel,
)
from .vit import (
    DeepLenseViTConfig,
    DeepLenseViTForImageClassification,
    DeepLenseViTForRegression,
    DeepLenseViTModel,
)

# One line per architecture.
MODEL_REGISTRY: list[ModelRegistration] = [
    ModelRegistration(
        DeepLenseViTConfig,
        DeepLenseViTModel,
        image_classification_class=DeepLenseViTForImageClassification,
        regression_class=DeepLenseViTForRegression,
    ),
    ModelRegistration(DeepLenseMAEConfig, DeepLenseMAEModel, pretraining_class=DeepLenseMAEForPreTraining),
    ModelRegistration(
        DeepLenseEquivariantConfig,
        DeepLenseEquivariantModel,
        image_classification_class=DeepLenseEquivariantForImageClassification,
        regression_class=DeepLenseEquivariantForRegression,
    ),
    ModelRegistration(
        DeepLenseCNNConfig,
        DeepLenseCNNModel,
        image_classification_class=DeepLenseCNNForImageClassification,
        regression_class=DeepLenseCNNForRegression,
    ),
    ModelRegistration(
        DeepLenseHybridConfig,
        DeepLenseHybridModel,
        image_classification_class=DeepLenseHybridForImageClassification,
        regression_class=DeepLenseHybridForRegression,
    ),
    # The SimCLR model (backbone + projection head + NT-Xent loss) is both the base model and the pre-training model.
    ModelRegistration(
        DeepLenseSimCLRConfig,
        DeepLenseSimCLRModel,
        image_classification_class=DeepLenseSimCLRForImageClassification,
        regression_class=DeepLenseSimCLRForRegression,
        pretraining_class=DeepLenseSimCLRModel,
    ),
    # Self-supervised models whose heads keep the pre-trained encoder (`backbone`: DINO's teacher, BYOL's online
    # network), so `AutoModelForImageClassification.from_pretrained(ssl_dir)` fine-tunes it, as for SimCLR.
    ModelRegistration(
        DeepLenseDINOConfig,
        DeepLenseDINOModel,
        image_classification_class=DeepLenseDINOForImageClassification,
        regression_class=DeepLenseDINOForRegression,
        pretraining_class=DeepLenseDINOModel,
    ),
    ModelRegistration(
        DeepLenseBYOLConfig,
        DeepLenseBYOLModel,
        image_classification_class=DeepLenseBYOLForImageClassification,
        regression_class=DeepLenseBYOLForRegression,
        pretraining_class=DeepLenseBYOLModel,
    ),
    ModelRegistration(
        DeepLenseSimSiamConfig,
        DeepLenseSimSiamModel,
        image_classification_class=DeepLenseSimSiamForImageClassification,
        regression_class=DeepLenseSimSiamForRegression,
        pretraining_class=DeepLenseSimSiamModel,
    ),
    ModelRegistration(
        DeepLenseLensFinderConfig,
        DeepLenseLensFinderModel,
        image_classification_class=DeepLenseLensFinderForImageClassification,
    ),
]

for _registration in MODEL_REGISTRY:
    register_model(_registration)

__all__ = [
    "AUTO_CLASSES",
    "MODEL_REGISTRY",
    "TASK_AUTO_CLASSES",
    "AutoModelForLensRegression",
    "DeepLenseBYOLConfig",
    "DeepLenseBYOLForImageClassification",
    "DeepLenseBYOLForRegression",
    "DeepLenseBYOLModel",
    "DeepLenseCNNConfig",
    "DeepLenseCNNForImageClassification",
    "DeepLenseCNNForRegression",
    "DeepLenseCNNModel",
    "DeepLenseDINOConfig",
    "DeepLenseDINOForImageClassification",
    "DeepLenseDINOForRegression",
    "DeepLenseDINOModel",
    "DeepLenseEquivariantConfig",
    "DeepLenseEquivariantForImageClassification",
    "DeepLenseEquivariantForRegression",
    "DeepLenseEquivariantModel",
    "DeepLenseHybridConfig",
    "DeepLenseHybridForImageClassification",
    "DeepLenseHybridForRegression",
    "DeepLenseHybridModel",
    "DeepLenseLensFinderConfig",
    "DeepLenseLensFinderForImageClassification",
    "DeepLenseLensFinderModel",
    "DeepLenseMAEConfig",
    "DeepLenseMAEForPreTraining",
    "DeepLenseMAEModel",
    "DeepLenseSimCLRConfig",
    "DeepLenseSimCLRForImageClassification",
    "DeepLenseSimCLRForRegression",
    "DeepLenseSimCLRModel",
    "DeepLenseSimSiamConfig",
    "DeepLenseSimSiamForImageClassification",
    "DeepLenseSimSiamForRegression",
    "DeepLenseSimSiamModel",
    "DeepLenseViTConfig",
    "DeepLenseViTForImageClassification",
    "DeepLenseViTForRegression",
    "DeepLenseViTModel",
    "ModelRegistration",
    "register_model",
    "task_of",
]
