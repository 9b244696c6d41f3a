"""Batch augmentations that respect the symmetries of strong-lensing images.

A lensing image has no preferred orientation: rotations by 90 degrees and mirror flips give
another valid image of the same class (the D4 group on the pixel grid). Small shifts and
detector-like Gaussian noise are also label-preserving. All transforms act on a whole batch
`(batch, channels, height, width)` on the batch's own device, drawing every random number from
one `torch.Generator` (same generator state, same output), without a per-image Python loop.

- [0] SimCLR, Chen et al. 2020, https://arxiv.org/abs/2002.05709 (two augmented views).
"""

from __future__ import annotations

import torch
from torch import Tensor


class LensingAugment:
    """Random 90-degree rotations, mirror flips, small shifts and Gaussian noise, per image.

    Args:
        rotate90: rotate each image by a random multiple of 90 degrees (needs square images).
        flip: mirror each image left-right with probability 1/2 (with `rotate90`: the full D4 group).
        max_shift: shift each image by a random whole number of pixels in `[-max_shift, max_shift]`
            along each axis, periodically (pixels leaving one side come back on the other; lensing
            cut-outs have sky at their borders). 0 disables.
        noise_std: standard deviation of added Gaussian noise, in the units of the images. 0 disables.

    The steps apply in that order (rotate, flip, shift, add noise), and their random numbers are drawn from the
    generator in that order too: the same generator state gives the same augmentation.

    Example:
        ```python
        augment = LensingAugment(noise_std=0.01)
        generator = torch.Generator().manual_seed(0)
        views = augment(pixel_values, generator=generator)  # same shape, same device
        ```
    """

    def __init__(self, rotate90: bool = True, flip: bool = True, max_shift: int = 0, noise_std: float = 0.0):
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.rotate90 = rotate90
        self.flip = flip
        self.max_shift = int(max_shift)
        self.noise_std = float(noise_std)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rotate90={self.rotate90}, flip={self.flip}, "
            f"max_shift={self.max_shift}, noise_std={self.noise_std})"
        )

    def __call__(self, pixel_values: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment a batch.

        Args:
            pixel_values: `(batch, channels, height, width)` float tensor.
            generator: source of all random numbers (None: torch's global generator of the batch's device).
                The numbers are drawn on the generator's device and moved to the batch's, so a CPU generator
                augments a batch on a GPU exactly as it augments the same batch on the CPU.

        Returns:
            A new tensor of the same shape, dtype and device.
        """
        if pixel_values.ndim != 4:
            raise ValueError(
                f"pixel_values must be (batch, channels, height, width), got {tuple(pixel_values.shape)}"
            )
        batch, _, height, width = pixel_values.shape
        device = pixel_values.device
        draw = generator.device if generator is not None else device  # where the random numbers are drawn
        output = pixel_values
        if self.rotate90:
            if height != width:
                raise ValueError(f"rotate90 needs square images, got {height}x{width}")
            turns = torch.randint(0, 4, (batch,), generator=generator, device=draw).to(device)
            output = output.clone()
            for k in (1, 2, 3):  # one call per rotation angle, not per image
                selected = turns == k
                output[selected] = torch.rot90(output[selected], k, dims=(2, 3))
        if self.flip:
            flipped = torch.rand(batch, generator=generator, device=draw).to(device) < 0.5
            output = torch.where(flipped[:, None, None, None], output.flip(-1), output)
        if self.max_shift:
            shifts = torch.randint(
                -self.max_shift, self.max_shift + 1, (2, batch), generator=generator, device=draw
            ).to(device)
            rows = (torch.arange(height, device=device)[None, :] - shifts[0][:, None]) % height  # (batch, H)
            cols = (torch.arange(width, device=device)[None, :] - shifts[1][:, None]) % width  # (batch, W)
            output = output.gather(2, rows[:, None, :, None].expand_as(output))
            output = output.gather(3, cols[:, None, None, :].expand_as(output))
        if self.noise_std:
            noise = torch.randn(output.shape, generator=generator, device=draw, dtype=output.dtype).to(device)
            output = output + self.noise_std * noise
        return output


class TwoViewTransform:
    """Two independently augmented views of a batch, for contrastive learning (SimCLR [0]).

    Args:
        augment: the augmentation of each view (default `LensingAugment()`).
        second_augment: a different augmentation for the second view (default: `augment`).

    Returns (when called with `pixel_values` and an optional `generator`):
        `{"pixel_values": view_1, "pixel_values_2": view_2}`, each `(batch, C, H, W)`.
    """

    def __init__(self, augment: LensingAugment | None = None, second_augment: LensingAugment | None = None):
        self.augment = augment if augment is not None else LensingAugment()
        self.second_augment = second_augment if second_augment is not None else self.augment

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.augment!r}, {self.second_augment!r})"

    def __call__(self, pixel_values: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        return {
            "pixel_values": self.augment(pixel_values, generator=generator),
            "pixel_values_2": self.second_augment(pixel_values, generator=generator),
        }
