"""DINO self-distillation of any DeepLense backbone: a student and an exponential-moving-average teacher.

- [0] DINO, 2021, https://arxiv.org/abs/2104.14294 (Caron, Touvron, Misra, Jegou, Mairal, Bojanowski, Joulin)

The student sees every crop (two global crops and the local crops), the teacher the global crops only; the loss
(`loss_dino.dino_loss`) makes the student's distribution over `out_dim` prototypes match the centred, sharpened
teacher distribution of the other global crop. Only the student receives gradients; the teacher follows it by an
exponential moving average with a cosine momentum schedule (`momentum_pairs`, updated after every optimizer step
by `hf_deeplense.training.callbacks.MomentumEncoderCallback`), and its temperature warms up linearly
(`set_training_progress`).

Views: `hf_deeplense.data.MultiCropTransform` through `LensingCollator(multi_crop=...)`; for 64 px lensing images
2 global crops over 40-100% of the image area and 4 local crops over 10-40%, square (no aspect-ratio jitter, which would
fake a lens ellipticity) and resampled to the image size (ViT and hybrid backbones take one input size); that
class's docstring gives the reasons.

The teacher backbone is `backbone` (the encoder [0] evaluates and the one kept for fine-tuning: the heads at the end
of this file keep `backbone.*` only, so `AutoModelForImageClassification.from_pretrained(dino_dir, num_labels=3)` and
`AutoModelForLensRegression.from_pretrained(dino_dir)` fine-tune the teacher); the student's is `student_backbone`.
Backbones are built through `AutoModel` from `config.backbone_config`, as in `deeplense_simclr` (remote code carries
the backbone's files).
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

from .configuration_dino import DeepLenseDINOConfig
from .loss_dino import dino_loss, updated_center


@dataclass
class DeepLenseDINOOutput(ModelOutput):
    """
    Output of [`DeepLenseDINOModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned with two global crops and `return_loss=True`):
            The DINO loss.
        embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Pooled teacher-backbone features of the first view: the representation used downstream.
        embeddings_2 (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*, returned with two views):
            Pooled teacher-backbone features of the second global crop.
        student_logits (`torch.FloatTensor` of shape `(2 + num_local_crops, batch_size, out_dim)`, *optional*):
            Student head outputs: the two global crops, then the local crops.
        teacher_logits (`torch.FloatTensor` of shape `(2, batch_size, out_dim)`, *optional*):
            Teacher head outputs of the two global crops.
        last_hidden_state (`torch.FloatTensor`):
            The teacher backbone's `last_hidden_state` for the first view.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Same tensor as `embeddings`.
    """

    loss: torch.FloatTensor | None = None
    embeddings: torch.FloatTensor | None = None
    embeddings_2: torch.FloatTensor | None = None
    student_logits: torch.FloatTensor | None = None
    teacher_logits: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None


# Copied from hf_deeplense.models.simclr.modeling_simclr.build_backbone with SimCLR->DINO
def build_backbone(config: DeepLenseDINOConfig) -> PreTrainedModel:
    """The base model of `config.backbone_config` (random weights)."""
    backbone_config = config.backbone_config
    # A backbone config loaded as remote code comes from the repository the user trusted to load this model.
    trusted_remote = type(backbone_config).__module__.startswith("transformers_modules.")
    return AutoModel.from_config(backbone_config, trust_remote_code=trusted_remote)


# Copied from hf_deeplense.models.simclr.modeling_simclr.backbone_width
def backbone_width(backbone: PreTrainedModel) -> int:
    """Width of the backbone's `pooler_output` (CNNs: timm's `num_features`; transformers: `hidden_size`)."""
    return getattr(backbone, "num_features", None) or backbone.config.hidden_size


class DeepLenseDINOHead(nn.Module):
    """The DINO head (Sec. 3.1 and Appendix of [0]): a 3-layer MLP with GELU, an L2-normalised bottleneck and a
    weight-normalised linear layer whose weight norm is fixed at 1 (the paper's default, `norm_last_layer`)."""

    def __init__(self, input_dim: int, hidden_dim: int, bottleneck_dim: int, output_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, bottleneck_dim)
        self.activation = nn.GELU()
        self.last_layer = nn.Linear(bottleneck_dim, output_dim, bias=False)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        hidden = self.fc3(
            self.activation(self.fc2(self.activation(self.fc1(embeddings))))
        )  # (batch, bottleneck)
        hidden = nn.functional.normalize(hidden, dim=-1)
        prototypes = nn.functional.normalize(
            self.last_layer.weight, dim=1
        )  # (out_dim, bottleneck), unit rows
        return nn.functional.linear(hidden, prototypes)  # (batch, out_dim)


class DeepLenseDINOPreTrainedModel(PreTrainedModel):
    config_class = DeepLenseDINOConfig
    config: DeepLenseDINOConfig
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

    # Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRPreTrainedModel.save_pretrained with SimCLR->DINO
    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus what remote code needs without hf_deeplense: every Auto class
        of the architecture in `config.auto_map`, and the backbone's code files next to ours, named in
        `config.backbone_config.auto_map` (read back by `DeepLenseDINOConfig._resolve_backbone_config`)."""
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


class DeepLenseDINOModel(DeepLenseDINOPreTrainedModel):
    """DINO: student (`student_backbone`, `student_head`) and teacher (`backbone`, `teacher_head`, an exponential
    moving average of the student, no gradient), and the running centre of the teacher outputs (`center`)."""

    def __init__(self, config: DeepLenseDINOConfig):
        super().__init__(config)
        self.student_backbone = build_backbone(config)
        width = backbone_width(self.student_backbone)
        head_sizes = (width, config.head_hidden_size, config.head_bottleneck_size, config.out_dim)
        self.student_head = DeepLenseDINOHead(*head_sizes)
        self.backbone = build_backbone(config)
        self.teacher_head = DeepLenseDINOHead(*head_sizes)
        self.register_buffer("center", torch.zeros(config.out_dim))
        self.teacher_temperature = config.warmup_teacher_temperature  # set by `set_training_progress`
        self.post_init()
        with torch.no_grad():  # the teacher starts as a copy of the student and is never trained by gradients
            for student, teacher in self.momentum_pairs():
                for student_parameter, teacher_parameter in zip(student.parameters(), teacher.parameters()):
                    teacher_parameter.copy_(student_parameter)
                teacher.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with the teacher frozen again (loading makes new parameters)."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) on request
        for _, ema_module in model.momentum_pairs():
            ema_module.requires_grad_(False)
        return loaded

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(student module, teacher module) pairs: `teacher = m * teacher + (1 - m) * student` after each step."""
        return [(self.student_backbone, self.backbone), (self.student_head, self.teacher_head)]

    def set_training_progress(self, progress: float) -> None:
        """Teacher temperature at `progress` (completed fraction of training, in [0, 1]): a linear warm-up from
        `warmup_teacher_temperature` to `teacher_temperature` over `warmup_teacher_temperature_fraction`."""
        config = self.config
        warmup = config.warmup_teacher_temperature_fraction
        fraction = 1.0 if warmup == 0 else min(max(progress, 0.0) / warmup, 1.0)
        start, end = config.warmup_teacher_temperature, config.teacher_temperature
        self.teacher_temperature = start + fraction * (end - start)

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        pixel_values_2: torch.Tensor | None = None,
        local_pixel_values: torch.Tensor | None = None,
        return_loss: bool = True,
    ) -> DeepLenseDINOOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                First global crop of each image (or the images, to embed them with the teacher backbone).
            pixel_values_2 (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`, *optional*):
                Second global crop; without it only `embeddings` (and the backbone outputs) are returned.
            local_pixel_values (`torch.FloatTensor` of shape `(batch_size, num_local_crops, num_channels, h, w)`, *optional*):
                Local crops, seen by the student only.
            return_loss (`bool`, *optional*, defaults to `True`):
                Compute the DINO loss when both global crops are given.

        In training mode a forward with two global crops also moves `center` towards the mean teacher output.
        """
        if pixel_values_2 is None:
            outputs = self.backbone(pixel_values, return_dict=True)
            return DeepLenseDINOOutput(
                embeddings=outputs.pooler_output,
                last_hidden_state=outputs.last_hidden_state,
                pooler_output=outputs.pooler_output,
            )
        batch_size = pixel_values.shape[0]
        global_views = torch.cat([pixel_values, pixel_values_2])  # (2 * batch, C, H, W), one pass per network
        with torch.no_grad():
            teacher_outputs = self.backbone(global_views, return_dict=True)
            teacher_logits = self.teacher_head(teacher_outputs.pooler_output)  # (2 * batch, out_dim)
        teacher_logits = teacher_logits.view(2, batch_size, -1)
        student_logits = [
            self.student_head(self.student_backbone(global_views, return_dict=True).pooler_output)
        ]
        if local_pixel_values is not None:
            local_views = local_pixel_values.transpose(0, 1).flatten(
                0, 1
            )  # (num_local * batch, C, h, w), crop-major
            student_logits.append(
                self.student_head(self.student_backbone(local_views, return_dict=True).pooler_output)
            )
        student_logits = torch.cat(student_logits).view(
            -1, batch_size, self.config.out_dim
        )  # (crops, batch, out_dim)
        loss = None
        if return_loss:
            loss = dino_loss(
                student_logits,
                teacher_logits,
                self.center,
                self.config.student_temperature,
                self.teacher_temperature,
            )
        if self.training:
            self.center.copy_(updated_center(self.center, teacher_logits, self.config.center_momentum))
        embeddings, embeddings_2 = teacher_outputs.pooler_output.split(batch_size)  # (batch, hidden) each
        output = DeepLenseDINOOutput(
            loss=loss,
            embeddings=embeddings,
            embeddings_2=embeddings_2,
            student_logits=student_logits,
            teacher_logits=teacher_logits,
            last_hidden_state=teacher_outputs.last_hidden_state[:batch_size],
            pooler_output=embeddings,
        )
        return output


# Copied from hf_deeplense.models.simclr.modeling_simclr._DeepLenseSimCLRLinearHead with SimCLR->DINO
class _DeepLenseDINOLinearHead(DeepLenseDINOPreTrainedModel):
    """Backbone + dropout + one linear layer on the pooled features (a linear probe when the backbone is frozen:
    `hf_deeplense.training.modeling.freeze_backbone`)."""

    def __init__(self, config: DeepLenseDINOConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)

    def pooled_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.backbone(pixel_values, return_dict=True).pooler_output)  # (batch, hidden)


# Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRForImageClassification with SimCLR->DINO
class DeepLenseDINOForImageClassification(_DeepLenseDINOLinearHead):
    """DINO backbone with a linear classifier; cross-entropy loss on `labels (batch,)`."""

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseDINOConfig):
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


# Copied from hf_deeplense.models.simclr.modeling_simclr.DeepLenseSimCLRForRegression with SimCLR->DINO
class DeepLenseDINOForRegression(_DeepLenseDINOLinearHead):
    """DINO backbone with a linear regression head.

    The head predicts standardised targets `(y - target_mean) / target_std`; `logits` are mapped back to the
    original units and the loss is the MSE of the standardised values, so every target weighs the same.
    """

    # The loss is a mean over the batch: let Trainer scale it under gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: DeepLenseDINOConfig):
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
    "DeepLenseDINOForImageClassification",
    "DeepLenseDINOForRegression",
    "DeepLenseDINOHead",
    "DeepLenseDINOModel",
    "DeepLenseDINOOutput",
    "DeepLenseDINOPreTrainedModel",
]
