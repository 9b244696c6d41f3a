"""What the batch simulators share: named random draws, index checks, the configured PSF and noise.

Each image draws its uniforms as one ``(N, width)`` table from its own generator (:mod:`.rng`). A
*layout* names the table's columns in order (``{"theta_e": 1, "q": 1, ...}``), so code reads
``draws["theta_e"]`` instead of ``base[:, 0]``, and adding a name at the end of a layout never
changes the draws of the names before it (nor, hence, existing images).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from . import instrument
from .presets import SimulationConfig

Tensor = torch.Tensor


def layout_width(layout: Mapping[str, int]) -> int:
    """Number of uniforms a layout takes."""
    return sum(layout.values())


def split_draws(table: Tensor, layout: Mapping[str, int]) -> dict[str, Tensor]:
    """Name the columns of a ``(N, width)`` table of uniforms after ``layout`` (name -> column count).

    Names with one column give ``(N,)`` tensors, wider ones ``(N, count)``. The table may be wider
    than the layout (the remaining columns are ignored), never narrower.
    """
    width = layout_width(layout)
    if table.shape[1] < width:
        raise ValueError(f"a table of {table.shape[1]} draws is too narrow for a layout of {width}")
    named, start = {}, 0
    for name, count in layout.items():
        block = table[:, start : start + count]
        named[name] = block[:, 0] if count == 1 else block
        start += count
    return named


def as_index_list(indices: Iterable[int] | Tensor) -> list[int]:
    """Image indices as a list of non-negative ints."""
    if isinstance(indices, Tensor):
        indices = indices.tolist()
    indices = [int(i) for i in indices]
    if any(i < 0 for i in indices):
        raise ValueError("image indices must be non-negative")
    return indices


def uniform_in(u: Tensor, value_range: Sequence[float]) -> Tensor:
    """Map uniforms in [0, 1) onto ``(low, high)``."""
    low, high = value_range
    return low + (high - low) * u


def psf_kernels(cfg: SimulationConfig) -> tuple[list[Tensor], int]:
    """One 1-D PSF kernel per band and the grid padding the longest needs (pixels)."""
    kernels = [
        instrument.gaussian_psf_kernel_1d(f, cfg.pixel_scale, cfg.psf_truncation) for f in cfg.psf_fwhm
    ]
    return kernels, max(len(k) for k in kernels) // 2


def add_configured_noise(
    cfg: SimulationConfig, images: Tensor, exposure_time: Tensor, uniform: Tensor, normal: Tensor
) -> Tensor:
    """Per-band noise as ``cfg.noise_model`` says; ``exposure_time`` (N,) is the reference band's.

    ``"simapi"``: :func:`~.instrument.add_noise` (lenstronomy ``SimAPI``: images stay in e-/s).
    ``"deeplense_model_i"``: :func:`~.instrument.add_deeplense_model_i_noise` (images become counts).
    """
    device = images.device
    shape = images.shape
    uniform = uniform.to(device).reshape(shape)
    normal = normal.to(device).reshape(shape)
    reference_time = cfg.exposure_time[cfg.reference_band]
    band_factor = torch.tensor([t / reference_time for t in cfg.exposure_time], device=device)
    time = exposure_time[:, None, None, None] * band_factor[None, :, None, None]  # (N, C, 1, 1)
    if cfg.noise_model == "deeplense_model_i":
        return instrument.add_deeplense_model_i_noise(images, uniform, normal, time, cfg.background_rms)
    sky = torch.tensor(
        [
            instrument.sky_counts_per_pixel(s, z, cfg.pixel_scale)
            for s, z in zip(cfg.sky_brightness, cfg.zero_point)
        ],
        device=device,
    )[None, :, None, None]
    return instrument.add_noise(
        images, uniform, normal, time, sky, cfg.read_noise, float(cfg.num_exposures), cfg.background_rms
    )
