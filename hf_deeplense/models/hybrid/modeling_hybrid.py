"""DeepLense hybrid CNN-transformer: a convolutional stem whose feature-map positions are the tokens of a ViT.

The convolutional stem gives the transformer the locality bias that helps on small lensing data sets; the
encoder blocks are those of [`DeepLenseViTModel`] (copied, see `# Copied from`).

- [0] Dosovitskiy et al., An Image is Worth 16x16 Words, 2020, https://arxiv.org/abs/2010.11929 (hybrid
  architecture, sec. 3.1)
- [1] Xiao et al., Early Convolutions Help Transformers See Better, 2021, https://arxiv.org/abs/2106.14881
"""

import math
from collections.abc import Callable

import timm
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils.generic import can_return_tuple

from .configuration_hybrid import DeepLenseHybridConfig

# Outputs: the heads return transformers' `BaseModelOutputWithPooling` (base model) and
# `ImageClassifierOutput` (classification and regression; for regression `logits` holds the predicted
# targets in their original units, shape `(batch_size, num_targets)`).


class DeepLenseHybridConvBlock(nn.Module):
    """3x3 convolution of stride 2, batch norm, ReLU: halves the feature map (rounding up)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.activation = nn.ReLU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(hidden_states)))


class DeepLenseHybridConvStem(nn.Module):
    """The default stem: `len(config.stem_channels)` conv blocks of stride 2."""

    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__()
        channels = [config.num_channels, *config.stem_channels]
        self.blocks = nn.ModuleList(
            DeepLenseHybridConvBlock(in_channels, out_channels)
            for in_channels, out_channels in zip(channels[:-1], channels[1:])
        )
        self.out_channels = channels[-1]
        self.num_halvings = len(config.stem_channels)

    def last_conv_block(self) -> nn.Module:
        return self.blocks[-1]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden_states = pixel_values
        for block in self.blocks:
            hidden_states = block(hidden_states)
        return hidden_states  # (batch, stem_channels[-1], ceil(H / 2**n), ceil(W / 2**n))


class DeepLenseHybridTimmStem(nn.Module):
    """The first stages of a timm CNN (`features_only=True`, random weights) up to `config.stem_feature_index`."""

    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__()
        self.backbone = timm.create_model(
            config.stem_backbone,
            pretrained=False,
            features_only=True,
            out_indices=(config.stem_feature_index,),
            in_chans=config.num_channels,
        )
        self.out_channels = self.backbone.feature_info.channels()[-1]
        self.num_halvings = int(math.log2(self.backbone.feature_info.reduction()[-1]))

    def last_conv_block(self) -> nn.Module:
        name = self.backbone.feature_info.module_name()[-1]
        try:
            return self.backbone.get_submodule(name)
        except AttributeError:  # timm's FeatureDictNet flattens "a.b" into "a_b"
            return self.backbone.get_submodule(name.replace(".", "_"))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixel_values)[-1]  # (batch, out_channels, h, w)


class DeepLenseHybridEmbeddings(nn.Module):
    """Conv stem -> `patch_size` projection to `hidden_size` -> one token per feature-map position, then
    CLS token + learned position embeddings."""

    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__()
        self.stem = (
            DeepLenseHybridTimmStem(config) if config.stem_backbone else DeepLenseHybridConvStem(config)
        )
        self.num_channels = config.num_channels
        self.image_size = config.image_size
        # stride-2 convolutions with "same" padding round up: 150 -> 75 -> 38 -> 19
        stem_size = config.image_size
        for _ in range(self.stem.num_halvings):
            stem_size = math.ceil(stem_size / 2)
        self.grid_size = stem_size // config.patch_size
        if self.grid_size < 1:
            raise ValueError(
                f"image_size ({config.image_size}) is too small: the stem gives a {stem_size}x{stem_size} map, "
                f"smaller than patch_size ({config.patch_size})"
            )
        self.projection = nn.Conv2d(
            self.stem.out_channels,
            config.hidden_size,
            kernel_size=config.patch_size,
            stride=config.patch_size,
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, self.grid_size**2 + 1, config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.shape[1] != self.num_channels:
            raise ValueError(
                f"pixel_values has {pixel_values.shape[1]} channels, the config expects num_channels={self.num_channels}"
            )
        feature_map = self.stem(pixel_values)  # (batch, stem_channels, h, w)
        tokens = self.projection(feature_map)  # (batch, hidden, grid, grid)
        if tokens.shape[-2:] != (self.grid_size, self.grid_size):
            height, width = pixel_values.shape[-2:]
            raise ValueError(
                f"pixel_values is {height}x{width}, the config expects image_size={self.image_size}"
            )
        tokens = tokens.flatten(2).transpose(1, 2)  # (batch, grid * grid, hidden)
        cls_tokens = self.cls_token.expand(tokens.shape[0], -1, -1)  # (batch, 1, hidden)
        embeddings = torch.cat((cls_tokens, tokens), dim=1) + self.position_embeddings
        return self.dropout(embeddings)  # (batch, 1 + grid * grid, hidden)


# Copied from hf_deeplense.models.vit.modeling_vit.eager_attention_forward
def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention; returns the attention probabilities too (for `output_attentions`)."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling  # (batch, heads, tokens, tokens)
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value)  # (batch, heads, tokens, head_dim)
    attn_output = attn_output.transpose(1, 2).contiguous()  # (batch, tokens, heads, head_dim)
    return attn_output, attn_weights


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTAttention with ViT->Hybrid
class DeepLenseHybridAttention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection.

    The attention kernel follows `config._attn_implementation` (`"sdpa"` by default, `"eager"`, or any kernel
    of `ALL_ATTENTION_FUNCTIONS`); `output_attentions=True` uses the eager kernel, the only one returning
    the attention probabilities.
    """

    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__()
        self.config = config
        self.num_attention_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, num_tokens, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch_size, num_tokens, 3, self.num_attention_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (batch, heads, tokens, head_dim)

        attention_interface: Callable = eager_attention_forward
        if not output_attentions:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
                self.config._attn_implementation, eager_attention_forward
            )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            None,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
        )
        attn_output = attn_output.reshape(batch_size, num_tokens, -1)  # (batch, tokens, hidden)
        return self.proj(attn_output), attn_weights


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTMLP with ViT->Hybrid
class DeepLenseHybridMLP(nn.Module):
    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden_states)))


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTLayer with ViT->Hybrid
class DeepLenseHybridLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block: `x + attention(norm(x))`, then `x + mlp(norm(x))`."""

    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = DeepLenseHybridAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = DeepLenseHybridMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention_output, attn_weights = self.attention(
            self.layernorm_before(hidden_states), output_attentions
        )
        hidden_states = hidden_states + self.dropout(attention_output)
        hidden_states = hidden_states + self.dropout(self.mlp(self.layernorm_after(hidden_states)))
        return hidden_states, attn_weights


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTEncoder with ViT->Hybrid
class DeepLenseHybridEncoder(nn.Module):
    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__()
        self.layer = nn.ModuleList([DeepLenseHybridLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """Returns the last hidden state, the input of every layer plus the output (if asked) and the attentions."""
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layer:
            hidden_states, attn_weights = layer(hidden_states, output_attentions)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (attn_weights,)
        return hidden_states, all_hidden_states, all_attentions


class DeepLenseHybridPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseHybridConfig
    config: DeepLenseHybridConfig
    base_model_prefix = "hybrid"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["DeepLenseHybridEmbeddings", "DeepLenseHybridLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # Auto class name -> "module.Class" for every Auto class of this architecture; set by
    # `hf_deeplense.models.auto.register_model` and written into `config.auto_map` by `save_pretrained`.
    _auto_map: dict[str, str] = {}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """He (fan-out) init for the stem convolutions, ViT init (truncated normal) for the transformer."""
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if getattr(module, "running_mean", None) is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif isinstance(module, DeepLenseHybridEmbeddings):
            # the token projection is the ViT patch embedding: same init as in the ViT
            init.trunc_normal_(module.projection.weight, std=self.config.initializer_range)
            init.zeros_(module.projection.bias)
            init.trunc_normal_(module.position_embeddings, std=self.config.initializer_range)
            init.trunc_normal_(module.cls_token, std=self.config.initializer_range)

    # Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTPreTrainedModel.save_pretrained
    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, with every Auto class of the architecture in `config.auto_map`.

        transformers writes only the saved class (and `AutoConfig`) into `auto_map`, so without this a
        classifier saved with remote code would not load through `AutoModel` with `trust_remote_code=True`.
        """
        if self._auto_map:
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **self._auto_map}
        return super().save_pretrained(save_directory, *args, **kwargs)


class DeepLenseHybridModel(DeepLenseHybridPreTrainedModel):
    """Bare hybrid encoder: `last_hidden_state (batch, 1 + num_tokens, hidden)`, `pooler_output (batch, hidden)`
    (the final-norm CLS token)."""

    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__(config)
        self.embeddings = DeepLenseHybridEmbeddings(config)
        self.encoder = DeepLenseHybridEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.projection

    def get_cam_target_layer(self) -> nn.Module:
        """The last conv block of the stem, whose output positions are the tokens: the Grad-CAM target."""
        return self.embeddings.stem.last_conv_block()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> BaseModelOutputWithPooling | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                The images.
            output_attentions (`bool`, *optional*):
                Return the attention probabilities of every layer, each `(batch_size, heads, tokens, tokens)`.
            output_hidden_states (`bool`, *optional*):
                Return the embeddings and the output of every layer, each `(batch_size, tokens, hidden_size)`.
        """
        output_attentions = (
            output_attentions if output_attentions is not None else self.config.output_attentions
        )
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )

        embeddings = self.embeddings(pixel_values)  # (batch, 1 + num_tokens, hidden)
        hidden_states, all_hidden_states, all_attentions = self.encoder(
            embeddings, output_attentions=output_attentions, output_hidden_states=output_hidden_states
        )
        last_hidden_state = self.layernorm(hidden_states)
        pooler_output = last_hidden_state[:, 0]  # (batch, hidden): CLS token
        return BaseModelOutputWithPooling(
            last_hidden_state=last_hidden_state,
            pooler_output=pooler_output,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


class DeepLenseHybridForImageClassification(DeepLenseHybridPreTrainedModel):
    """Hybrid with a linear classifier on the CLS token; cross-entropy loss on `labels (batch,)`."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    # Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTForImageClassification.__init__ with ViT->Hybrid, vit->hybrid
    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__(config)
        self.hybrid = DeepLenseHybridModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        return self.hybrid.get_cam_target_layer()

    # Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTForImageClassification.forward with vit->hybrid
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> ImageClassifierOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                The images.
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Class indices in `[0, num_labels)`; if given, `loss` is the mean cross-entropy.

        Returns:
            `ImageClassifierOutput` with `logits (batch_size, num_labels)`.
        """
        outputs = self.hybrid(
            pixel_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))  # (batch, num_labels)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device).long())
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class DeepLenseHybridForRegression(DeepLenseHybridPreTrainedModel):
    """Hybrid with a linear regression head on the CLS token.

    The head predicts standardised targets `(y - target_mean) / target_std`; `logits` are mapped back to the
    original units and the loss is the MSE of the standardised values, so every target weighs the same.
    """

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    # Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTForRegression.__init__ with ViT->Hybrid, vit->hybrid
    def __init__(self, config: DeepLenseHybridConfig):
        super().__init__(config)
        self.hybrid = DeepLenseHybridModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.regressor = nn.Linear(config.hidden_size, config.num_targets)
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        return self.hybrid.get_cam_target_layer()

    # Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTForRegression.forward with vit->hybrid
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> ImageClassifierOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                The images.
            labels (`torch.FloatTensor` of shape `(batch_size, num_targets)` or `(batch_size,)`, *optional*):
                Targets in their original units; if given, `loss` is the MSE of the standardised targets.

        Returns:
            `ImageClassifierOutput` with `logits (batch_size, num_targets)` in the original units.
        """
        outputs = self.hybrid(
            pixel_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        standardized = self.regressor(self.dropout(outputs.pooler_output))  # (batch, num_targets)
        target_mean = standardized.new_tensor(self.config.target_mean)  # (num_targets,)
        target_std = standardized.new_tensor(self.config.target_std)  # (num_targets,)
        logits = standardized * target_std + target_mean  # (batch, num_targets), original units
        loss = None
        if labels is not None:
            labels = labels.to(standardized.device, standardized.dtype).view(standardized.shape)
            loss = nn.functional.mse_loss(standardized, (labels - target_mean) / target_std)
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


__all__ = [
    "DeepLenseHybridForImageClassification",
    "DeepLenseHybridForRegression",
    "DeepLenseHybridModel",
    "DeepLenseHybridPreTrainedModel",
]
