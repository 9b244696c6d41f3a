"""SimSiam pre-training of any DeepLense backbone: a siamese network whose predictor regresses the stop-gradient
projection of the other view; no negatives, no momentum encoder.

- [0] SimSiam, 2021, https://arxiv.org/abs/2011.10566 (Chen, He)

The loss is `D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2` with `D` the negative cosine similarity (eq. (3)-(4)
of [0]); the stop-gradient is what prevents collapse. The heads at the end of this file keep `backbone`:
`AutoModelForImageClassification.from_pretrained(simsiam_dir, num_labels=3)` and
`AutoModelForLensRegression.from_pretrained(simsiam_dir)` fine-tune it.
"""

import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_outputs import ImageClassifierOutput, ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_simsiam import DeepLenseSimSiamConfig


@dataclass
class DeepLenseSimSiamOutput(ModelOutput):
    """
    Output of [`DeepLenseSimSiamModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned with two views and `return_loss=True`):
            The symmetrised negative cosine similarity, in [-1, 1].
        embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Pooled backbone features of the first view: the representation used downstream.
        embeddings_2 (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*, returned with two views):
            Pooled backbone features of the second view.
        projections (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Projector output `z1` of the first view.
        projections_2 (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Projector output `z2` of the second view.
        predictions (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Predictor output `p1` of the first view.
        predictions_2 (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Predictor output `p2` of the second view.
        last_hidden_state (`torch.FloatTensor`):
            The backbone's `last_hidden_state` for the first view.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Same tensor as `embeddings`.
    """

    loss: torch.FloatTensor | None = None
    embeddings: torch.FloatTensor | None = None
    embeddings_2: torch.FloatTensor | None = None
    projections: torch.FloatTensor | None = None
    projections_2: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None
    predictions_2: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None


def simsiam_loss(
    predictions: torch.Tensor,
    projections_2: torch.Tensor,
    predictions_2: torch.Tensor,
    projections: torch.Tensor,
) -> torch.Tensor:
    """`D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2`, `D(p, z) = -mean over the batch of cos(p, z)` (eq. (4) of [0]).

    Args:
        predictions, predictions_2 (`torch.Tensor` of shape `(batch_size, dim)`): `p1`, `p2`.
        projections, projections_2 (`torch.Tensor` of shape `(batch_size, dim)`): `z1`, `z2` (no gradient flows into them).
    """

    def negative_cosine(prediction: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
        return -nn.functional.cosine_similarity(
            prediction.float(), projection.detach().float(), dim=-1
        ).mean()

    return negative_cosine(predictions, projections_2) / 2 + negative_cosine(predictions_2, projections) / 2


# Copied from hf_deeplense.models.simclr.modeling_simclr.build_backbone with SimCLR->SimSiam
def build_backbone(config: DeepLenseSimSiamConfig) -> PreTrainedModel:
    """The base model of `config.backbone_config` (random weights)."""
    backbone_config = config.backbone_config
    # A backbone config loaded as remote code comes from the repository the user trusted to load this model.
    trusted_remote = type(backbone_config).__module__.startswith("transformers_modules.")
    return AutoModel.from_config(backbone_config, trust_remote_code=trusted_remote)


# Copied from hf_deeplense.models.simclr.modeling_simclr.backbone_width
def backbone_width(backbone: PreTrainedModel) -> int:
    """Width of the backbone's `pooler_output` (CNNs: timm's `num_features`; transformers: `hidden_size`)."""
    return getattr(backbone, "num_features", None) or backbone.config.hidden_size


class DeepLenseSimSiamProjectionHead(nn.Module):
    """The projector of [0] (Sec. 4): 3 linear layers, batch norm on each (the last without affine parameters),
    ReLU between them."""

    def __init__(self, input_dim: int, projection_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, projection_dim, bias=False)
        self.norm1 = nn.BatchNorm1d(projection_dim)
        self.fc2 = nn.Linear(projection_dim, projection_dim, bias=False)
        self.norm2 = nn.BatchNorm1d(projection_dim)
        self.fc3 = nn.Linear(projection_dim, projection_dim, bias=False)
        self.norm3 = nn.BatchNorm1d(projection_dim, affine=False)
        self.activation = nn.ReLU()

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.norm1(self.fc1(embeddings)))
        hidden = self.activation(self.norm2(self.fc2(hidden)))
        return self.norm3(self.fc3(hidden))  # (batch, projection_dim)


class DeepLenseSimSiamPredictionHead(nn.Module):
    """The predictor of [0] (Sec. 4): a bottleneck MLP, linear -> batch norm -> ReLU -> linear."""

    def __init__(self, projection_dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(projection_dim, hidden_dim, bias=False)
        self.norm = nn.BatchNorm1d(hidden_dim)
        self.activation = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, projection_dim)

    def forward(self, projections: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.norm(self.fc1(projections))))  # (batch, projection_dim)


class DeepLenseSimSiamPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseSimSiamConfig
    config: DeepLenseSimSiamConfig
    base_model_prefix = "backbone"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # Auto class name -> "module.Class" for every Auto class of this architecture; set by
    # `hf_deeplense.models.auto.register_model` and written into `config.auto_map` by `save_pretrained`.
    _auto_map: dict[str, str] = {}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Heads only: the backbone (a `PreTrainedModel`) is initialised by its own `_init_weights`."""
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            if module.affine:  # the projector's output batch norm has no affine parameters
                init.ones_(module.weight)
                init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    # Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRPreTrainedModel.save_pretrained with SimCLR->SimSiam
    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus what remote code needs without hf_deeplense: every Auto class
        of the architecture in `config.auto_map`, and the backbone's code files next to ours, named in
        `config.backbone_config.auto_map` (read back by `DeepLenseSimSiamConfig._resolve_backbone_config`)."""
        if self._auto_map:
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **self._auto_map}
        backbone_auto_map = getattr(self.backbone, "_auto_map", None) or getattr(
            self.config.backbone_config, "auto_map", None
        )
        if self._auto_class is not None and backbone_auto_map:
            self.config.backbone_config.auto_map = dict(backbone_auto_map)
            os.makedirs(save_directory, exist_ok=True)
            custom_object_save(
                self.backbone, save_directory
            )  # modeling_<backbone>.py and its relative imports
        return super().save_pretrained(save_directory, *args, **kwargs)

    # Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRPreTrainedModel.get_cam_target_layer
    def get_cam_target_layer(self) -> nn.Module | None:
        """The backbone's Grad-CAM target (None for a ViT backbone)."""
        return self.backbone.get_cam_target_layer()


class DeepLenseSimSiamModel(DeepLenseSimSiamPreTrainedModel):
    """SimSiam: backbone, projector and predictor shared by both views; the predictor of one view regresses the
    stop-gradient projection of the other."""

    def __init__(self, config: DeepLenseSimSiamConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.projection_head = DeepLenseSimSiamProjectionHead(
            backbone_width(self.backbone), config.projection_dim
        )
        self.prediction_head = DeepLenseSimSiamPredictionHead(
            config.projection_dim, config.prediction_hidden_size
        )
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        pixel_values_2: torch.Tensor | None = None,
        return_loss: bool = True,
    ) -> DeepLenseSimSiamOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                First augmented view of each image (or the images, to embed them).
            pixel_values_2 (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`, *optional*):
                Second augmented view; without it only `embeddings` (and the backbone outputs) are returned.
            return_loss (`bool`, *optional*, defaults to `True`):
                Compute the SimSiam loss when both views are given.
        """
        backbone_outputs = self.backbone(pixel_values, return_dict=True)
        embeddings = backbone_outputs.pooler_output  # (batch, hidden)
        loss = embeddings_2 = projections = projections_2 = predictions = predictions_2 = None
        if pixel_values_2 is not None:
            embeddings_2 = self.backbone(pixel_values_2, return_dict=True).pooler_output  # (batch, hidden)
            projections = self.projection_head(embeddings)  # (batch, projection_dim)
            projections_2 = self.projection_head(embeddings_2)
            predictions = self.prediction_head(projections)  # (batch, projection_dim)
            predictions_2 = self.prediction_head(projections_2)
            if return_loss:
                loss = simsiam_loss(predictions, projections_2, predictions_2, projections)
        output = DeepLenseSimSiamOutput(
            loss=loss,
            embeddings=embeddings,
            embeddings_2=embeddings_2,
            projections=projections,
            projections_2=projections_2,
            predictions=predictions,
            predictions_2=predictions_2,
            last_hidden_state=backbone_outputs.last_hidden_state,
            pooler_output=embeddings,
        )
        return output


# Copied from hf_deeplense.models.simclr.modeling_simclr._DeepLenseSimCLRLinearHead with SimCLR->SimSiam
class _DeepLenseSimSiamLinearHead(DeepLenseSimSiamPreTrainedModel):
    """Backbone + dropout + one linear layer on the pooled features (a linear probe when the backbone is frozen:
    `hf_deeplense.training.modeling.freeze_backbone`)."""

    def __init__(self, config: DeepLenseSimSiamConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)

    def pooled_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.backbone(pixel_values, return_dict=True).pooler_output)  # (batch, hidden)


# Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRForImageClassification with SimCLR->SimSiam
class DeepLenseSimSiamForImageClassification(_DeepLenseSimSiamLinearHead):
    """SimSiam backbone with a linear classifier; cross-entropy loss on `labels (batch,)`."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseSimSiamConfig):
        super().__init__(config)
        self.classifier = nn.Linear(backbone_width(self.backbone), config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None
    ) -> ImageClassifierOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                The images.
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Class indices in `[0, num_labels)`; if given, `loss` is the mean cross-entropy.
        """
        logits = self.classifier(self.pooled_features(pixel_values))  # (batch, num_labels)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device).long())
        output = ImageClassifierOutput(loss=loss, logits=logits)
        return output


# Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRForRegression with SimCLR->SimSiam
class DeepLenseSimSiamForRegression(_DeepLenseSimSiamLinearHead):
    """SimSiam backbone with a linear regression head.

    The head predicts standardised targets `(y - target_mean) / target_std`; `logits` are mapped back to the
    original units and the loss is the MSE of the standardised values, so every target weighs the same.
    """

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseSimSiamConfig):
        super().__init__(config)
        self.regressor = nn.Linear(backbone_width(self.backbone), config.num_targets)
        self.post_init()

    @can_return_tuple
    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None
    ) -> ImageClassifierOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                The images.
            labels (`torch.FloatTensor` of shape `(batch_size, num_targets)` or `(batch_size,)`, *optional*):
                Targets in their original units; if given, `loss` is the MSE of the standardised targets.
        """
        standardized = self.regressor(self.pooled_features(pixel_values))  # (batch, num_targets)
        target_mean = standardized.new_tensor(self.config.target_mean)  # (num_targets,)
        target_std = standardized.new_tensor(self.config.target_std)  # (num_targets,)
        logits = standardized * target_std + target_mean  # (batch, num_targets), original units
        loss = None
        if labels is not None:
            labels = labels.to(standardized.device, standardized.dtype).view(standardized.shape)
            loss = nn.functional.mse_loss(standardized, (labels - target_mean) / target_std)
        output = ImageClassifierOutput(loss=loss, logits=logits)
        return output


__all__ = [
    "DeepLenseSimSiamForImageClassification",
    "DeepLenseSimSiamForRegression",
    "DeepLenseSimSiamModel",
    "DeepLenseSimSiamOutput",
    "DeepLenseSimSiamPreTrainedModel",
    "DeepLenseSimSiamPredictionHead",
    "DeepLenseSimSiamProjectionHead",
    "simsiam_loss",
]
