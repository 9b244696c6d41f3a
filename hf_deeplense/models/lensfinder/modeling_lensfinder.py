"""A lens finder for multi-band survey cut-outs: a small CNN fused with per-image meta features.

Lens-finding challenges give, next to each cut-out, catalogue quantities (magnitudes, colours, sizes);
CNN lens finders reach their best purity when such features join the image representation late, by
concatenation before the classifier (Metcalf et al. 2019, "The strong gravitational lens finding
challenge", https://arxiv.org/abs/1802.03609; Jacobs et al. 2019, https://arxiv.org/abs/1811.03786). Lenses
are rare (~6% here, far fewer in a survey), so the cross-entropy takes per-class weights from the config.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_lensfinder import DeepLenseLensFinderConfig


@dataclass
class DeepLenseLensFinderOutput(ModelOutput):
    """
    Output of [`DeepLenseLensFinderForImageClassification`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Cross-entropy, weighted per class with `config.class_weights`.
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
            Class scores before softmax.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            Feature map after each conv stage, each `(batch_size, channels, height, width)`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class DeepLenseLensFinderConvStage(nn.Module):
    """Two 3x3 conv + BatchNorm + ReLU, then a 2x2 max pool."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.act(self.norm1(self.conv1(hidden_states)))
        hidden_states = self.act(self.norm2(self.conv2(hidden_states)))
        return self.pool(hidden_states)


class DeepLenseLensFinderPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseLensFinderConfig
    base_model_prefix = "lensfinder"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = False
    # Filled by `hf_deeplense.models.auto.register_model`; written into `config.auto_map` by `save_pretrained`.
    _auto_map: dict[str, str] = {}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    # Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTPreTrainedModel.save_pretrained
    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, with every Auto class of the architecture in `config.auto_map`.

        transformers writes only the saved class (and `AutoConfig`) into `auto_map`, so without this a
        classifier saved with remote code would not load through `AutoModel` with `trust_remote_code=True`.
        """
        if self._auto_map:
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **self._auto_map}
        return super().save_pretrained(save_directory, *args, **kwargs)


class DeepLenseLensFinderModel(DeepLenseLensFinderPreTrainedModel):
    """CNN + meta-feature MLP: `last_hidden_state` is the last feature map `(batch, C, h, w)`, `pooler_output
    (batch, hidden_size)` the fused representation of the pooled image features and the meta features."""

    def __init__(self, config: DeepLenseLensFinderConfig):
        super().__init__(config)
        channels = [config.num_channels, *config.conv_channels]
        self.stages = nn.ModuleList(
            [
                DeepLenseLensFinderConvStage(channels[i], channels[i + 1])
                for i in range(len(config.conv_channels))
            ]
        )
        self.meta_encoder = None
        fused_size = config.conv_channels[-1]
        if config.num_meta_features:
            self.meta_encoder = nn.Sequential(
                nn.Linear(config.num_meta_features, config.meta_hidden_size),
                nn.ReLU(),
                nn.Linear(config.meta_hidden_size, config.meta_hidden_size),
                nn.ReLU(),
            )
            fused_size += config.meta_hidden_size
        self.fusion = nn.Sequential(nn.Linear(fused_size, config.hidden_size), nn.ReLU())
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        """The last conv stage: the Grad-CAM target."""
        return self.stages[-1]

    def standardise_meta(self, meta_features: torch.Tensor) -> torch.Tensor:
        """`(meta - meta_mean) / meta_std` with the config's statistics (the config is the single source)."""
        num = self.config.num_meta_features
        mean = meta_features.new_tensor(self.config.meta_mean or [0.0] * num)  # (num_meta_features,)
        std = meta_features.new_tensor(self.config.meta_std or [1.0] * num)  # (num_meta_features,)
        return (meta_features - mean) / std

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        meta_features: torch.FloatTensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Input cut-outs.
        meta_features (`torch.FloatTensor` of shape `(batch_size, num_meta_features)`, *optional*):
            Raw (unstandardised) meta features, in the order of `config.meta_feature_names`; required when
            `config.num_meta_features > 0`.
        output_hidden_states (`bool`, *optional*):
            Also return the feature map of every stage.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        num_meta = self.config.num_meta_features
        if num_meta and (meta_features is None or meta_features.shape[-1] != num_meta):
            shape = None if meta_features is None else tuple(meta_features.shape)
            raise ValueError(
                f"this lens finder fuses {num_meta} meta features {self.config.meta_feature_names or ''}: pass "
                f"meta_features of shape (batch, {num_meta}), got {shape}"
            )
        hidden_states = pixel_values
        all_hidden_states = () if output_hidden_states else None
        for stage in self.stages:
            hidden_states = stage(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        pooled = hidden_states.mean(dim=(2, 3))  # (batch, conv_channels[-1])
        if self.meta_encoder is not None:
            meta = self.meta_encoder(
                self.standardise_meta(meta_features.to(pooled.dtype))
            )  # (batch, meta_hidden)
            pooled = torch.cat([pooled, meta], dim=-1)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=self.fusion(pooled),
            hidden_states=all_hidden_states,
        )


class DeepLenseLensFinderForImageClassification(DeepLenseLensFinderPreTrainedModel):
    """Lens finder with a linear classifier on the fused representation and a class-weighted cross-entropy."""

    def __init__(self, config: DeepLenseLensFinderConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.lensfinder = DeepLenseLensFinderModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        return self.lensfinder.get_cam_target_layer()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        meta_features: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> DeepLenseLensFinderOutput:
        r"""
        meta_features (`torch.FloatTensor` of shape `(batch_size, num_meta_features)`, *optional*):
            See [`DeepLenseLensFinderModel.forward`].
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices (1 = lens).
        """
        outputs = self.lensfinder(
            pixel_values,
            meta_features=meta_features,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))  # (batch, num_labels)
        loss = None
        if labels is not None:
            weight = None
            if self.config.class_weights is not None:
                weight = logits.new_tensor(self.config.class_weights)  # (num_labels,)
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device), weight=weight)
        return DeepLenseLensFinderOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = [
    "DeepLenseLensFinderPreTrainedModel",
    "DeepLenseLensFinderModel",
    "DeepLenseLensFinderForImageClassification",
]
