"""MAE reconstructions for figures: input, masked input and reconstruction of a batch."""

from __future__ import annotations

import os

import torch
from torch import nn

from .plots import plot_mae_reconstructions

__all__ = ["mae_reconstructions", "write_mae_reconstructions"]


@torch.no_grad()
def mae_reconstructions(
    model: nn.Module, pixel_values: torch.Tensor, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reconstruct a batch under a seeded random mask.

    Args:
        model: a masked autoencoder with `patchify`/`unpatchify` and a `noise=` forward argument
            (`DeepLenseMAEForPreTraining`).
        pixel_values: `(batch, C, H, W)`.
        seed: seeds the mask (same seed, same mask).

    Returns:
        `(images, masked, reconstructions)`, each `(batch, C, H, W)` on the CPU: masked patches are
        zero in `masked`; `reconstructions` keep the visible patches of the input and paste the
        predicted ones where the mask was (de-normalised when the model uses `norm_pix_loss`).
    """
    device = next(model.parameters()).device
    pixel_values = pixel_values.to(device=device, dtype=torch.float32)
    num_patches = (pixel_values.shape[-1] // model.config.patch_size) ** 2
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(pixel_values.shape[0], num_patches, generator=generator).to(device)
    outputs = model(pixel_values=pixel_values, noise=noise, return_loss=False)
    predictions = outputs.logits  # (batch, num_patches, patch**2 * C)
    if getattr(model.config, "norm_pix_loss", False):
        target = model.patchify(pixel_values)
        mean = target.mean(dim=-1, keepdim=True)
        std = (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5
        predictions = predictions * std + mean
    mask = outputs.mask[..., None].expand_as(predictions)  # (batch, num_patches, patch**2 * C), 1 = masked
    image_size = pixel_values.shape[-1]
    mask_image = model.unpatchify(mask, image_size)
    reconstructions = model.unpatchify(predictions, image_size)
    masked = pixel_values * (1 - mask_image)
    pasted = masked + reconstructions * mask_image
    return pixel_values.cpu(), masked.cpu(), pasted.cpu()


def write_mae_reconstructions(
    model: nn.Module,
    pixel_values: torch.Tensor,
    path: str | os.PathLike,
    seed: int = 0,
    title: str | None = None,
) -> str:
    """Plot `mae_reconstructions` of a batch to `path` (one row per image); returns the path."""
    images, masked, reconstructions = mae_reconstructions(model, pixel_values, seed=seed)
    return plot_mae_reconstructions(
        images.numpy(),
        masked.numpy(),
        reconstructions.numpy(),
        path,
        max_images=len(images),
        title=title or f"MAE reconstructions (mask ratio {model.config.mask_ratio})",
    )
