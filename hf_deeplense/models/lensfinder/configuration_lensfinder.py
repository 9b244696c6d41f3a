"""DeepLense lens-finder configuration: a small CNN on multi-band cut-outs fused with per-image meta features."""

from transformers import PreTrainedConfig


class DeepLenseLensFinderConfig(PreTrainedConfig):
    r"""Configuration of [`DeepLenseLensFinderModel`]: lens vs non-lens from an image and, optionally, a vector of
    per-image meta features (catalogue photometry, colours, ...), fused by concatenation before the classifier.

    With `num_meta_features=0` the model is image-only; the two variants differ only in the meta branch, so
    they compare the value of the meta features at equal image capacity.

    Args:
        num_channels (`int`, *optional*, defaults to 1):
            Image bands (3 for g, r, i cut-outs).
        image_size (`int`, *optional*, defaults to 64):
            Expected input size (informative: the CNN pools globally and accepts any size).
        conv_channels (`list[int]`, *optional*, defaults to `[16, 32, 64]`):
            Channels of each conv stage (two 3x3 conv + BatchNorm + ReLU, then a 2x2 max pool).
        num_meta_features (`int`, *optional*, defaults to 0):
            Length of the `meta_features` vector (0: image only).
        meta_feature_names (`list[str]`, *optional*):
            Names of the meta features, in order (recorded so a saved model says what it expects).
        meta_mean (`list[float]`, *optional*):
            Per-feature mean for standardising `meta_features` (defaults to 0).
        meta_std (`list[float]`, *optional*):
            Per-feature standard deviation (defaults to 1); positive.
        meta_hidden_size (`int`, *optional*, defaults to 32):
            Width of the meta-feature MLP.
        hidden_size (`int`, *optional*, defaults to 64):
            Width of the fused representation (`pooler_output`).
        classifier_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout before the classifier.
        class_weights (`list[float]`, *optional*):
            Per-class weights of the cross-entropy (class imbalance: e.g. inverse class frequencies); None: unweighted.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
        num_labels (`int`, *optional*, defaults to 2):
            Number of classes (`non_lens`, `lens`).

    Example:

    ```python
    >>> from hf_deeplense.models.lensfinder import DeepLenseLensFinderConfig, DeepLenseLensFinderForImageClassification
    >>> config = DeepLenseLensFinderConfig(num_channels=3, num_meta_features=6, class_weights=[0.53, 8.3])
    >>> model = DeepLenseLensFinderForImageClassification(config)
    ```
    """

    model_type = "deeplense_lensfinder"

    num_channels: int = 1
    image_size: int = 64
    conv_channels: list[int] | None = None
    num_meta_features: int = 0
    meta_feature_names: list[str] | None = None
    meta_mean: list[float] | None = None
    meta_std: list[float] | None = None
    meta_hidden_size: int = 32
    hidden_size: int = 64
    classifier_dropout_prob: float = 0.0
    class_weights: list[float] | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if self.id2label is None:  # a saved classifier holds its classes in id2label, not num_labels
            kwargs.setdefault("num_labels", 2)
        if self.conv_channels is None:
            self.conv_channels = [16, 32, 64]
        self.conv_channels = [int(channels) for channels in self.conv_channels]
        if not self.conv_channels or min(self.conv_channels) < 1:
            raise ValueError(
                f"conv_channels ({self.conv_channels}) must be a non-empty list of positive ints"
            )
        for name in ("num_channels", "image_size", "meta_hidden_size", "hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} ({getattr(self, name)}) must be >= 1")
        if self.num_meta_features < 0:
            raise ValueError(f"num_meta_features ({self.num_meta_features}) must be >= 0")
        for name in ("meta_feature_names", "meta_mean", "meta_std"):
            value = getattr(self, name)
            if value is not None and len(value) != self.num_meta_features:
                raise ValueError(
                    f"{name} has {len(value)} entries but num_meta_features is {self.num_meta_features}"
                )
        if self.meta_std is not None and any(std <= 0 for std in self.meta_std):
            raise ValueError(f"meta_std ({self.meta_std}) must be positive")
        if not 0.0 <= self.classifier_dropout_prob < 1.0:
            raise ValueError(
                f"classifier_dropout_prob must lie in [0, 1), got {self.classifier_dropout_prob}"
            )
        super().__post_init__(**kwargs)
        if self.class_weights is not None:
            if len(self.class_weights) != self.num_labels:
                raise ValueError(
                    f"class_weights has {len(self.class_weights)} entries but num_labels is {self.num_labels}"
                )
            if any(weight <= 0 for weight in self.class_weights):
                raise ValueError(f"class_weights ({self.class_weights}) must be positive")


__all__ = ["DeepLenseLensFinderConfig"]
