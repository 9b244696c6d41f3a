"""DeepLense masked autoencoder (MAE): pre-training on unlabelled lensing images, anomaly scores.

The encoder sees a random `1 - mask_ratio` of the patches; a light decoder reconstructs the pixels of the
masked ones ([0]). The encoder shares module names and shapes with [`DeepLenseViTModel`] (`vit.embeddings`,
`vit.encoder.layer.N`, `vit.layernorm`), so a checkpoint fine-tunes with
`DeepLenseViTForImageClassification.from_pretrained(mae_dir, num_labels=3)` (or `DeepLenseViTForRegression`).
The reconstruction error of a trained MAE is an anomaly score ([`DeepLenseMAEForPreTraining.anomaly_score`]).
Method names follow the reference implementation ([1]): `patchify`, `random_masking`, `forward_encoder`,
`forward_decoder`, `forward_loss`.

- [0] He et al., Masked Autoencoders Are Scalable Vision Learners, 2021, https://arxiv.org/abs/2111.06377
- [1] facebookresearch/mae, https://github.com/facebookresearch/mae (models_mae.py)
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_mae import DeepLenseMAEConfig


@dataclass
class DeepLenseMAEForPreTrainingOutput(ModelOutput):
    r"""Output of [`DeepLenseMAEForPreTraining`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Mean squared reconstruction error over the masked patches (absent when `return_loss=False`).
        logits (`torch.FloatTensor` of shape `(batch_size, num_patches, patch_size**2 * num_channels)`):
            Reconstructed patches (all of them, in image order); `unpatchify` turns them into images.
        mask (`torch.FloatTensor` of shape `(batch_size, num_patches)`):
            1 = masked (hidden from the encoder, scored by the loss), 0 = visible.
        ids_restore (`torch.LongTensor` of shape `(batch_size, num_patches)`):
            Permutation that puts the shuffled patches (visible first) back into image order.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Encoder input and the output of every encoder layer, each `(batch_size, 1 + num_visible, hidden_size)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Encoder attention probabilities, each `(batch_size, num_heads, 1 + num_visible, 1 + num_visible)`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    ids_restore: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTPatchEmbeddings with ViT->MAE
class DeepLenseMAEPatchEmbeddings(nn.Module):
    """Cuts `(batch_size, num_channels, height, width)` images into patches and projects each to `hidden_size`."""

    def __init__(self, config: DeepLenseMAEConfig):
        super().__init__()
        self.num_channels = config.num_channels
        self.num_patches = (config.image_size // config.patch_size) ** 2
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.shape[1] != self.num_channels:
            raise ValueError(
                f"pixel_values has {pixel_values.shape[1]} channels, the config expects num_channels={self.num_channels}"
            )
        embeddings = self.projection(pixel_values)  # (batch, hidden, height / patch, width / patch)
        return embeddings.flatten(2).transpose(1, 2)  # (batch, num_patches, hidden)


def sincos_position_embedding_2d(grid_size: int, embed_dim: int, with_cls_token: bool = True) -> torch.Tensor:
    """Fixed 2D sine-cosine position embeddings of a `grid_size x grid_size` patch grid (row-major order).

    Each position gets `[sin(y w), cos(y w), sin(x w), cos(x w)]` with `embed_dim / 4` frequencies
    `w_k = 10000^(-k / (embed_dim / 4))`; the CLS token (first row) gets zeros.

    Returns:
        `torch.FloatTensor` of shape `(1, with_cls_token + grid_size**2, embed_dim)`.
    """
    quarter = embed_dim // 4
    omega = 1.0 / 10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (embed_dim / 4,)
    grid_y, grid_x = torch.meshgrid(
        torch.arange(grid_size, dtype=torch.float64),
        torch.arange(grid_size, dtype=torch.float64),
        indexing="ij",
    )
    angles_y = grid_y.reshape(-1, 1) * omega  # (grid_size**2, embed_dim / 4)
    angles_x = grid_x.reshape(-1, 1) * omega
    embedding = torch.cat([angles_y.sin(), angles_y.cos(), angles_x.sin(), angles_x.cos()], dim=1)
    if with_cls_token:
        embedding = torch.cat([torch.zeros(1, embed_dim, dtype=torch.float64), embedding], dim=0)
    return embedding.float().unsqueeze(0)


class DeepLenseMAEEmbeddings(nn.Module):
    """CLS token + patch embeddings + fixed (not trained) sine-cosine position embeddings, of every patch or of
    the visible patches only (`ids_keep`).

    Same parameters as `DeepLenseViTEmbeddings`, so the ViT heads load them (their position embeddings then
    start from the sine-cosine values and are fine-tuned).
    """

    def __init__(self, config: DeepLenseMAEConfig):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.patch_embeddings = DeepLenseMAEPatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, self.patch_embeddings.num_patches + 1, config.hidden_size), requires_grad=False
        )
        self.image_size = config.image_size
        self.patch_size = config.patch_size
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, pixel_values: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Embeds `pixel_values (batch, C, H, W)`: `(batch, 1 + num_patches, hidden)`, or with `ids_keep (batch,
        num_visible)` (the visible patches of `random_masking`, row-major patch indices) `(batch, 1 + num_visible,
        hidden)`: only those patches are projected, masking before embedding (`1 - mask_ratio` of the work)."""
        height, width = pixel_values.shape[-2:]
        if height != self.image_size or width != self.image_size:
            raise ValueError(
                f"pixel_values is {height}x{width}, the config expects image_size={self.image_size}"
            )
        batch_size, num_channels = pixel_values.shape[:2]
        if ids_keep is None:
            embeddings = self.patch_embeddings(pixel_values)  # (batch, num_patches, hidden)
            embeddings = embeddings + self.position_embeddings[:, 1:]
        else:
            patch, grid = self.patch_size, self.image_size // self.patch_size
            patches = pixel_values.reshape(batch_size, num_channels, grid, patch, grid, patch)
            patches = patches.permute(0, 2, 4, 1, 3, 5).flatten(1, 2)  # (batch, num_patches, C, p, p)
            index = ids_keep[:, :, None, None, None].expand(-1, -1, *patches.shape[2:])
            visible = torch.gather(patches, 1, index).flatten(0, 1)  # (batch * num_visible, C, p, p)
            embeddings = self.patch_embeddings(visible).reshape(batch_size, ids_keep.shape[1], -1)
            embeddings = (
                embeddings + self.position_embeddings[0, 1:][ids_keep]
            )  # (batch, num_visible, hidden)
        cls_tokens = (self.cls_token + self.position_embeddings[:, :1]).expand(batch_size, -1, -1)
        return self.dropout(torch.cat((cls_tokens, embeddings), dim=1))  # (batch, 1 + num_kept, hidden)


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


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTAttention with ViT->MAE
class DeepLenseMAEAttention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection.

    The attention kernel follows `config._attn_implementation` (`"sdpa"` by default, `"eager"`, or any kernel
    of `ALL_ATTENTION_FUNCTIONS`); `output_attentions=True` uses the eager kernel, the only one returning
    the attention probabilities.
    """

    def __init__(self, config: DeepLenseMAEConfig):
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


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTMLP with ViT->MAE
class DeepLenseMAEMLP(nn.Module):
    def __init__(self, config: DeepLenseMAEConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden_states)))


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTLayer with ViT->MAE
class DeepLenseMAELayer(GradientCheckpointingLayer):
    """Pre-norm transformer block: `x + attention(norm(x))`, then `x + mlp(norm(x))`."""

    def __init__(self, config: DeepLenseMAEConfig):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = DeepLenseMAEAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = DeepLenseMAEMLP(config)
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


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTEncoder with ViT->MAE
class DeepLenseMAEEncoder(nn.Module):
    def __init__(self, config: DeepLenseMAEConfig):
        super().__init__()
        self.layer = nn.ModuleList([DeepLenseMAELayer(config) for _ in range(config.num_hidden_layers)])

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


class DeepLenseMAEDecoder(nn.Module):
    """Light transformer that predicts the pixels of every patch from the visible-patch latents + mask tokens."""

    def __init__(self, config: DeepLenseMAEConfig):
        super().__init__()
        num_patches = (config.image_size // config.patch_size) ** 2
        decoder_config = copy.deepcopy(config)
        decoder_config.hidden_size = config.decoder_hidden_size
        decoder_config.num_hidden_layers = config.decoder_num_hidden_layers
        decoder_config.num_attention_heads = config.decoder_num_attention_heads
        decoder_config.intermediate_size = config.decoder_intermediate_size

        self.decoder_embed = nn.Linear(config.hidden_size, config.decoder_hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, num_patches + 1, config.decoder_hidden_size), requires_grad=False
        )
        self.decoder_layers = nn.ModuleList(
            [DeepLenseMAELayer(decoder_config) for _ in range(config.decoder_num_hidden_layers)]
        )
        self.decoder_norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        self.decoder_pred = nn.Linear(config.decoder_hidden_size, config.patch_size**2 * config.num_channels)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """`latent (batch, 1 + num_visible, hidden)` -> predicted patches `(batch, num_patches, patch**2 * C)`."""
        hidden_states = self.decoder_embed(latent)  # (batch, 1 + num_visible, decoder_hidden)
        batch_size, num_tokens, width = hidden_states.shape
        num_masked = ids_restore.shape[1] + 1 - num_tokens
        mask_tokens = self.mask_token.expand(
            batch_size, num_masked, -1
        )  # (batch, num_masked, decoder_hidden)
        patches = torch.cat(
            [hidden_states[:, 1:], mask_tokens], dim=1
        )  # (batch, num_patches, decoder_hidden), shuffled
        patches = torch.gather(patches, 1, ids_restore.unsqueeze(-1).expand(-1, -1, width))  # image order
        hidden_states = torch.cat([hidden_states[:, :1], patches], dim=1) + self.decoder_pos_embed
        for layer in self.decoder_layers:
            hidden_states, _ = layer(hidden_states)
        predictions = self.decoder_pred(
            self.decoder_norm(hidden_states)
        )  # (batch, 1 + num_patches, patch**2 * C)
        return predictions[:, 1:]  # drop the CLS token


class DeepLenseMAEPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseMAEConfig
    config: DeepLenseMAEConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["DeepLenseMAEEmbeddings", "DeepLenseMAELayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # Auto class name -> "module.Class" for every Auto class of this architecture; set by
    # `hf_deeplense.models.auto.register_model` and written into `config.auto_map` by `save_pretrained`.
    _auto_map: dict[str, str] = {}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        grid_size = self.config.image_size // self.config.patch_size
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)  # as in [1]
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            init.xavier_uniform_(
                module.weight.view(module.weight.shape[0], -1)
            )  # like a Linear on flat patches
            init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, DeepLenseMAEEmbeddings):
            init.copy_(
                module.position_embeddings, sincos_position_embedding_2d(grid_size, self.config.hidden_size)
            )
            init.normal_(module.cls_token, std=self.config.initializer_range)
        elif isinstance(module, DeepLenseMAEDecoder):
            init.copy_(
                module.decoder_pos_embed,
                sincos_position_embedding_2d(grid_size, self.config.decoder_hidden_size),
            )
            init.normal_(module.mask_token, std=self.config.initializer_range)

    # Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTPreTrainedModel.save_pretrained
    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, with every Auto class of the architecture in `config.auto_map`.

        transformers writes only the saved class (and `AutoConfig`) into `auto_map`, so without this a
        classifier saved with remote code would not load through `AutoModel` with `trust_remote_code=True`.
        """
        if self._auto_map:
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **self._auto_map}
        return super().save_pretrained(save_directory, *args, **kwargs)

    # Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTPreTrainedModel.get_cam_target_layer
    def get_cam_target_layer(self) -> nn.Module | None:
        """The layer Grad-CAM hooks; None for a ViT, whose saliency comes from attention rollout."""
        return None


# Copied from hf_deeplense.models.vit.modeling_vit.DeepLenseViTModel with ViT->MAE
class DeepLenseMAEModel(DeepLenseMAEPreTrainedModel):
    """Bare MAE encoder, every patch visible: `last_hidden_state (batch, 1 + num_patches, hidden)` and
    `pooler_output (batch, hidden)` (the final-norm CLS token)."""

    def __init__(self, config: DeepLenseMAEConfig):
        super().__init__(config)
        self.embeddings = DeepLenseMAEEmbeddings(config)
        self.encoder = DeepLenseMAEEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embeddings

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

        embeddings = self.embeddings(pixel_values)  # (batch, 1 + num_patches, hidden)
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


class DeepLenseMAEForPreTraining(DeepLenseMAEPreTrainedModel):
    """MAE encoder + decoder; the loss is the mean squared error on the masked patches.

    The forward pass masks in train and eval mode alike (a fresh random mask per call): pass `noise` for a
    reproducible mask. `Trainer.evaluate` reports `eval_loss` (`forward` has `return_loss=True`).
    """

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseMAEConfig):
        super().__init__(config)
        self.vit = DeepLenseMAEModel(config)
        self.decoder = DeepLenseMAEDecoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.vit.embeddings.patch_embeddings

    def patchify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(batch, C, H, W)` -> `(batch, (H / p) * (W / p), p * p * C)`, patches in row-major order, each
        flattened as `(row, column, channel)`."""
        patch_size = self.config.patch_size
        batch_size, num_channels, height, width = pixel_values.shape
        patches = pixel_values.reshape(
            batch_size, num_channels, height // patch_size, patch_size, width // patch_size, patch_size
        )
        patches = patches.permute(0, 2, 4, 3, 5, 1)  # (batch, rows, columns, p, p, C)
        return patches.reshape(batch_size, (height // patch_size) * (width // patch_size), -1)

    def unpatchify(self, patches: torch.Tensor, image_size: int | None = None) -> torch.Tensor:
        """Inverse of `patchify`: `(batch, num_patches, p * p * C)` -> `(batch, C, image_size, image_size)`."""
        patch_size = self.config.patch_size
        grid_size = (image_size or self.config.image_size) // patch_size
        batch_size, num_patches, patch_dim = patches.shape
        if num_patches != grid_size**2:
            raise ValueError(f"got {num_patches} patches, image_size implies {grid_size}x{grid_size}")
        num_channels = patch_dim // patch_size**2
        images = patches.reshape(batch_size, grid_size, grid_size, patch_size, patch_size, num_channels)
        images = images.permute(0, 5, 1, 3, 2, 4)  # (batch, C, rows, p, columns, p)
        return images.reshape(batch_size, num_channels, grid_size * patch_size, grid_size * patch_size)

    def random_masking(
        self, sequence: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keeps a random `1 - mask_ratio` of the tokens of each sample: the tokens with the smallest noise.

        Args:
            sequence (`torch.Tensor` of shape `(batch_size, num_patches, ...)`):
                One entry per patch: patch tokens (no CLS token), flattened pixel patches (`patchify`), or the
                patch indices (what `forward_encoder` masks, to embed the visible patches only).
            noise (`torch.FloatTensor` of shape `(batch_size, num_patches)`, *optional*):
                Sort keys; the same noise gives the same mask. Uniform random if not given.

        Returns:
            visible entries `(batch_size, num_visible, ...)` (smallest noise first), `mask (batch_size,
            num_patches)` (1 = masked, image order) and `ids_restore (batch_size, num_patches)` (the rank of each
            patch's noise: `ids_restore[ids_shuffle] = arange`).
        """
        batch_size, num_patches = sequence.shape[:2]
        num_visible = int(num_patches * (1 - self.config.mask_ratio))
        if noise is None:
            noise = torch.rand(batch_size, num_patches, device=sequence.device)
        ids_shuffle = torch.argsort(noise.to(sequence.device), dim=1)  # ascending: smallest noise is kept
        ranks = torch.arange(num_patches, device=sequence.device).expand(batch_size, -1)
        ids_restore = torch.empty_like(ids_shuffle).scatter_(1, ids_shuffle, ranks)  # inverse permutation
        mask = (ids_restore >= num_visible).to(torch.float32)  # (batch, num_patches), image order, 1 = masked
        ids_keep = ids_shuffle[:, :num_visible].reshape(batch_size, num_visible, *[1] * (sequence.ndim - 2))
        visible = torch.gather(sequence, 1, ids_keep.expand(-1, -1, *sequence.shape[2:]))
        return visible, mask, ids_restore

    def forward_encoder(
        self,
        pixel_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple | None, tuple | None]:
        """Masks, embeds and encodes: returns `latent (batch, 1 + num_visible, hidden)`, `mask`, `ids_restore`,
        the hidden states and the attentions.

        `random_masking` picks the visible patches (of the patch indices), and the embeddings project those
        only: masking before embedding, the same tokens as embedding every patch and masking the tokens.
        """
        batch_size = pixel_values.shape[0]
        num_patches = self.vit.embeddings.patch_embeddings.num_patches
        patch_indices = torch.arange(num_patches, device=pixel_values.device).expand(batch_size, -1)
        ids_keep, mask, ids_restore = self.random_masking(patch_indices, noise)  # (batch, num_visible)
        embeddings = self.vit.embeddings(pixel_values, ids_keep)  # (batch, 1 + num_visible, hidden)
        hidden_states, all_hidden_states, all_attentions = self.vit.encoder(
            embeddings, output_attentions=output_attentions, output_hidden_states=output_hidden_states
        )
        latent = self.vit.layernorm(hidden_states)
        return latent, mask, ids_restore, all_hidden_states, all_attentions

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Predicted patches `(batch, num_patches, patch_size**2 * num_channels)`, image order."""
        return self.decoder(latent, ids_restore)

    def forward_loss(
        self, pixel_values: torch.Tensor, predictions: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Per-image mean squared error over the masked patches: `(batch,)`."""
        target = self.patchify(pixel_values)  # (batch, num_patches, patch**2 * C)
        if self.config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            variance = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (variance + 1e-6) ** 0.5
        loss = ((predictions - target) ** 2).mean(dim=-1)  # (batch, num_patches): per-patch error
        return (loss * mask).sum(dim=1) / mask.sum(dim=1)  # (batch,): mean over masked patches

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        return_loss: bool = True,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> DeepLenseMAEForPreTrainingOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                The images.
            noise (`torch.FloatTensor` of shape `(batch_size, num_patches)`, *optional*):
                Masking noise (see `random_masking`); fixes the mask.
            return_loss (`bool`, *optional*, defaults to `True`):
                Compute the reconstruction loss (the mean over the batch of `forward_loss`).
        """
        output_attentions = (
            output_attentions if output_attentions is not None else self.config.output_attentions
        )
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )

        latent, mask, ids_restore, all_hidden_states, all_attentions = self.forward_encoder(
            pixel_values,
            noise,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        predictions = self.forward_decoder(latent, ids_restore)  # (batch, num_patches, patch**2 * C)
        # Every image has the same number of masked patches: the batch mean is the mean over masked patches.
        loss = self.forward_loss(pixel_values, predictions, mask).mean() if return_loss else None
        return DeepLenseMAEForPreTrainingOutput(
            loss=loss,
            logits=predictions,
            mask=mask,
            ids_restore=ids_restore,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )

    @torch.no_grad()
    def anomaly_score(
        self, pixel_values: torch.Tensor, noise: torch.Tensor | None = None, seed: int = 0
    ) -> torch.Tensor:
        """Per-image reconstruction error, deterministic: high for images unlike the pre-training data.

        Without `noise`, the score averages `forward_loss` over `ceil(num_patches / num_visible)` masks built
        from one random permutation of the patches (from `seed`): mask `k` shows the `k`-th block of
        `num_visible` patches of the permutation, so every patch is reconstructed from the others at least
        once. The masks are the same for every image, so an image's score does not depend on its batch.
        With `noise (batch_size, num_patches)`, the score is `forward_loss` under that single mask.
        Call `model.eval()` first when the config has dropout.

        Returns:
            `torch.FloatTensor` of shape `(batch_size,)`.
        """
        if noise is not None:
            latent, mask, ids_restore, _, _ = self.forward_encoder(pixel_values, noise)
            return self.forward_loss(pixel_values, self.forward_decoder(latent, ids_restore), mask)
        batch_size = pixel_values.shape[0]
        num_patches = (self.config.image_size // self.config.patch_size) ** 2
        num_visible = int(num_patches * (1 - self.config.mask_ratio))
        generator = torch.Generator().manual_seed(seed)
        rank = torch.argsort(
            torch.randperm(num_patches, generator=generator)
        )  # position of each patch in the permutation
        scores = []
        for start in range(0, num_patches, num_visible):
            # Patches at permutation positions [start, start + num_visible) get the smallest noise: visible.
            block_noise = ((rank - start) % num_patches).float().to(pixel_values.device)  # (num_patches,)
            noise = block_noise.expand(batch_size, -1)
            latent, mask, ids_restore, _, _ = self.forward_encoder(pixel_values, noise)
            scores.append(self.forward_loss(pixel_values, self.forward_decoder(latent, ids_restore), mask))
        return torch.stack(scores).mean(dim=0)  # (batch,)


__all__ = ["DeepLenseMAEForPreTraining", "DeepLenseMAEModel", "DeepLenseMAEPreTrainedModel"]
