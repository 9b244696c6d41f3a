"""BYOL pre-training of any DeepLense backbone: an online network that predicts the projections of an
exponential-moving-average target network.

- [0] BYOL, 2020, https://arxiv.org/abs/2006.07733 (Grill, Strub, Altche, Tallec, Richemond, et al.)

The online network (`backbone`, `projection_head`, `prediction_head`) is trained by gradients; the target network
(`target_backbone`, `target_projection_head`) receives none and follows the online one by an exponential moving
average with a cosine momentum schedule (`momentum_pairs`, updated after every optimizer step by
`hf_deeplense.training.callbacks.MomentumEncoderCallback`). The loss is the symmetrised normalised mean squared
error of eq. (2) of [0]. The heads at the end of this file keep `backbone` (the online encoder [0] keeps) and
nothing of the target network: `AutoModelForImageClassification.from_pretrained(byol_dir, num_labels=3)` and
`AutoModelForLensRegression.from_pretrained(byol_dir)` fine-tune it.
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

from .configuration_byol import DeepLenseBYOLConfig


@dataclass
class DeepLenseBYOLOutput(ModelOutput):
    """
    Output of [`DeepLenseBYOLModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned with two views and `return_loss=True`):
            `byol_loss(predictions, target_projections_2) + byol_loss(predictions_2, target_projections)`.
        embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Pooled online-backbone features of the first view: the representation used downstream.
        embeddings_2 (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*, returned with two views):
            Pooled online-backbone features of the second view.
        predictions (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Online predictions of the first view.
        predictions_2 (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Online predictions of the second view.
        target_projections (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Target-network projections of the first view (no gradient).
        target_projections_2 (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Target-network projections of the second view (no gradient).
        last_hidden_state (`torch.FloatTensor`):
            The online backbone's `last_hidden_state` for the first view.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Same tensor as `embeddings`.
    """

    loss: torch.FloatTensor | None = None
    embeddings: torch.FloatTensor | None = None
    embeddings_2: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None
    predictions_2: torch.FloatTensor | None = None
    target_projections: torch.FloatTensor | None = None
    target_projections_2: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None


def byol_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Normalised mean squared error of eq. (2) of [0]: `mean over the batch of 2 - 2 cos(prediction, target)`.

    Args:
        predictions (`torch.Tensor` of shape `(batch_size, dim)`): online predictions.
        targets (`torch.Tensor` of shape `(batch_size, dim)`): target projections (detached here).
    """
    cosine = nn.functional.cosine_similarity(
        predictions.float(), targets.detach().float(), dim=-1
    )  # (batch,)
    return (2.0 - 2.0 * cosine).mean()


# Copied from hf_deeplense.models.simclr.modeling_simclr.build_backbone with SimCLR->BYOL
def build_backbone(config: DeepLenseBYOLConfig) -> PreTrainedModel:
    """The base model of `config.backbone_config` (random weights)."""
    backbone_config = config.backbone_config
    # A backbone config loaded as remote code comes from the repository the user trusted to load this model.
    trusted_remote = type(backbone_config).__module__.startswith("transformers_modules.")
    return AutoModel.from_config(backbone_config, trust_remote_code=trusted_remote)


# Copied from hf_deeplense.models.simclr.modeling_simclr.backbone_width
def backbone_width(backbone: PreTrainedModel) -> int:
    """Width of the backbone's `pooler_output` (CNNs: timm's `num_features`; transformers: `hidden_size`)."""
    return getattr(backbone, "num_features", None) or backbone.config.hidden_size


class DeepLenseBYOLMLP(nn.Module):
    """The projector and predictor of [0] (Sec. 3.3): linear -> batch norm -> ReLU -> linear."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.norm = nn.BatchNorm1d(hidden_dim)
        self.activation = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.norm(self.fc1(hidden_states))))  # (batch, output_dim)


class DeepLenseBYOLPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseBYOLConfig
    config: DeepLenseBYOLConfig
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

    # Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRPreTrainedModel._init_weights
    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Heads only: the backbone (a `PreTrainedModel`) is initialised by its own `_init_weights`."""
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    # Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRPreTrainedModel.save_pretrained with SimCLR->BYOL
    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus what remote code needs without hf_deeplense: every Auto class
        of the architecture in `config.auto_map`, and the backbone's code files next to ours, named in
        `config.backbone_config.auto_map` (read back by `DeepLenseBYOLConfig._resolve_backbone_config`)."""
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


class DeepLenseBYOLModel(DeepLenseBYOLPreTrainedModel):
    """BYOL: the online network predicts the target network's projection of the other view."""

    def __init__(self, config: DeepLenseBYOLConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        width = backbone_width(self.backbone)
        self.projection_head = DeepLenseBYOLMLP(width, config.projection_hidden_size, config.projection_dim)
        self.prediction_head = DeepLenseBYOLMLP(
            config.projection_dim, config.projection_hidden_size, config.projection_dim
        )
        self.target_backbone = build_backbone(config)
        self.target_projection_head = DeepLenseBYOLMLP(
            width, config.projection_hidden_size, config.projection_dim
        )
        self.post_init()
        with (
            torch.no_grad()
        ):  # the target starts as a copy of the online network and is never trained by gradients
            for online, target in self.momentum_pairs():
                for online_parameter, target_parameter in zip(online.parameters(), target.parameters()):
                    target_parameter.copy_(online_parameter)
                target.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with the target frozen again (loading makes new parameters)."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) on request
        for _, ema_module in model.momentum_pairs():
            ema_module.requires_grad_(False)
        return loaded

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online module, target module) pairs: `target = m * target + (1 - m) * online` after each step."""
        return [(self.backbone, self.target_backbone), (self.projection_head, self.target_projection_head)]

    def _target_projections(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            embeddings = self.target_backbone(pixel_values, return_dict=True).pooler_output  # (batch, hidden)
            return self.target_projection_head(embeddings)  # (batch, projection_dim)

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        pixel_values_2: torch.Tensor | None = None,
        return_loss: bool = True,
    ) -> DeepLenseBYOLOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                First augmented view of each image (or the images, to embed them).
            pixel_values_2 (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`, *optional*):
                Second augmented view; without it only `embeddings` (and the backbone outputs) are returned.
            return_loss (`bool`, *optional*, defaults to `True`):
                Compute the BYOL loss when both views are given.
        """
        backbone_outputs = self.backbone(pixel_values, return_dict=True)
        embeddings = backbone_outputs.pooler_output  # (batch, hidden)
        loss = embeddings_2 = predictions = predictions_2 = target_projections = target_projections_2 = None
        if pixel_values_2 is not None:
            embeddings_2 = self.backbone(pixel_values_2, return_dict=True).pooler_output  # (batch, hidden)
            predictions = self.prediction_head(self.projection_head(embeddings))  # (batch, projection_dim)
            predictions_2 = self.prediction_head(self.projection_head(embeddings_2))
            target_projections = self._target_projections(pixel_values)
            target_projections_2 = self._target_projections(pixel_values_2)
            if return_loss:  # each view predicts the target's projection of the other (the symmetrised loss)
                loss = byol_loss(predictions, target_projections_2) + byol_loss(
                    predictions_2, target_projections
                )
        output = DeepLenseBYOLOutput(
            loss=loss,
            embeddings=embeddings,
            embeddings_2=embeddings_2,
            predictions=predictions,
            predictions_2=predictions_2,
            target_projections=target_projections,
            target_projections_2=target_projections_2,
            last_hidden_state=backbone_outputs.last_hidden_state,
            pooler_output=embeddings,
        )
        return output


# Copied from hf_deeplense.models.simclr.modeling_simclr._DeepLenseSimCLRLinearHead with SimCLR->BYOL
class _DeepLenseBYOLLinearHead(DeepLenseBYOLPreTrainedModel):
    """Backbone + dropout + one linear layer on the pooled features (a linear probe when the backbone is frozen:
    `hf_deeplense.training.modeling.freeze_backbone`)."""

    def __init__(self, config: DeepLenseBYOLConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)

    def pooled_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.backbone(pixel_values, return_dict=True).pooler_output)  # (batch, hidden)


# Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRForImageClassification with SimCLR->BYOL
class DeepLenseBYOLForImageClassification(_DeepLenseBYOLLinearHead):
    """BYOL backbone with a linear classifier; cross-entropy loss on `labels (batch,)`."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseBYOLConfig):
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


# Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRForRegression with SimCLR->BYOL
class DeepLenseBYOLForRegression(_DeepLenseBYOLLinearHead):
    """BYOL backbone with a linear regression head.

    The head predicts standardised targets `(y - target_mean) / target_std`; `logits` are mapped back to the
    original units and the loss is the MSE of the standardised values, so every target weighs the same.
    """

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseBYOLConfig):
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
    "DeepLenseBYOLForImageClassification",
    "DeepLenseBYOLForRegression",
    "DeepLenseBYOLMLP",
    "DeepLenseBYOLModel",
    "DeepLenseBYOLOutput",
    "DeepLenseBYOLPreTrainedModel",
    "byol_loss",
]
