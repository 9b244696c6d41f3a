"""SimCLR contrastive pre-training of any DeepLense backbone, and the heads fine-tuned from it.

- [0] SimCLR, 2020, https://arxiv.org/abs/2002.05709 (Chen, Kornblith, Norouzi, Hinton)

The backbone is built from `config.backbone_config` through `AutoModel`: with hf_deeplense imported it is the
registered class; as remote code (hf_deeplense not installed) it is the backbone code that `save_pretrained`
stored next to the weights (`modeling_<backbone>.py`, `configuration_<backbone>.py`, named in
`config.backbone_config.auto_map`). The heads keep the backbone under the same name (`backbone.*`), so
`AutoModelForImageClassification.from_pretrained(simclr_dir, num_labels=3)` fine-tunes the pre-trained encoder.
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

from .configuration_simclr import DeepLenseSimCLRConfig
from .loss_simclr import nt_xent_loss


@dataclass
class DeepLenseSimCLROutput(ModelOutput):
    """
    Output of [`DeepLenseSimCLRModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned with two views and `return_loss=True`):
            NT-Xent loss between the projections of the two views.
        embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Pooled backbone features of the first view: the representation used downstream.
        projections (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Projection-head output of the first view.
        embeddings_2 (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*, returned with two views):
            Pooled backbone features of the second view.
        projections_2 (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*, returned with two views):
            Projection-head output of the second view.
        last_hidden_state (`torch.FloatTensor`):
            The backbone's `last_hidden_state` for the first view (feature map or tokens).
        pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Same tensor as `embeddings`: the base-model output every DeepLense `AutoModel` returns.
    """

    loss: torch.FloatTensor | None = None
    embeddings: torch.FloatTensor | None = None
    projections: torch.FloatTensor | None = None
    embeddings_2: torch.FloatTensor | None = None
    projections_2: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None


def build_backbone(config: DeepLenseSimCLRConfig) -> PreTrainedModel:
    """The base model of `config.backbone_config` (random weights)."""
    backbone_config = config.backbone_config
    # A backbone config loaded as remote code comes from the repository the user trusted to load this model.
    trusted_remote = type(backbone_config).__module__.startswith("transformers_modules.")
    return AutoModel.from_config(backbone_config, trust_remote_code=trusted_remote)


def backbone_width(backbone: PreTrainedModel) -> int:
    """Width of the backbone's `pooler_output` (CNNs: timm's `num_features`; transformers: `hidden_size`)."""
    return getattr(backbone, "num_features", None) or backbone.config.hidden_size


class DeepLenseSimCLRProjectionHead(nn.Module):
    """The SimCLR paper's projection head g(.) (Sec. 2.1 of [0]: an MLP with one hidden layer and a ReLU),
    with the batch norm of the paper's reference implementation: linear -> batch norm -> ReLU -> linear."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim, bias=False)
        self.norm = nn.BatchNorm1d(hidden_dim)
        self.activation = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.norm(self.fc1(embeddings))))  # (batch, output_dim)


class DeepLenseSimCLRPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseSimCLRConfig
    config: DeepLenseSimCLRConfig
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
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus what remote code needs without hf_deeplense: every Auto class
        of the architecture in `config.auto_map`, and the backbone's code files next to ours, named in
        `config.backbone_config.auto_map` (read back by `DeepLenseSimCLRConfig._resolve_backbone_config`)."""
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

    def get_cam_target_layer(self) -> nn.Module | None:
        """The backbone's Grad-CAM target (None for a ViT backbone)."""
        return self.backbone.get_cam_target_layer()


class DeepLenseSimCLRModel(DeepLenseSimCLRPreTrainedModel):
    """SimCLR: backbone f(.) and projection head g(.); the NT-Xent loss pulls the projections of two augmented
    views of the same image together and pushes those of different images apart."""

    def __init__(self, config: DeepLenseSimCLRConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.projection_head = DeepLenseSimCLRProjectionHead(
            backbone_width(self.backbone), config.projection_hidden_size, config.projection_dim
        )
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        pixel_values_2: torch.Tensor | None = None,
        return_loss: bool = True,
    ) -> DeepLenseSimCLROutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                First augmented view of each image (or the images, to embed them).
            pixel_values_2 (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`, *optional*):
                Second augmented view; without it only `embeddings` (and the backbone outputs) are returned.
            return_loss (`bool`, *optional*, defaults to `True`):
                Compute the NT-Xent loss when both views are given.
        """
        backbone_outputs = self.backbone(pixel_values, return_dict=True)
        embeddings = backbone_outputs.pooler_output  # (batch, hidden)
        loss = projections = embeddings_2 = projections_2 = None
        if pixel_values_2 is not None:
            embeddings_2 = self.backbone(pixel_values_2, return_dict=True).pooler_output  # (batch, hidden)
            projections = self.projection_head(embeddings)  # (batch, projection_dim)
            projections_2 = self.projection_head(embeddings_2)
            if return_loss:
                # negatives from every rank under data parallelism: the loss of the global batch
                loss = nt_xent_loss(
                    projections, projections_2, self.config.temperature, gather_distributed=True
                )
        output = DeepLenseSimCLROutput(
            loss=loss,
            embeddings=embeddings,
            projections=projections,
            embeddings_2=embeddings_2,
            projections_2=projections_2,
            last_hidden_state=backbone_outputs.last_hidden_state,
            pooler_output=embeddings,
        )
        return output


class _DeepLenseSimCLRLinearHead(DeepLenseSimCLRPreTrainedModel):
    """Backbone + dropout + one linear layer on the pooled features (a linear probe when the backbone is frozen:
    `hf_deeplense.training.modeling.freeze_backbone`)."""

    def __init__(self, config: DeepLenseSimCLRConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)

    def pooled_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.backbone(pixel_values, return_dict=True).pooler_output)  # (batch, hidden)


class DeepLenseSimCLRForImageClassification(_DeepLenseSimCLRLinearHead):
    """SimCLR backbone with a linear classifier; cross-entropy loss on `labels (batch,)`."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseSimCLRConfig):
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


class DeepLenseSimCLRForRegression(_DeepLenseSimCLRLinearHead):
    """SimCLR backbone with a linear regression head.

    The head predicts standardised targets `(y - target_mean) / target_std`; `logits` are mapped back to the
    original units and the loss is the MSE of the standardised values, so every target weighs the same.
    """

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseSimCLRConfig):
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
    "DeepLenseSimCLRForImageClassification",
    "DeepLenseSimCLRForRegression",
    "DeepLenseSimCLRModel",
    "DeepLenseSimCLROutput",
    "DeepLenseSimCLRPreTrainedModel",
    "DeepLenseSimCLRProjectionHead",
]
