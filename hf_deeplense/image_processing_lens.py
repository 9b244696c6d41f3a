"""Image processor for strong-lensing images: `LensImageProcessor`.

Imports only numpy, torch and transformers: `save_pretrained` copies this file next to the weights so that
`AutoImageProcessor.from_pretrained(repo, trust_remote_code=True)` works where hf_deeplense is not installed.

Processing order (each step runs on a whole batch array at once; normalisation is per image):

1. **Layout.** Every input becomes a tensor `(N, C, H, W)`, processed in float64. Accepted: numpy arrays and torch tensors of
   shape `(H, W)`, `(C, H, W)`, `(H, W, C)`, batches `(N, C, H, W)` / `(N, H, W, C)`, lists of any of these,
   float, integer or bool dtypes; PIL images (modes `F`, `I`, `I;16`, `L`, `RGB`; other modes are converted to
   `RGB`). The channel axis is given by `input_data_format` (`"channels_first"` / `"channels_last"`), or inferred
   when it is None: a 3-D image (or the last 3 axes of a batch) is channels-last when its last axis has a
   plausible channel count (1, 3 or `num_channels`) and its first axis does not; otherwise it is channels-first.
   So `(64, 64, 3)` is channels-last, `(3, 64, 64)` and the ambiguous `(3, 64, 3)` are channels-first.
2. **Channels.** The channel count must equal `num_channels`. A 1-channel image is repeated to `num_channels`
   only when `repeat_grey_channels=True`. PIL `RGB` images given to a 1-channel model are averaged to grey
   (`transformers.pipeline` converts every PNG/JPEG to `RGB`, even grey ones); arrays never are.
3. **Centre crop** to `crop_size` (if `do_center_crop`; `crop_size=None` means `size`).
4. **Normalisation** (`normalization`): `"minmax"` maps each image (all channels together) to [0, 1]; a
   constant image maps to zeros (no division by zero). `"mean_std"` computes `(x - image_mean[c]) / image_std[c]`
   per channel on the raw values. `"none"` leaves values as they are.
5. **Resize** to `(size, size)` with torch bilinear interpolation (antialiased when shrinking), if `do_resize`.

Output: `BatchFeature({"pixel_values": float32 (N, num_channels, size, size)})`, as torch (`return_tensors="pt"`)
or numpy (`"np"` or None). NaN/inf values, a wrong rank or channel count, an empty input or a crop larger than
the image raise `ValueError` naming the offending item (its index in the input list, plus the row of a batch)
and its shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoImageProcessor
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor
from transformers.image_utils import is_pil_image

NORMALIZATIONS = ("minmax", "mean_std", "none")
DATA_FORMATS = ("channels_first", "channels_last")
CHUNK_ELEMENTS = 1 << 18  # values processed at once: 2 MiB of float64, cache-sized


class LensImageProcessorKwargs(TypedDict, total=False):
    """Settings of `LensImageProcessor` that `from_pretrained(..., **kwargs)` and `__call__` may override."""

    num_channels: int
    size: int
    do_resize: bool
    do_center_crop: bool
    crop_size: int | None
    normalization: str
    image_mean: float | list[float] | None
    image_std: float | list[float] | None
    repeat_grey_channels: bool


class LensImageProcessor(BaseImageProcessor):
    r"""Turns lensing images (arrays, tensors, PIL images) into the `pixel_values` a DeepLense model takes.

    See the module docstring for the accepted inputs and the order of operations.

    Args:
        num_channels (`int`, *optional*, defaults to 1):
            Channels the model expects (1 for single-band simulations, 3 for g/r/i lens finding).
        size (`int`, *optional*, defaults to 64):
            Output height and width in pixels.
        do_resize (`bool`, *optional*, defaults to `True`):
            Resize (bilinear) to `size x size`. Without it, all images must already share one shape.
        do_center_crop (`bool`, *optional*, defaults to `False`):
            Centre-crop to `crop_size x crop_size` before normalising and resizing.
        crop_size (`int`, *optional*):
            Side of the centre crop; defaults to `size`.
        normalization (`str`, *optional*, defaults to `"minmax"`):
            `"minmax"` (per image, to [0, 1]), `"mean_std"` (fixed per-channel `image_mean` / `image_std`) or `"none"`.
        image_mean (`float` or `list[float]`, *optional*):
            Per-channel mean for `"mean_std"` (one value is broadcast to all channels).
        image_std (`float` or `list[float]`, *optional*):
            Per-channel standard deviation for `"mean_std"`; must be positive.
        repeat_grey_channels (`bool`, *optional*, defaults to `False`):
            Allow repeating a 1-channel image to `num_channels` channels.
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = LensImageProcessorKwargs

    def __init__(
        self,
        num_channels: int = 1,
        size: int = 64,
        do_resize: bool = True,
        do_center_crop: bool = False,
        crop_size: int | None = None,
        normalization: str = "minmax",
        image_mean: float | list[float] | None = None,
        image_std: float | list[float] | None = None,
        repeat_grey_channels: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.size = size
        self.do_resize = do_resize
        self.do_center_crop = do_center_crop
        self.crop_size = crop_size
        self.normalization = normalization
        self.image_mean = image_mean
        self.image_std = image_std
        self.repeat_grey_channels = repeat_grey_channels
        self._validate_settings(self._settings())

    def _settings(self, **overrides: Any) -> dict[str, Any]:
        settings = {key: getattr(self, key) for key in LensImageProcessorKwargs.__annotations__}
        unknown = set(overrides) - set(settings)
        if unknown:
            raise TypeError(
                f"LensImageProcessor got unknown arguments {sorted(unknown)}; known: {sorted(settings)}"
            )
        settings.update({key: value for key, value in overrides.items() if value is not None})
        return settings

    @staticmethod
    def _validate_settings(settings: dict[str, Any]) -> None:
        for key in ("num_channels", "size"):
            if not isinstance(settings[key], int) or settings[key] < 1:
                raise ValueError(f"{key} must be a positive int, got {settings[key]!r}")
        crop_size = settings["crop_size"]
        if crop_size is not None and (not isinstance(crop_size, int) or crop_size < 1):
            raise ValueError(f"crop_size must be a positive int or None, got {crop_size!r}")
        if settings["normalization"] not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {settings['normalization']!r}"
            )
        if settings["normalization"] == "mean_std":
            for key in ("image_mean", "image_std"):
                values = np.atleast_1d(
                    np.asarray(settings[key] if settings[key] is not None else np.nan, float)
                )
                if not np.all(np.isfinite(values)) or len(values) not in (1, settings["num_channels"]):
                    raise ValueError(
                        f'normalization="mean_std" needs {key} as a finite float or a list of num_channels '
                        f"({settings['num_channels']}) floats, got {settings[key]!r}"
                    )
            if np.any(np.asarray(settings["image_std"], float) <= 0):
                raise ValueError(f"image_std must be positive, got {settings['image_std']!r}")

    # -- 1. inputs to a list of (N, C, H, W) batches --------------------------------------------------

    def _split_images(
        self, images: Any, input_data_format: str | None, num_channels: int
    ) -> list[tuple[list[str], torch.Tensor, bool]]:
        """Flatten the input to `(item labels, (N, C, H, W) tensor, came_from_pil)` triples: one
        per list item (a batch array stays one triple, processed with whole-batch tensor operations)."""
        if input_data_format is not None and input_data_format not in DATA_FORMATS:
            raise ValueError(
                f"input_data_format must be one of {DATA_FORMATS} or None, got {input_data_format!r}"
            )
        if isinstance(images, (list, tuple)):
            if len(images) == 0:
                raise ValueError("LensImageProcessor got an empty list of images")
            items = list(enumerate(images))
            is_list = True
        else:
            items = [(0, images)]
            is_list = False
        out = []
        for index, item in items:
            label = f"item {index}" if is_list else "input"
            if is_pil_image(item):
                out.append(([label], self._pil_to_tensor(item), True))
                continue
            array = self._to_tensor(item, label)
            if array.ndim == 4:
                if array.shape[0] == 0:
                    raise ValueError(f"{label} is an empty batch of shape {tuple(array.shape)}")
                labels = [
                    f"{label} (batch row {row})" if is_list else f"item {row}" for row in range(len(array))
                ]
                batch = self._to_channels_first(array, input_data_format, num_channels, labels[0])
                out.append((labels, batch, False))
            elif array.ndim in (2, 3):
                out.append(
                    (
                        [label],
                        self._to_channels_first(array[None], input_data_format, num_channels, label),
                        False,
                    )
                )
            else:
                raise ValueError(
                    f"{label} has shape {tuple(array.shape)}: expected (H, W), (C, H, W), (H, W, C), "
                    "(N, C, H, W) or (N, H, W, C)"
                )
        return out

    @staticmethod
    def _to_tensor(item: Any, label: str) -> torch.Tensor:
        if isinstance(item, np.ndarray):
            if item.dtype.kind not in "fiub":
                raise ValueError(
                    f"{label} has dtype {item.dtype} (shape {item.shape}): expected real numbers"
                )
            if item.dtype.kind == "u" and item.dtype.itemsize > 1:  # torch has uint8, not the wider ones
                item = item.astype(np.float64)
            elif not item.dtype.isnative:  # e.g. FITS data (big-endian): torch needs the native byte order
                item = item.astype(item.dtype.newbyteorder("="))
            return torch.from_numpy(np.ascontiguousarray(item))
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu()
            if item.is_complex():
                raise ValueError(
                    f"{label} has dtype {item.dtype} (shape {tuple(item.shape)}): expected real numbers"
                )
            return item
        raise ValueError(
            f"{label} has type {type(item).__name__}: expected a numpy array, a torch tensor or a PIL image"
        )

    @staticmethod
    def _pil_to_tensor(image: Any) -> torch.Tensor:
        if image.mode not in ("F", "I", "I;16", "L", "RGB"):
            image = image.convert("RGB")
        array = torch.from_numpy(np.asarray(image, dtype=np.float64))
        return array[None, None] if array.ndim == 2 else array.permute(2, 0, 1)[None]

    @staticmethod
    def _to_channels_first(
        batch: torch.Tensor, input_data_format: str | None, num_channels: int, label: str
    ) -> torch.Tensor:
        """`(N, H, W)` / `(N, C, H, W)` / `(N, H, W, C)` -> `(N, C, H, W)`, dtype kept (`label`: the first row's)."""
        if batch.ndim == 3:
            batch = batch[:, None]
        elif input_data_format == "channels_last" or (
            input_data_format is None
            and batch.shape[-1] in (1, 3, num_channels)
            and batch.shape[1] not in (1, 3, num_channels)
        ):
            batch = batch.permute(0, 3, 1, 2)
        if min(batch.shape[1:]) == 0:
            raise ValueError(f"{label} is empty: shape (C, H, W) = {tuple(batch.shape[1:])}")
        return batch

    # -- 2.-5. batch processing ---------------------------------------------------------------------------

    def _process_batch(
        self, labels: list[str], batch: torch.Tensor, from_pil: bool, settings: dict[str, Any]
    ) -> torch.Tensor:
        """`(N, C, H, W)` -> `(N, num_channels, size, size)` float32, in chunks of about `CHUNK_ELEMENTS` values:
        whole-chunk tensor operations, with chunks small enough to stay in the CPU cache (processing a large
        batch at once is memory-bound and slower than a loop over images)."""
        rows_per_chunk = max(1, CHUNK_ELEMENTS // max(1, batch[0].numel()))
        return torch.cat(
            [
                self._process_chunk(labels[start:], batch[start : start + rows_per_chunk], from_pil, settings)
                for start in range(0, len(batch), rows_per_chunk)
            ]
        )

    def _process_chunk(
        self, labels: list[str], images: torch.Tensor, from_pil: bool, settings: dict[str, Any]
    ) -> torch.Tensor:
        images = images.to(torch.float64)
        shape = tuple(images.shape[1:])
        finite = torch.isfinite(images).flatten(1).all(dim=1)  # (N,)
        if not finite.all():
            row = int((~finite).nonzero()[0])
            bad = int((~torch.isfinite(images[row])).sum())
            raise ValueError(f"{labels[row]} (shape (C, H, W) = {shape}) has {bad} NaN/inf value(s)")
        num_channels = settings["num_channels"]
        channels = images.shape[1]
        if channels != num_channels:
            if from_pil and channels == 3 and num_channels == 1:
                images = images.mean(dim=1, keepdim=True)
            elif channels == 1 and settings["repeat_grey_channels"]:
                images = images.expand(-1, num_channels, -1, -1)
            else:
                hint = " (set repeat_grey_channels=True to repeat a grey image)" if channels == 1 else ""
                raise ValueError(
                    f"{labels[0]} has {channels} channel(s) (shape (C, H, W) = {shape}), the processor expects "
                    f"num_channels={num_channels}{hint}"
                )
        if settings["do_center_crop"]:
            images = self._center_crop(images, settings["crop_size"] or settings["size"], labels[0])
        images = self._normalize(images, settings)
        size = settings["size"]
        if settings["do_resize"] and tuple(images.shape[-2:]) != (size, size):
            shrinking = images.shape[-2] > size or images.shape[-1] > size
            images = F.interpolate(
                images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking
            )
        if settings["normalization"] == "minmax":
            images = images.clamp(0.0, 1.0)  # interpolation is convex: this only removes rounding error
        return images.to(torch.float32)

    @staticmethod
    def _center_crop(images: torch.Tensor, crop_size: int, label: str) -> torch.Tensor:
        height, width = images.shape[-2:]
        if crop_size > height or crop_size > width:
            raise ValueError(
                f"{label} of shape (C, H, W) = {tuple(images.shape[1:])} is smaller than crop_size={crop_size}"
            )
        top = (height - crop_size) // 2
        left = (width - crop_size) // 2
        return images[..., top : top + crop_size, left : left + crop_size]

    @staticmethod
    def _normalize(images: torch.Tensor, settings: dict[str, Any]) -> torch.Tensor:
        if settings["normalization"] == "minmax":
            low = images.amin(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1): per image, all channels
            high = images.amax(dim=(1, 2, 3), keepdim=True)
            scale = torch.maximum(low.abs(), high.abs())
            # divide by the magnitude first so that high - low cannot overflow for values near the float max
            safe_scale = torch.where(scale == 0, 1.0, scale)
            low_scaled, high_scaled = low / safe_scale, high / safe_scale
            spread = high_scaled - low_scaled
            constant = spread == 0  # a constant (or all-zero) image maps to zeros
            normalized = (images / safe_scale - low_scaled) / torch.where(constant, 1.0, spread)
            return torch.where(constant, 0.0, normalized)
        if settings["normalization"] == "mean_std":
            mean = torch.as_tensor(settings["image_mean"], dtype=torch.float64).reshape(1, -1, 1, 1)
            std = torch.as_tensor(settings["image_std"], dtype=torch.float64).reshape(1, -1, 1, 1)
            return (images - mean) / std
        return images

    # -- public API ---------------------------------------------------------------------------------------

    def preprocess(
        self,
        images: Any,
        return_tensors: str | None = None,
        input_data_format: str | None = None,
        **overrides: Any,
    ) -> BatchFeature:
        """Process one image, a batch or a list of images into `pixel_values`.

        Args:
            images: see the module docstring for the accepted types and shapes.
            return_tensors: `"pt"` for a torch tensor, `"np"` or None for a numpy array.
            input_data_format: `"channels_first"`, `"channels_last"` or None (inferred, see the module docstring).
            **overrides: any constructor setting (`size`, `normalization`, ...) for this call only.

        Returns:
            `BatchFeature` with `pixel_values` float32 of shape `(N, num_channels, size, size)`.
        """
        settings = self._settings(**overrides)
        self._validate_settings(settings)
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f'return_tensors must be "pt", "np" or None, got {return_tensors!r}')
        items = self._split_images(images, input_data_format, settings["num_channels"])
        processed = [
            self._process_batch(labels, batch, from_pil, settings) for labels, batch, from_pil in items
        ]
        shapes = {tuple(pixels.shape[1:]) for pixels in processed}
        if len(shapes) > 1:
            raise ValueError(
                f"images end with different shapes {sorted(shapes)}; set do_resize=True to bring them to one size"
            )
        pixel_values = torch.cat(processed)  # (N, num_channels, size, size)
        if return_tensors != "pt":
            pixel_values = pixel_values.numpy()
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)


def register_lens_image_processor(config_classes: Iterable[type]) -> None:
    """Make `AutoImageProcessor` resolve `LensImageProcessor` for models of these config classes.

    Called by `import hf_deeplense` for every registered DeepLense architecture; safe to call twice. Registered for
    both transformers backends ("torchvision" is the default, "pil" the fallback), which here are the same class.
    """
    for config_class in config_classes:
        AutoImageProcessor.register(
            config_class,
            image_processor_classes={"torchvision": LensImageProcessor, "pil": LensImageProcessor},
            exist_ok=True,
        )


LensImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = ["LensImageProcessor", "register_lens_image_processor"]
