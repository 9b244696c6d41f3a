"""Batch augmentations that respect the symmetries of strong-lensing images.

A lensing image has no preferred orientation: rotations by 90 degrees and mirror flips give
another valid image of the same class (the D4 group on the pixel grid). Small shifts and
detector-like Gaussian noise are also label-preserving. All transforms act on a whole batch
`(batch, channels, height, width)` on the batch's own device, drawing every random number from
one `torch.Generator` (same generator state, same output), without a per-image Python loop.

- [0] SimCLR, Chen et al. 2020, https://arxiv.org/abs/2002.05709 (two augmented views).
- [1] DINO, Caron et al. 2021, https://arxiv.org/abs/2104.14294 (multi-crop: global and local crops).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional


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


def random_square_crops(
    pixel_values: Tensor,
    num_crops: int,
    scale: tuple[float, float],
    size: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """`num_crops` random square crops of each image, resampled (bilinear) to `size` x `size`.

    Args:
        pixel_values: `(batch, channels, height, width)` float tensor.
        num_crops: crops per image.
        scale: `(min, max)` fraction of the image area each crop covers (uniform); the crop lies inside the image.
        size: output side in pixels.
        generator: source of all random numbers (on `pixel_values.device`).

    Returns:
        `(num_crops, batch, channels, size, size)`.
    """
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"scale must be (min, max) with 0 < min <= max <= 1, got {scale}")
    batch, channels, _, width = pixel_values.shape
    device, dtype = pixel_values.device, pixel_values.dtype
    total = num_crops * batch  # crop-major: crop c of image b is row c * batch + b
    area = scale[0] + (scale[1] - scale[0]) * torch.rand(total, generator=generator, device=device)
    side = area.sqrt().to(dtype)  # crop side / image side
    # the crop's samples stay between the image's outer pixel centres (no padding needed): |centre| <= margin
    margin = ((1 - 1 / width) - side * (1 - 1 / size)).clamp(min=0)  # normalised coordinates
    centre = (2 * torch.rand(2, total, generator=generator, device=device, dtype=dtype) - 1) * margin
    theta = torch.zeros(
        total, 2, 3, device=device, dtype=dtype
    )  # sampling grid: scale `side`, shift `centre`
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, 0, 2], theta[:, 1, 2] = centre[0], centre[1]
    grid = functional.affine_grid(theta, [total, channels, size, size], align_corners=False)
    crops = functional.grid_sample(
        pixel_values.repeat(num_crops, 1, 1, 1),
        grid,
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return crops.view(num_crops, batch, channels, size, size)


class MultiCropTransform:
    """Multi-crop views (DINO [1]): two global crops and `num_local_crops` local crops of each image, each a random
    square crop resampled to the image size, then augmented independently.

    The choice for 64 px lensing images: global crops cover 40-100% of the image area (DINO's 0.4-1), local crops
    10-40% (DINO's 0.05-0.4 raised to 0.1: 5% of a 64 px image is a 14 px square, smaller than the lensed arcs).
    Crops are square, without DINO's aspect-ratio jitter: stretching a crop turns an Einstein ring into an ellipse,
    which the network would read as the ellipticity of the lens. Local crops are resampled to the full image size,
    since ViT and hybrid backbones take one input size only (DINO's are 96 px for 224 px global crops); each costs
    as much as a global crop, hence 4 local crops by default rather than DINO's 6-10.

    Args:
        num_local_crops: local crops per image (0: two global crops only).
        global_crop_scale: `(min, max)` fraction of the image area of a global crop.
        local_crop_scale: `(min, max)` fraction of the image area of a local crop.
        augment: the augmentation of every crop (default `LensingAugment()`).

    Returns (when called with `pixel_values (batch, C, H, W)` and an optional `generator`):
        `{"pixel_values", "pixel_values_2"}` (the global crops, `(batch, C, H, W)` each), plus
        `"local_pixel_values"` `(batch, num_local_crops, C, H, W)` when `num_local_crops > 0`.
    """

    def __init__(
        self,
        num_local_crops: int = 4,
        global_crop_scale: tuple[float, float] = (0.4, 1.0),
        local_crop_scale: tuple[float, float] = (0.1, 0.4),
        augment: LensingAugment | None = None,
    ):
        if num_local_crops < 0:
            raise ValueError(f"num_local_crops must be >= 0, got {num_local_crops}")
        self.num_local_crops = int(num_local_crops)
        self.global_crop_scale = tuple(global_crop_scale)
        self.local_crop_scale = tuple(local_crop_scale)
        self.augment = augment if augment is not None else LensingAugment()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_local_crops={self.num_local_crops}, global_crop_scale="
            f"{self.global_crop_scale}, local_crop_scale={self.local_crop_scale}, augment={self.augment!r})"
        )

    def _crops(self, pixel_values: Tensor, num_crops: int, scale, generator) -> Tensor:
        crops = random_square_crops(pixel_values, num_crops, scale, pixel_values.shape[-1], generator)
        return self.augment(crops.flatten(0, 1), generator=generator).view(
            crops.shape
        )  # (crops, batch, C, H, W)

    def __call__(self, pixel_values: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        global_crops = self._crops(pixel_values, 2, self.global_crop_scale, generator)
        views = {"pixel_values": global_crops[0], "pixel_values_2": global_crops[1]}
        if self.num_local_crops:
            local_crops = self._crops(pixel_values, self.num_local_crops, self.local_crop_scale, generator)
            views["local_pixel_values"] = local_crops.transpose(0, 1).contiguous()  # (batch, crops, C, H, W)
        return views
