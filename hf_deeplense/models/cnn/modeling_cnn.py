"""DeepLense CNN baselines: ResNet-18 and EfficientNet-B0/B1/B2 (built with timm) behind the transformers API.

The DeepLense papers (e.g. Alexander et al. 2020, https://arxiv.org/abs/1909.07346; Varma et al. 2020,
https://arxiv.org/abs/2008.12731) use these ImageNet CNNs, trained from scratch on single-band lensing images.
"""

from dataclasses import dataclass

import timm
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_cnn import DeepLenseCNNConfig


@dataclass
class DeepLenseCNNImageClassifierOutput(ModelOutput):
    """
    Output of the CNN classification and regression heads.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Cross-entropy (classification) or MSE on standardised targets (regression).
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)` or `(batch_size, num_targets)`):
            Class scores before softmax, or regression predictions in the original target units.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            Feature map of each network stage, each of shape `(batch_size, channels, height, width)`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class DeepLenseCNNPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseCNNConfig
    base_model_prefix = "cnn"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = False
    # Auto class name -> "module.Class" for every Auto class of this architecture; set by
    # `hf_deeplense.models.auto.register_model` and written into `config.auto_map` by `save_pretrained`.
    _auto_map: dict[str, str] = {}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """timm's init: He (fan-out) for convolutions, unit BatchNorm, small normal for linear heads, and (ResNets)
        a zero weight for the last BatchNorm of every residual block, so that each block starts as the identity
        (timm's `zero_init_last`; off with `model_args={"zero_init_last": False}`); `DeepLenseCNNModel` marks
        those BatchNorms `zero_init`."""
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            (init.zeros_ if getattr(module, "zero_init", False) else init.ones_)(module.weight)
            init.zeros_(module.bias)
            if getattr(module, "running_mean", None) is not None:
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


class DeepLenseCNNModel(DeepLenseCNNPreTrainedModel):
    """CNN feature extractor: `last_hidden_state` is the final feature map, `pooler_output` its global average."""

    def __init__(self, config: DeepLenseCNNConfig):
        super().__init__(config)
        self.encoder = timm.create_model(
            config.architecture,
            pretrained=False,
            in_chans=config.num_channels,
            num_classes=0,
            drop_path_rate=config.drop_path_rate,
            **(config.model_args or {}),
        )
        self.num_features = self.encoder.num_features  # width of `pooler_output`
        if (config.model_args or {}).get("zero_init_last", True):
            for block in self.encoder.modules():
                if hasattr(block, "zero_init_last"):  # timm's residual blocks: Bottleneck, BasicBlock
                    (block.bn3 if hasattr(block, "bn3") else block.bn2).zero_init = True
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        """Last convolutional stage (timm's deepest `feature_info` module): the Grad-CAM target."""
        return self.encoder.get_submodule(self.encoder.feature_info[-1]["module"])

    @can_return_tuple
    def forward(
        self, pixel_values: torch.FloatTensor, output_hidden_states: bool | None = None
    ) -> BaseModelOutputWithPoolingAndNoAttention:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Input images.
        output_hidden_states (`bool`, *optional*):
            Also return the feature map of every stage.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        hidden_states = None
        if output_hidden_states:
            # (batch, num_features, h, w) before the last 1x1 head conv for EfficientNet; stage outputs as a list
            feature_map, stage_maps = self.encoder.forward_intermediates(pixel_values)
            hidden_states = tuple(stage_maps)
        else:
            feature_map = self.encoder.forward_features(pixel_values)
        pooled = self.encoder.forward_head(feature_map, pre_logits=True)  # (batch, num_features)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=feature_map, pooler_output=pooled, hidden_states=hidden_states
        )


class DeepLenseCNNForImageClassification(DeepLenseCNNPreTrainedModel):
    """CNN with a linear classifier on the pooled features; cross-entropy loss on `labels (batch,)`."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseCNNConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.cnn = DeepLenseCNNModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(self.cnn.num_features, config.num_labels)
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        return self.cnn.get_cam_target_layer()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> DeepLenseCNNImageClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices in `[0, num_labels)`.
        """
        outputs = self.cnn(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(outputs.pooler_output))  # (batch, num_labels)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device).long())
        return DeepLenseCNNImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states
        )


class DeepLenseCNNForRegression(DeepLenseCNNPreTrainedModel):
    """CNN with a linear regression head. The loss is the MSE on targets standardised with the config's
    `target_mean` / `target_std`; `logits` are returned in the original units."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseCNNConfig):
        super().__init__(config)
        self.cnn = DeepLenseCNNModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.regressor = nn.Linear(self.cnn.num_features, config.num_targets)
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        return self.cnn.get_cam_target_layer()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        labels: torch.FloatTensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> DeepLenseCNNImageClassifierOutput:
        r"""
        labels (`torch.FloatTensor` of shape `(batch_size, num_targets)` or `(batch_size,)`, *optional*):
            Regression targets in their original units.
        """
        outputs = self.cnn(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        standardized = self.regressor(self.dropout(outputs.pooler_output))  # (batch, num_targets)
        target_mean = standardized.new_tensor(self.config.target_mean)  # (num_targets,)
        target_std = standardized.new_tensor(self.config.target_std)  # (num_targets,)
        logits = standardized * target_std + target_mean  # (batch, num_targets), original units
        loss = None
        if labels is not None:
            labels = labels.to(standardized.device, standardized.dtype).view(standardized.shape)
            loss = nn.functional.mse_loss(standardized, (labels - target_mean) / target_std)
        return DeepLenseCNNImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states
        )


__all__ = [
    "DeepLenseCNNPreTrainedModel",
    "DeepLenseCNNModel",
    "DeepLenseCNNForImageClassification",
    "DeepLenseCNNForRegression",
]
