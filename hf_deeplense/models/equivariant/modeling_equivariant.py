"""A rotation-equivariant network for lensing images: a C4 / D4 group-convolution stem with group pooling,
feeding a small transformer over rotation-invariant tokens.

A strong lens has no preferred orientation: rotating or mirroring the image leaves the class (and the axion
mass) unchanged. Group convolutions build this symmetry into the weights instead of teaching it through
augmentation, and the DeepLense equivariant models beat ResNet-18 at equal size (C8 CNN micro-AUC 0.998 vs
0.994, Apoorva Singh 2022; ADDA target AUC 0.980 vs 0.955).

- [0] Group equivariant convolutional networks, Cohen & Welling 2016, https://arxiv.org/abs/1602.07576
- [1] General E(2)-equivariant steerable CNNs (escnn), Weiler & Cesa 2019, https://arxiv.org/abs/1911.08251

Why a self-written group convolution, not escnn: for the groups of the square pixel grid (C4, D4) a group
convolution is exact with plain `torch.rot90` / `torch.flip` on the filters: no interpolation, no steerable
basis, ~100 lines. escnn is not installed here, pulls in heavy dependencies (lie_learn, pymanopt, a
compiled py3nj), and a model built with it would not load as remote code (`trust_remote_code=True`) where
escnn is missing, breaking the "modeling files import torch and transformers only" rule. The price: no
C8 / continuous rotations (45° rotations of a pixel grid need interpolation, so they are only approximate
in escnn too).

Why transformer tokens after the stem, not a conv head: after group pooling the feature map is invariant
per pixel but still rotates as an image, so any ordinary (non-equivariant) conv or patch embedding on it
would break the symmetry. A transformer whose tokens are the pooled pixels and whose only position code is
the distance to the image centre is permutation-equivariant, hence exactly rotation-invariant after mean
pooling, and gives every token a global view of the Einstein ring (substructure perturbs the whole arc).
A conv head would need more group-conv stages (cost grows with |G|) to reach the same receptive field;
the transformer costs O(tokens²) attention, kept small by three 2x downsamplings (64 tokens at 64 px).

Exactness: equivariance holds to float rounding for square inputs of any size, because (i) filters are odd-
sized and rotate about their centre pixel, (ii) zero "same" padding is symmetric, (iii) downsampling uses
`adaptive_avg_pool2d`, whose bins are mirror-symmetric for every size, and (iv) BatchNorm statistics are
shared over the group axis.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_equivariant import DeepLenseEquivariantConfig


@dataclass
class DeepLenseEquivariantOutput(ModelOutput):
    """
    Output of the equivariant classification and regression heads.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Cross-entropy (classification) or MSE on standardised targets (regression).
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)` or `(batch_size, num_targets)`):
            Class scores before softmax, or regression predictions in the original target units.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            Tokens after the embedding and after each transformer layer, each `(batch_size, num_tokens, hidden_size)`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


# ---------------------------------------------------------------------------------------------------------
# The groups C4 and D4 acting on the pixel grid
# ---------------------------------------------------------------------------------------------------------


def group_elements(group: str) -> list[tuple[int, int]]:
    """Elements of C4 or D4 as `(mirror, quarter_turns)`: the action is "mirror (left-right) if `mirror`, then
    rotate by `quarter_turns` x 90° counter-clockwise"."""
    mirrors = (0, 1) if group == "D4" else (0,)
    return [(mirror, quarter_turns) for mirror in mirrors for quarter_turns in range(4)]


def transform_grid(tensor: torch.Tensor, element: tuple[int, int]) -> torch.Tensor:
    """Apply one group element to the last two (spatial) dimensions of `tensor`: exact, no interpolation."""
    mirror, quarter_turns = element
    if mirror:
        tensor = torch.flip(tensor, dims=(-1,))
    return torch.rot90(tensor, k=quarter_turns, dims=(-2, -1))


def cayley_table(group: str) -> list[list[int]]:
    """`table[a][b]` = index of the element `a∘b` (apply b, then a), found by acting on an asymmetric probe."""
    elements = group_elements(group)
    probe = torch.arange(
        9.0, device="cpu"
    ).reshape(
        3, 3
    )  # no symmetry (explicit device: models may be built on "meta"): every element maps it to a distinct array
    images = [transform_grid(probe, element) for element in elements]

    def index_of(image: torch.Tensor) -> int:
        return next(index for index, candidate in enumerate(images) if torch.equal(candidate, image))

    return [[index_of(transform_grid(transform_grid(probe, b), a)) for b in elements] for a in elements]


# ---------------------------------------------------------------------------------------------------------
# Group convolutions
# ---------------------------------------------------------------------------------------------------------


class DeepLenseEquivariantLiftingConv(nn.Module):
    """Lifting convolution Z² -> G: correlates the image with every transformed copy of each filter.

    Input `(batch, in_channels, H, W)`, output `(batch, out_channels, |G|, H, W)`. Rotating (mirroring) the
    input by `h` rotates every output map by `h` and permutes the group axis by `g -> h∘g`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, group: str):
        super().__init__()
        self.elements = group_elements(group)
        self.out_channels = out_channels
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))  # shared over the group axis

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        filters = torch.stack([transform_grid(self.weight, element) for element in self.elements], dim=1)
        filters = filters.flatten(0, 1)  # (out * |G|, in, k, k), output channel = o * |G| + g
        bias = self.bias.repeat_interleave(len(self.elements))
        output = nn.functional.conv2d(pixel_values, filters, bias, padding=self.padding)
        return output.unflatten(1, (self.out_channels, len(self.elements)))  # (batch, out, |G|, H, W)


class DeepLenseEquivariantGroupConv(nn.Module):
    """Group convolution G -> G: `out_g(x) = Σ_h Σ_y f_h(x + y) · [g · ψ_{g⁻¹∘h}](y)`.

    Input and output `(batch, channels, |G|, H, W)`; the filter bank `ψ` has one `(k, k)` filter per
    (output channel, input channel, group element) and is expanded into `|G|` transformed, group-permuted copies.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, group: str, bias: bool = False):
        super().__init__()
        self.elements = group_elements(group)
        table = cayley_table(group)
        inverse = [row.index(0) for row in table]  # element 0 is the identity
        # permutations[g][h] = index of g⁻¹∘h: which filter slice meets input group channel h for output g
        self.permutations = [
            [table[inverse[g]][h] for h in range(len(self.elements))] for g in range(len(table))
        ]
        self.out_channels = out_channels
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, len(self.elements), kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        filters = torch.stack(
            [
                transform_grid(self.weight[:, :, permutation], element)
                for element, permutation in zip(self.elements, self.permutations, strict=True)
            ],
            dim=1,
        )  # (out, |G|, in, |G|, k, k)
        filters = filters.flatten(0, 1).flatten(1, 2)  # (out * |G|, in * |G|, k, k)
        bias = None if self.bias is None else self.bias.repeat_interleave(len(self.elements))
        output = nn.functional.conv2d(hidden_states.flatten(1, 2), filters, bias, padding=self.padding)
        return output.unflatten(1, (self.out_channels, len(self.elements)))


class DeepLenseEquivariantBlock(nn.Module):
    """Residual block of two group convolutions with BatchNorm (statistics shared over the group axis)."""

    def __init__(self, config: DeepLenseEquivariantConfig, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = DeepLenseEquivariantGroupConv(
            in_channels, out_channels, config.kernel_size, config.group
        )
        self.norm1 = nn.BatchNorm3d(out_channels)
        self.conv2 = DeepLenseEquivariantGroupConv(
            out_channels, out_channels, config.kernel_size, config.group
        )
        self.norm2 = nn.BatchNorm3d(out_channels)
        self.act = ACT2FN[config.hidden_act]
        self.shortcut = None
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                DeepLenseEquivariantGroupConv(in_channels, out_channels, 1, config.group),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = hidden_states if self.shortcut is None else self.shortcut(hidden_states)
        hidden_states = self.act(self.norm1(self.conv1(hidden_states)))
        hidden_states = self.norm2(self.conv2(hidden_states))
        return self.act(hidden_states + residual)


def downsample(hidden_states: torch.Tensor) -> torch.Tensor:
    """Halve the spatial size (rounding up) with an adaptive average pool: its bins are mirror-symmetric for
    every size (unlike a strided conv, or a 2x2 pool on an odd size), so equivariance stays exact."""
    height, width = hidden_states.shape[-2:]
    pooled = nn.functional.adaptive_avg_pool2d(
        hidden_states.flatten(1, 2), ((height + 1) // 2, (width + 1) // 2)
    )
    return pooled.unflatten(1, hidden_states.shape[1:3])  # (batch, channels, |G|, H/2, W/2)


class DeepLenseEquivariantGroupPooling(nn.Module):
    """Max over the group axis: `(batch, channels, |G|, H, W)` -> `(batch, channels, H, W)`, invariant per pixel.

    Its output is the last spatial feature map, the Grad-CAM target (`get_cam_target_layer`)."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states.amax(dim=2)


class DeepLenseEquivariantStem(nn.Module):
    """Lifting conv -> [downsample -> residual group-conv block] per stage -> group pooling."""

    def __init__(self, config: DeepLenseEquivariantConfig):
        super().__init__()
        channels = config.stage_channels
        self.lifting = DeepLenseEquivariantLiftingConv(
            config.num_channels, channels[0], config.stem_kernel_size, config.group
        )
        self.lifting_norm = nn.BatchNorm3d(channels[0])
        self.act = ACT2FN[config.hidden_act]
        self.blocks = nn.ModuleList(
            [
                DeepLenseEquivariantBlock(config, in_channels, out_channels)
                for in_channels, out_channels in zip([channels[0]] + channels[:-1], channels, strict=True)
            ]
        )
        self.group_pooling = DeepLenseEquivariantGroupPooling()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden_states = self.act(self.lifting_norm(self.lifting(pixel_values)))  # (batch, C0, |G|, H, W)
        for block in self.blocks:
            hidden_states = block(downsample(hidden_states))
        return self.group_pooling(hidden_states)  # (batch, C_last, H / 2^stages, W / 2^stages)


# ---------------------------------------------------------------------------------------------------------
# Rotation-invariant tokens and transformer
# ---------------------------------------------------------------------------------------------------------


class DeepLenseEquivariantEmbeddings(nn.Module):
    """Each pixel of the group-pooled map becomes a token; its position code is an MLP of its distance to the
    image centre (normalised by half the grid size), the only position information invariant under D4."""

    def __init__(self, config: DeepLenseEquivariantConfig):
        super().__init__()
        self.projection = nn.Linear(config.stage_channels[-1], config.hidden_size)
        self.radius_embedding = nn.Sequential(
            nn.Linear(1, config.hidden_size), nn.GELU(), nn.Linear(config.hidden_size, config.hidden_size)
        )

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        height, width = feature_map.shape[-2:]
        rows = torch.arange(height, device=feature_map.device, dtype=feature_map.dtype) - (height - 1) / 2
        cols = torch.arange(width, device=feature_map.device, dtype=feature_map.dtype) - (width - 1) / 2
        radius = torch.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2) / (max(height, width) / 2)  # (H, W)
        tokens = self.projection(feature_map.flatten(2).transpose(1, 2))  # (batch, H * W, hidden)
        return tokens + self.radius_embedding(radius.reshape(-1, 1))  # + (H * W, hidden)


class DeepLenseEquivariantAttention(nn.Module):
    """Multi-head self-attention (no position bias: permuting the tokens permutes the output)."""

    def __init__(self, config: DeepLenseEquivariantConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.hidden_dropout_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch_size, num_tokens, hidden_size = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch_size, num_tokens, 3, self.num_heads, -1)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, tokens, head_dim)
        context = nn.functional.scaled_dot_product_attention(
            query, key, value, dropout_p=self.dropout if self.training else 0.0
        )
        return self.output(context.transpose(1, 2).reshape(batch_size, num_tokens, hidden_size))


class DeepLenseEquivariantLayer(nn.Module):
    """Pre-norm transformer layer: attention and MLP, each with a residual connection."""

    def __init__(self, config: DeepLenseEquivariantConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = DeepLenseEquivariantAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size),
            ACT2FN[config.hidden_act],
            nn.Linear(config.intermediate_size, config.hidden_size),
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.dropout(self.attention(self.norm1(hidden_states)))
        return hidden_states + self.dropout(self.mlp(self.norm2(hidden_states)))


# ---------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------


class DeepLenseEquivariantPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseEquivariantConfig
    base_model_prefix = "equivariant"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = False
    _supports_sdpa = True
    # Filled by `hf_deeplense.models.auto.register_model`; written into `config.auto_map` by `save_pretrained`.
    _auto_map: dict[str, str] = {}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """He (fan-in) init for the group convolutions, normal for linear layers, unit norms."""
        if isinstance(module, (DeepLenseEquivariantLiftingConv, DeepLenseEquivariantGroupConv)):
            init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm3d, nn.LayerNorm)):
            init.ones_(module.weight)
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


class DeepLenseEquivariantModel(DeepLenseEquivariantPreTrainedModel):
    """Equivariant stem + transformer: `last_hidden_state (batch, num_tokens, hidden)` (one token per pixel of
    the stem's output map) and `pooler_output (batch, hidden)`, their mean: invariant to the group."""

    def __init__(self, config: DeepLenseEquivariantConfig):
        super().__init__(config)
        self.stem = DeepLenseEquivariantStem(config)
        self.embeddings = DeepLenseEquivariantEmbeddings(config)
        self.layers = nn.ModuleList(
            [DeepLenseEquivariantLayer(config) for _ in range(config.num_hidden_layers)]
        )
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        """The group pooling: its output `(batch, C, h, w)` is the last (invariant-per-pixel) feature map."""
        return self.stem.group_pooling

    @can_return_tuple
    def forward(
        self, pixel_values: torch.FloatTensor, output_hidden_states: bool | None = None
    ) -> BaseModelOutputWithPooling:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Input images (square for exact invariance).
        output_hidden_states (`bool`, *optional*):
            Also return the tokens after the embedding and after each layer.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        hidden_states = self.embeddings(self.stem(pixel_values))  # (batch, tokens, hidden)
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        hidden_states = self.layernorm(hidden_states)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=hidden_states.mean(dim=1),  # (batch, hidden): invariant to token order
            hidden_states=all_hidden_states,
        )


class DeepLenseEquivariantForImageClassification(DeepLenseEquivariantPreTrainedModel):
    """Equivariant model with a linear classifier on the pooled (group-invariant) features; cross-entropy loss on
    `labels (batch,)`."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseEquivariantConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.equivariant = DeepLenseEquivariantModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        return self.equivariant.get_cam_target_layer()

    # Copied from hf_deeplense.models.cnn.modeling_cnn.DeepLenseCNNForImageClassification.forward with CNNImageClassifierOutput->EquivariantOutput, cnn->equivariant
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> DeepLenseEquivariantOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices in `[0, num_labels)`.
        """
        outputs = self.equivariant(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(outputs.pooler_output))  # (batch, num_labels)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device).long())
        return DeepLenseEquivariantOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class DeepLenseEquivariantForRegression(DeepLenseEquivariantPreTrainedModel):
    """Equivariant model with a linear regression head. The loss is the MSE on targets standardised with the
    config's `target_mean` / `target_std`; `logits` are returned in the original units."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseEquivariantConfig):
        super().__init__(config)
        self.equivariant = DeepLenseEquivariantModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.regressor = nn.Linear(config.hidden_size, config.num_targets)
        self.post_init()

    def get_cam_target_layer(self) -> nn.Module:
        return self.equivariant.get_cam_target_layer()

    # Copied from hf_deeplense.models.cnn.modeling_cnn.DeepLenseCNNForRegression.forward with CNNImageClassifierOutput->EquivariantOutput, cnn->equivariant
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        labels: torch.FloatTensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> DeepLenseEquivariantOutput:
        r"""
        labels (`torch.FloatTensor` of shape `(batch_size, num_targets)` or `(batch_size,)`, *optional*):
            Regression targets in their original units.
        """
        outputs = self.equivariant(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        standardized = self.regressor(self.dropout(outputs.pooler_output))  # (batch, num_targets)
        target_mean = standardized.new_tensor(self.config.target_mean)  # (num_targets,)
        target_std = standardized.new_tensor(self.config.target_std)  # (num_targets,)
        logits = standardized * target_std + target_mean  # (batch, num_targets), original units
        loss = None
        if labels is not None:
            labels = labels.to(standardized.device, standardized.dtype).view(standardized.shape)
            loss = nn.functional.mse_loss(standardized, (labels - target_mean) / target_std)
        return DeepLenseEquivariantOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = [
    "DeepLenseEquivariantPreTrainedModel",
    "DeepLenseEquivariantModel",
    "DeepLenseEquivariantForImageClassification",
    "DeepLenseEquivariantForRegression",
]
