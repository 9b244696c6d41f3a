"""Multi-band lens-finding images: lenses (red deflector + blue lensed arcs) and hard non-lenses.

Image ``i`` depends only on ``(cfg, seed, lens_fraction, i)``. Kinds (``meta["galaxy_kind"]``):
0 red galaxy alone, 1 red galaxy with 1-2 unlensed blue companions, 2 spiral galaxy (blue disk with
logarithmic arms and a red bulge), 3 ring galaxy (red bulge in a blue ring of light), 4 lens (red
galaxy whose SIE + shear lenses a blue Sersic source). Kinds 0-3 are the non-lenses, drawn with
``cfg.nonlens_weights``; the blue structures of kinds 1-3 mimic arcs.

Meta features (as in the lens-finding challenges; NaN for non-lenses unless stated):
- ``einstein_radius`` (arcsec) and ``einstein_area`` (arcsec^2: pixels inside the tangential critical
  curve, where ``1 - kappa - gamma < 0`` from finite differences of the deflection);
- ``source_flux_r`` (intrinsic source flux in the reference band, e-/s) and ``source_mag_r``;
- ``magnification``: lensed flux inside the traced grid / intrinsic flux;
- ``n_images``: number of images of the source's half-light region: 8-connected regions (label
  propagation in torch) of the image pixels that ray-trace inside the source's half-light ellipse
  (0 for non-lenses). Counting regions on the pixel grid rather than solving the lens equation for
  the source centre follows what is resolved: a source on a caustic gives one merged arc.
- ``source_pixels_above_noise``: pixels where the noiseless, PSF-convolved lensed source exceeds
  1 sigma of the sky + read noise in the reference band (0 for non-lenses).
"""

from __future__ import annotations

import math

import torch

from . import instrument, light, profiles
from .draws import add_configured_noise, as_index_list, layout_width, psf_kernels, split_draws, uniform_in
from .presets import SimulationConfig
from .rng import draw_normal, draw_uniform, draw_uniform32, image_generators

Tensor = torch.Tensor

# The uniforms of every image, in this order. The columns of ``kind_specific`` mean different things
# for each non-lens kind (:data:`COMPANION_DRAWS`, :data:`SPIRAL_DRAWS`, :data:`RING_DRAWS`).
LENS_FINDING_DRAWS = {
    "is_lens": 1,
    "kind": 1,
    "red_magnitude": 1,
    "red_r_eff": 1,
    "red_n": 1,
    "red_q": 1,
    "red_phi": 1,
    "red_x": 1,
    "red_y": 1,
    "unused_a": 2,
    "theta_e": 1,
    "mass_q_offset": 1,
    "mass_phi_offset": 1,
    "shear": 1,
    "shear_angle": 1,
    "source_x": 1,
    "source_y": 1,
    "source_r_eff": 1,
    "source_n": 1,
    "source_q": 1,
    "source_phi": 1,
    "blue_magnitude": 1,
    "unused_b": 3,
    "kind_specific": 16,
    "unused_c": 6,
}
COMPANION_DRAWS = {
    "two_companions": 1,
    "radius": 2,
    "angle": 2,
    "r_eff": 2,
    "n": 2,
    "q": 2,
    "phi": 2,
    "magnitude_offset": 2,
}
SPIRAL_DRAWS = {"disk_q": 1, "three_arms": 1, "arm_pitch": 1, "arm_phase": 1, "magnitude": 1}
RING_DRAWS = {"radius": 1, "width": 1, "q": 1, "phi": 1, "n_knots": 1, "knot_phase": 1, "magnitude": 1}
STREAM_NAME = "lens_finding"
KIND_NAMES = ("red_galaxy", "red_galaxy_with_companions", "spiral", "ring_galaxy", "lens")


def _band_fluxes(cfg: SimulationConfig, magnitude: Tensor, color_uniforms: Tensor, colors) -> Tensor:
    """``(N, C)`` fluxes in e-/s: reference-band magnitude plus a color per band drawn in ``colors``."""
    per_band = []
    for band in range(cfg.num_channels):
        color = uniform_in(color_uniforms[:, band], colors[band])
        per_band.append(light.magnitude_to_flux(magnitude + color, cfg.zero_point[band]))
    return torch.stack(per_band, dim=1)


def count_connected_regions(mask: Tensor, max_iterations: int = 100_000) -> Tensor:
    """Number of 8-connected regions of each boolean image ``(N, H, W)`` (label propagation).

    Every pixel starts with its own label; each step replaces a masked pixel's label by the largest
    label in its 3x3 neighbourhood (a separable max), until nothing changes; images that have
    converged leave the loop. A region's root is the pixel that keeps its own label.
    """
    batch, height, width = mask.shape
    index = torch.arange(1, height * width + 1, dtype=torch.float32, device=mask.device).reshape(
        1, height, width
    )
    keep = mask.to(torch.float32)
    labels = index * keep
    active = torch.arange(batch, device=mask.device)
    for _ in range(max_iterations):
        if active.numel() == 0:
            break
        current = labels[active]
        grown = current.clone()
        grown[:, 1:] = torch.maximum(grown[:, 1:], current[:, :-1])
        grown[:, :-1] = torch.maximum(grown[:, :-1], current[:, 1:])
        row_max = grown.clone()
        grown[:, :, 1:] = torch.maximum(grown[:, :, 1:], row_max[:, :, :-1])
        grown[:, :, :-1] = torch.maximum(grown[:, :, :-1], row_max[:, :, 1:])
        grown = grown * keep[active]
        changed = (grown != current).flatten(1).any(dim=1)
        labels[active] = grown
        active = active[changed]
    return ((labels == index) & mask).sum(dim=(1, 2))


def einstein_area(alpha_x: Tensor, alpha_y: Tensor, pixel_scale: float) -> Tensor:
    """Area inside the tangential critical curve (``1 - kappa - gamma < 0``). *Unit: arcsec^2*

    Args:
        alpha_x, alpha_y: deflection on a grid, ``(N, H, W)`` (row 0 = largest y). *Unit: arcsec*
    """
    # torch.gradient along rows gives d/d(row) = -d/dy
    dax_dy, dax_dx = torch.gradient(alpha_x, spacing=pixel_scale, dim=(-2, -1))
    day_dy, day_dx = torch.gradient(alpha_y, spacing=pixel_scale, dim=(-2, -1))
    dax_dy, day_dy = -dax_dy, -day_dy
    kappa = 0.5 * (dax_dx + day_dy)
    gamma = torch.sqrt((0.5 * (dax_dx - day_dy)) ** 2 + (0.5 * (dax_dy + day_dx)) ** 2)
    return (1.0 - kappa - gamma < 0).sum(dim=(-2, -1)).to(torch.float32) * pixel_scale**2


def simulate_lens_finding_batch(
    cfg: SimulationConfig,
    indices,
    seed: int = 0,
    lens_fraction: float | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, Tensor | dict[str, Tensor]]:
    """Simulate lens-finding cut-outs.

    Args:
        cfg: a lens-finding set-up (``get_preset("lens_finding")``), one channel per band.
        indices: image indices; image ``i`` depends only on ``(cfg, seed, lens_fraction, i)``.
        seed: data-set seed.
        lens_fraction: probability that an image is a lens (default ``cfg.lens_fraction``).
        device: where the arithmetic runs.

    Returns:
        ``{"images": (N, C, H, W) e-/s per pixel, "labels": LongTensor (N,) 1 = lens,
        "meta": dict[str, FloatTensor (N,)]}`` on ``device`` (see the module docstring for ``meta``).
    """
    lens_fraction = cfg.lens_fraction if lens_fraction is None else float(lens_fraction)
    if not 0.0 <= lens_fraction <= 1.0:
        raise ValueError(f"lens_fraction must lie in [0, 1], got {lens_fraction}")
    index_list = as_index_list(indices)
    if not index_list:
        raise ValueError("indices is empty: nothing to simulate")
    device = torch.device(device)
    generators = image_generators(seed, STREAM_NAME, index_list)
    u = split_draws(draw_uniform(generators, layout_width(LENS_FINDING_DRAWS)), LENS_FINDING_DRAWS)
    colors = draw_uniform(generators, 4 * cfg.num_channels).reshape(
        -1, 4, cfg.num_channels
    )  # red, blue, disk, ring
    n_pixels = cfg.num_channels * cfg.image_size**2
    if cfg.add_noise:
        noise_uniform = draw_uniform32(generators, n_pixels)
        noise_normal = draw_normal(generators, n_pixels)
    batch = len(index_list)

    is_lens = u["is_lens"] < lens_fraction
    weights = torch.tensor(cfg.nonlens_weights, dtype=torch.float64)
    thresholds = torch.cumsum(weights, 0) / weights.sum()
    kind = torch.where(
        is_lens,
        4,
        torch.searchsorted(thresholds, u["kind"][:, None].contiguous(), right=True)[:, 0].clamp(max=3),
    )

    def dev(t: Tensor) -> Tensor:
        return t.to(device=device, dtype=torch.float32)

    # red galaxy: the deflector of lenses, the main galaxy of kinds 0, 1, 3 and the bulge of spirals
    red = {
        "magnitude": uniform_in(u["red_magnitude"], cfg.lens_light_magnitude_range),
        "r_eff": uniform_in(u["red_r_eff"], cfg.lens_light_r_eff_range),
        "n": uniform_in(u["red_n"], cfg.lens_light_n_range),
        "q": uniform_in(u["red_q"], cfg.lens_light_q_range),
        "phi": math.pi * u["red_phi"],
        "x": uniform_in(u["red_x"], (-0.1, 0.1)),
        "y": uniform_in(u["red_y"], (-0.1, 0.1)),
    }
    red_flux = _band_fluxes(cfg, red["magnitude"], colors[:, 0], cfg.lens_light_colors)  # (N, C)
    red_flux[kind == 2] *= 0.3  # a spiral's bulge is fainter than an elliptical
    kernels, pad = psf_kernels(cfg)
    x, y = instrument.pixel_grid(cfg.image_size, cfg.pixel_scale, pad, device=device)
    pixel_area = cfg.pixel_scale**2

    def sersic_unit(params: dict[str, Tensor], xx: Tensor, yy: Tensor) -> Tensor:
        p = {k: dev(v)[:, None, None] for k, v in params.items()}
        amplitude = light.sersic_amplitude_for_flux(1.0, p["r_eff"], p["n"])
        return (
            light.sersic(xx, yy, amplitude, p["r_eff"], p["n"], p["q"], p["phi"], p["x"], p["y"]) * pixel_area
        )

    images = sersic_unit(red, x, y)[:, None] * dev(red_flux)[:, :, None, None]  # (N, C, Hp, Wp)

    nan = torch.full((batch,), math.nan, dtype=torch.float32, device=device)
    meta = {
        "einstein_radius": nan.clone(),
        "einstein_area": nan.clone(),
        "source_flux_r": nan.clone(),
        "source_mag_r": nan.clone(),
        "magnification": nan.clone(),
        "n_images": torch.zeros(batch, device=device),
        "source_pixels_above_noise": torch.zeros(batch, device=device),
        "galaxy_kind": dev(kind),
    }

    blue_magnitude = uniform_in(u["blue_magnitude"], cfg.source_magnitude_range)
    blue_flux = _band_fluxes(cfg, blue_magnitude, colors[:, 1], cfg.source_colors)  # (N, C)

    lenses = is_lens.nonzero().squeeze(1)
    if lenses.numel() > 0:
        ul = {name: draws[lenses] for name, draws in u.items()}
        theta_e = uniform_in(ul["theta_e"], cfg.theta_e_range)
        q_mass = torch.clamp(red["q"][lenses] + uniform_in(ul["mass_q_offset"], (-0.1, 0.1)), 0.5, 1.0)
        phi_mass = red["phi"][lenses] + uniform_in(ul["mass_phi_offset"], (-0.2, 0.2))
        shear = uniform_in(ul["shear"], cfg.shear_range)
        shear_angle = math.pi * ul["shear_angle"]
        source = {
            "x": uniform_in(ul["source_x"], cfg.source_center_range) * theta_e / cfg.theta_e_range[1]
            + red["x"][lenses],
            "y": uniform_in(ul["source_y"], cfg.source_center_range) * theta_e / cfg.theta_e_range[1]
            + red["y"][lenses],
            "r_eff": uniform_in(ul["source_r_eff"], cfg.source_r_eff_range),
            "n": uniform_in(ul["source_n"], cfg.source_n_range),
            "q": uniform_in(ul["source_q"], cfg.source_q_range),
            "phi": math.pi * ul["source_phi"],
        }

        def b(t: Tensor) -> Tensor:
            return dev(t)[:, None, None]

        alpha_x, alpha_y = profiles.sie_deflection(
            x, y, b(theta_e), b(q_mass), b(phi_mass), b(red["x"][lenses]), b(red["y"][lenses])
        )
        shear_x, shear_y = profiles.shear_deflection(
            x - b(red["x"][lenses]),
            y - b(red["y"][lenses]),
            b(shear * torch.cos(2 * shear_angle)),
            b(shear * torch.sin(2 * shear_angle)),
        )
        alpha_x, alpha_y = alpha_x + shear_x, alpha_y + shear_y
        lensed = sersic_unit(source, x - alpha_x, y - alpha_y)  # (L, Hp, Wp), unit intrinsic flux
        lensed_flux = blue_flux[lenses]
        arcs = lensed[:, None] * dev(lensed_flux)[:, :, None, None]
        images[lenses] += arcs

        reference = cfg.reference_band
        arcs_observed = instrument.convolve_psf(arcs, kernels)[:, reference]  # (L, H, W)
        sky = instrument.sky_counts_per_pixel(
            cfg.sky_brightness[reference], cfg.zero_point[reference], cfg.pixel_scale
        )
        exposure = torch.full((), cfg.exposure_time[reference], device=device)
        sigma = instrument.noise_rms(
            torch.zeros((), device=device),
            exposure,
            sky,
            cfg.read_noise,
            float(cfg.num_exposures),
            cfg.background_rms,
        )
        mask = arcs_observed > sigma
        # images of the source's half-light region, on the (unpadded) image grid
        crop = (slice(None), slice(pad, pad + cfg.image_size), slice(pad, pad + cfg.image_size))
        source_radius = light.elliptical_radius(
            (x - alpha_x)[crop],
            (y - alpha_y)[crop],
            b(source["q"]),
            b(source["phi"]),
            b(source["x"]),
            b(source["y"]),
        )
        half_light = source_radius < b(source["r_eff"])
        meta["einstein_radius"][lenses] = dev(theta_e)
        meta["einstein_area"][lenses] = einstein_area(alpha_x, alpha_y, cfg.pixel_scale)
        meta["source_flux_r"][lenses] = dev(lensed_flux[:, reference])
        meta["source_mag_r"][lenses] = dev(blue_magnitude[lenses])
        meta["magnification"][lenses] = lensed.sum(dim=(-2, -1))
        meta["n_images"][lenses] = count_connected_regions(half_light).to(torch.float32)
        meta["source_pixels_above_noise"][lenses] = mask.sum(dim=(-2, -1)).to(torch.float32)

    companions = (kind == 1).nonzero().squeeze(1)
    if companions.numel() > 0:
        uc = split_draws(u["kind_specific"][companions], COMPANION_DRAWS)
        for slot in range(2):
            present = (uc["two_companions"] < 0.5) | (slot == 0)  # one or two companions
            radius = uniform_in(uc["radius"][:, slot], (1.0, 3.5))
            angle = 2.0 * math.pi * uc["angle"][:, slot]
            companion = {
                "x": red["x"][companions] + radius * torch.cos(angle),
                "y": red["y"][companions] + radius * torch.sin(angle),
                "r_eff": uniform_in(uc["r_eff"][:, slot], cfg.source_r_eff_range),
                "n": uniform_in(uc["n"][:, slot], cfg.source_n_range),
                "q": uniform_in(uc["q"][:, slot], cfg.source_q_range),
                "phi": math.pi * uc["phi"][:, slot],
            }
            flux = (
                blue_flux[companions]
                * present[:, None]
                * 10.0 ** (-0.4 * uniform_in(uc["magnitude_offset"][:, slot], (-1.0, 1.0)))[:, None]
            )
            images[companions] += sersic_unit(companion, x, y)[:, None] * dev(flux)[:, :, None, None]

    spirals = (kind == 2).nonzero().squeeze(1)
    if spirals.numel() > 0:
        us = split_draws(u["kind_specific"][spirals], SPIRAL_DRAWS)
        disk = {
            "x": red["x"][spirals],
            "y": red["y"][spirals],
            "r_eff": 1.5 * red["r_eff"][spirals],
            "n": torch.ones(len(spirals), dtype=torch.float64),
            "q": uniform_in(us["disk_q"], (0.4, 1.0)),
            "phi": red["phi"][spirals],
        }
        arms = light.spiral_arms(
            x,
            y,
            dev(2.0 + (us["three_arms"] < 0.5).double())[:, None, None],
            dev(uniform_in(us["arm_pitch"], (0.2, 0.5)))[:, None, None],
            dev(2.0 * math.pi * us["arm_phase"])[:, None, None],
            dev(disk["q"])[:, None, None],
            dev(disk["phi"])[:, None, None],
            dev(disk["x"])[:, None, None],
            dev(disk["y"])[:, None, None],
        )
        profile = sersic_unit(disk, x, y) * (0.3 + 1.7 * arms)
        disk_magnitude = uniform_in(
            us["magnitude"], (cfg.lens_light_magnitude_range[0], cfg.lens_light_magnitude_range[1] + 1.0)
        )
        flux = _band_fluxes(cfg, disk_magnitude, colors[spirals, 2], cfg.source_colors)
        images[spirals] += profile[:, None] * dev(flux)[:, :, None, None]

    rings = (kind == 3).nonzero().squeeze(1)
    if rings.numel() > 0:
        ur = split_draws(u["kind_specific"][rings], RING_DRAWS)
        ring_radius = uniform_in(ur["radius"], cfg.theta_e_range)
        width = uniform_in(ur["width"], (0.1, 0.35))

        def b(t: Tensor) -> Tensor:
            return dev(t)[:, None, None]

        ring = light.gaussian_ring(
            x,
            y,
            1.0,
            b(ring_radius),
            b(width),
            b(uniform_in(ur["q"], (0.6, 1.0))),
            b(math.pi * ur["phi"]),
            b(red["x"][rings]),
            b(red["y"][rings]),
        )
        ring = ring * pixel_area / b(light.gaussian_ring_total_flux(1.0, ring_radius, width))  # unit flux
        # clumpy ring: modulate by a few azimuthal knots like star-forming regions
        knots = light.spiral_arms(
            x,
            y,
            b(torch.floor(uniform_in(ur["n_knots"], (2.0, 6.0)))),
            b(torch.full_like(width, 1.5)),
            b(2 * math.pi * ur["knot_phase"]),
            center_x=b(red["x"][rings]),
            center_y=b(red["y"][rings]),
            sharpness=2.0,
        )
        ring = ring * (0.4 + 1.2 * knots)
        ring_magnitude = uniform_in(ur["magnitude"], cfg.source_magnitude_range) - 0.5
        flux = _band_fluxes(cfg, ring_magnitude, colors[rings, 3], cfg.source_colors)
        images[rings] += ring[:, None] * dev(flux)[:, :, None, None]

    images = instrument.convolve_psf(images, kernels)
    if cfg.add_noise:
        exposure = torch.full((batch,), cfg.exposure_time[cfg.reference_band], device=device)
        images = add_configured_noise(cfg, images, exposure, noise_uniform, noise_normal)
    return {"images": images, "labels": is_lens.to(device=device, dtype=torch.long), "meta": meta}
