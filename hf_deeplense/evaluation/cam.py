"""Class-activation maps: Grad-CAM for CNN and hybrid models, attention rollout for ViTs.

- [0] Grad-CAM: Selvaraju et al., 2017, https://arxiv.org/abs/1610.02391
- [1] Attention rollout: Abnar & Zuidema, "Quantifying Attention Flow in Transformers", 2020,
  https://arxiv.org/abs/2005.00928

Every DeepLense model exposes `get_cam_target_layer()`: a convolutional module (CNN, hybrid) whose
output Grad-CAM weights by the gradient of the target score, or `None` (ViT), in which case the map
comes from attention rollout over `output_attentions=True` attentions (eager attention).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .plots import plot_cam_overlays

__all__ = [
    "attention_rollout",
    "attention_rollout_maps",
    "class_activation_maps",
    "grad_cam",
    "rollout_to_patch_map",
    "write_cam_overlays",
]


def _normalise_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each `(H, W)` map of a `(batch, H, W)` tensor to [0, 1] (all-zero maps stay zero)."""
    flat = maps.flatten(1)
    low = flat.min(dim=1).values[:, None, None]
    high = flat.max(dim=1).values[:, None, None]
    return torch.where(high > low, (maps - low) / (high - low).clamp_min(1e-12), torch.zeros_like(maps))


def _target_index(logits: torch.Tensor, target: int | Sequence[int] | torch.Tensor | None) -> torch.Tensor:
    batch = logits.shape[0]
    if target is None:
        # classification: the predicted class; regression (one column): that column
        return logits.argmax(dim=1) if logits.shape[1] > 1 else torch.zeros(batch, dtype=torch.long)
    target = torch.as_tensor(target, dtype=torch.long, device=logits.device)
    return target.expand(batch) if target.ndim == 0 else target


@torch.enable_grad()
def grad_cam(
    model: nn.Module,
    pixel_values: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor | None = None,
    layer: nn.Module | None = None,
) -> torch.Tensor:
    """Grad-CAM maps at the input resolution.

    Args:
        model: a model returning `.logits` (`(batch, num_labels)` or `(batch, num_targets)`).
        pixel_values: `(batch, C, H, W)`.
        target: the logit column explained per sample (an int, or `(batch,)` ids); default: the
            predicted class (classification) or column 0 (regression).
        layer: the module whose output `(batch, channels, h, w)` is explained; default
            `model.get_cam_target_layer()`.

    Returns:
        `(batch, H, W)` float tensor in [0, 1].
    """
    layer = layer if layer is not None else model.get_cam_target_layer()
    if layer is None:
        raise ValueError(
            f"{type(model).__name__} has no convolutional CAM target layer: use attention_rollout_maps"
        )
    captured = {}

    def hook(module, inputs, output):
        captured["activation"] = output[0] if isinstance(output, (tuple, list)) else output

    handle = layer.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        logits = model(pixel_values=pixel_values).logits
    finally:
        handle.remove()
        model.train(was_training)
    activation = captured["activation"]
    if activation.ndim != 4:
        raise ValueError(
            f"CAM target layer output must be (batch, channels, h, w), got {tuple(activation.shape)}"
        )
    score = logits.gather(1, _target_index(logits, target)[:, None]).sum()
    (gradient,) = torch.autograd.grad(score, activation)
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (batch, channels, 1, 1): pooled gradients
    maps = F.relu((weights * activation).sum(dim=1, keepdim=True))  # (batch, 1, h, w)
    maps = F.interpolate(maps, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return _normalise_maps(maps.detach())


def attention_rollout(
    attentions: Sequence[torch.Tensor], head_fusion: str = "mean", residual: bool = True
) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): the product of per-layer attention matrices.

    Each layer's heads are fused (`mean`, `max` or `min`), the residual connection is accounted
    for as `0.5 * A + 0.5 * I`, rows are renormalised, and the layers are multiplied from the
    first to the last: `R = A_L ... A_2 A_1`.

    Args:
        attentions: one `(batch, heads, tokens, tokens)` tensor per layer.
        head_fusion: how the heads are combined.
        residual: add the identity for the skip connection.

    Returns:
        `(batch, tokens, tokens)`: row `i` is how much each input token flows into output token `i`.
    """
    fuse = {"mean": lambda a: a.mean(dim=1), "max": lambda a: a.amax(dim=1), "min": lambda a: a.amin(dim=1)}
    if head_fusion not in fuse:
        raise ValueError(f"head_fusion must be one of {sorted(fuse)}, got {head_fusion!r}")
    rollout = None
    for attention in attentions:
        fused = fuse[head_fusion](attention.detach().float())  # (batch, tokens, tokens)
        if residual:
            fused = 0.5 * fused + 0.5 * torch.eye(fused.shape[-1], device=fused.device)
        fused = fused / fused.sum(dim=-1, keepdim=True)
        rollout = fused if rollout is None else fused @ rollout
    if rollout is None:
        raise ValueError("attention_rollout needs at least one layer of attentions")
    return rollout


def rollout_to_patch_map(
    rollout: torch.Tensor, grid_size: tuple[int, int], num_prefix_tokens: int
) -> torch.Tensor:
    """Per-patch relevance `(batch, grid_h, grid_w)` from a rollout `(batch, tokens, tokens)`.

    With a [CLS] token (`num_prefix_tokens >= 1`) the map is the [CLS] row over the patch columns;
    without one (mean pooling) it is the mean over all output rows.
    """
    patch_columns = rollout[:, :, num_prefix_tokens:]
    relevance = patch_columns[:, 0] if num_prefix_tokens else patch_columns.mean(dim=1)
    grid_h, grid_w = grid_size
    if relevance.shape[-1] != grid_h * grid_w:
        raise ValueError(f"{relevance.shape[-1]} patch tokens do not fill a {grid_h}x{grid_w} grid")
    return relevance.reshape(-1, grid_h, grid_w)


@torch.no_grad()
def attention_rollout_maps(
    model: nn.Module, pixel_values: torch.Tensor, head_fusion: str = "mean"
) -> torch.Tensor:
    """Attention-rollout maps of a ViT-like model at the input resolution, `(batch, H, W)` in [0, 1].

    The model must return `attentions` with `output_attentions=True` (eager attention: models
    loaded with another implementation are switched with `set_attn_implementation("eager")`).
    """
    if getattr(model.config, "_attn_implementation", "eager") != "eager" and hasattr(
        model, "set_attn_implementation"
    ):
        model.set_attn_implementation("eager")
    was_training = model.training
    model.eval()
    try:
        outputs = model(pixel_values=pixel_values, output_attentions=True)
    finally:
        model.train(was_training)
    if not getattr(outputs, "attentions", None):
        raise ValueError(
            f"{type(model).__name__} returned no attentions: load it with attn_implementation='eager'"
        )
    rollout = attention_rollout(outputs.attentions, head_fusion=head_fusion)
    height, width = pixel_values.shape[-2:]
    num_tokens = rollout.shape[-1]
    config = model.config
    if getattr(config, "image_size", None) and getattr(config, "patch_size", None):
        grid = config.image_size // config.patch_size
    else:  # the largest square grid, the rest being prefix tokens ([CLS], registers)
        grid = math.isqrt(num_tokens)
    patch_map = rollout_to_patch_map(rollout, (grid, grid), num_prefix_tokens=num_tokens - grid * grid)
    maps = F.interpolate(patch_map[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    return _normalise_maps(maps)


def class_activation_maps(
    model: nn.Module, pixel_values: torch.Tensor, target: int | Sequence[int] | torch.Tensor | None = None
) -> torch.Tensor:
    """Grad-CAM where the model has a CAM target layer, attention rollout otherwise: `(batch, H, W)`."""
    get_layer = getattr(model, "get_cam_target_layer", None)
    layer = get_layer() if get_layer is not None else None
    if layer is not None:
        return grad_cam(model, pixel_values, target=target, layer=layer)
    return attention_rollout_maps(model, pixel_values)


def write_cam_overlays(
    model: nn.Module,
    pixel_values: torch.Tensor,
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
) -> str:
    """Compute class-activation maps for a batch and write the overlay grid; returns the PNG path.

    Titles give the predicted class (and the true one when `labels` is given).
    """
    maps = class_activation_maps(model, pixel_values)
    with torch.no_grad():
        logits = model(pixel_values=pixel_values).logits
    titles = None
    if class_names is not None and logits.shape[1] == len(class_names):
        predicted = logits.argmax(dim=1).tolist()
        titles = [f"pred {class_names[p]}" for p in predicted]
        if labels is not None:
            titles = [f"{title} / true {class_names[int(label)]}" for title, label in zip(titles, labels)]
    method = (
        "Grad-CAM"
        if getattr(model, "get_cam_target_layer", lambda: None)() is not None
        else "attention rollout"
    )
    return plot_cam_overlays(
        pixel_values.detach().cpu().numpy(), maps.cpu().numpy(), path, titles=titles, title=method
    )
