"""Batched DeepLense image simulation: ``simulate_batch`` (substructure classes) and lens finding.

Image ``i`` of class ``c`` depends only on ``(cfg, seed, c, i)``: its random numbers come from its own
generator (:mod:`.rng`), drawn in a fixed order (16 lens/source uniforms, the class's substructure
uniforms, then per-pixel noise), and all arithmetic is element-wise per image.

Substructure-mass compensation (``cfg.compensate_substructure_mass``): ``params["theta_e"]`` is the
Einstein radius of the whole lens, drawn from the same range for every class. The host SIE gets
``theta_e_host = theta_e - M_sub(<theta_e) / (theta_e A(q))``, where ``M_sub(<theta_e)`` is the
substructure mass inside the circle of radius ``theta_e`` (``pi theta_m^2`` per point mass,
``pi theta_line^2 min(1, theta_e / (L / 2))`` for a line through the centre) and
``theta_e_host * theta_e * A(q)`` is the SIE mass inside that circle (``A = pi`` for q = 1). The mass inside
the Einstein circle, hence the ring size, is then the same with and without substructure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from . import instrument, light, profiles
from .presets import SUBSTRUCTURE_CLASSES, SimulationConfig
from .rng import draw_normal, draw_uniform, draw_uniform32, image_generators

Tensor = torch.Tensor

N_BASE_UNIFORMS = 16


def _as_index_list(indices: Iterable[int] | Tensor) -> list[int]:
    if isinstance(indices, Tensor):
        indices = indices.tolist()
    indices = [int(i) for i in indices]
    if any(i < 0 for i in indices):
        raise ValueError("image indices must be non-negative")
    return indices


def _uniform(u: Tensor, value_range: Sequence[float]) -> Tensor:
    low, high = value_range
    return low + (high - low) * u


def _psf_kernels(cfg: SimulationConfig) -> tuple[list[Tensor], int]:
    kernels = [
        instrument.gaussian_psf_kernel_1d(f, cfg.pixel_scale, cfg.psf_truncation) for f in cfg.psf_fwhm
    ]
    return kernels, max(len(k) for k in kernels) // 2


def sie_mass_factor(q: Tensor, n_angles: int = 64) -> Tensor:
    """``A(q)``: mass of the SIE of :func:`~.profiles.sie_deflection` inside a circle of radius R is
    ``theta_e R A(q)`` (midpoint rule over angle, exact to float precision for q >= 0.3; ``A(1) = pi``).
    """
    angle = (torch.arange(n_angles, dtype=q.dtype, device=q.device) + 0.5) * (2.0 * math.pi / n_angles)
    q = q[..., None]
    denominator = torch.sqrt(q * torch.cos(angle) ** 2 + torch.sin(angle) ** 2 / q)
    return 0.5 * (1.0 / denominator).mean(dim=-1) * 2.0 * math.pi


def _lens_and_source_params(cfg: SimulationConfig, base: Tensor) -> dict[str, Tensor]:
    """Main-lens and source parameters (float64, CPU) from the 16 base uniforms of each image."""
    theta_e = _uniform(base[:, 0], cfg.theta_e_range)
    q = _uniform(base[:, 1], cfg.q_range) if cfg.host_profile == "sie" else torch.ones_like(theta_e)
    phi = math.pi * base[:, 2]
    shear = _uniform(base[:, 3], cfg.shear_range)
    shear_angle = math.pi * base[:, 4]
    exposure_factor = 10.0 ** (cfg.exposure_time_log10_spread * base[:, 12])
    return {
        "theta_e": theta_e,
        "q": q,
        "phi": phi,
        "gamma1": shear * torch.cos(2.0 * shear_angle),
        "gamma2": shear * torch.sin(2.0 * shear_angle),
        "source_x": _uniform(base[:, 5], cfg.source_center_range),
        "source_y": _uniform(base[:, 6], cfg.source_center_range),
        "source_r_eff": _uniform(base[:, 7], cfg.source_r_eff_range),
        "source_n": _uniform(base[:, 8], cfg.source_n_range),
        "source_q": _uniform(base[:, 9], cfg.source_q_range),
        "source_phi": math.pi * base[:, 10],
        "source_magnitude": _uniform(base[:, 11], cfg.source_magnitude_range),
        "exposure_time": cfg.exposure_time[cfg.reference_band] * exposure_factor,
    }


def _substructure_uniform_count(cfg: SimulationConfig, class_name: str) -> int:
    return {"no_sub": 0, "cdm": 3 * cfg.n_subhalos, "axion": 2, "sphere": 2 * cfg.ab_n_subhalos, "vortex": 1}[
        class_name
    ]


def _substructure(
    cfg: SimulationConfig, class_name: str, extra: Tensor, theta_e: Tensor
) -> dict[str, Tensor]:
    """Substructure of one class (float64, CPU): point masses and/or one line mass through the centre.

    Returns a dict with ``point_theta`` / ``point_x`` / ``point_y`` ``(N, K)``, ``line_theta`` /
    ``line_length`` / ``line_phi`` ``(N,)``, ``log10_m_a`` and ``subhalo_mass_fraction`` ``(N,)`` and the
    substructure mass inside the Einstein circle ``enclosed`` (in ``theta^2``, times pi = mass).
    """
    batch = theta_e.shape[0]
    zeros = torch.zeros(batch, dtype=torch.float64)
    out = {
        "point_theta": torch.zeros(batch, 0, dtype=torch.float64),
        "point_x": torch.zeros(batch, 0, dtype=torch.float64),
        "point_y": torch.zeros(batch, 0, dtype=torch.float64),
        "line_theta": zeros,
        "line_length": zeros + 1.0,
        "line_phi": zeros,
        "log10_m_a": torch.full((batch,), math.nan, dtype=torch.float64),
        "subhalo_mass_fraction": zeros,
        "enclosed": zeros,
    }
    theta_sq_per_msun = theta_e[:, None] ** 2 / cfg.host_mass  # (N, 1)
    if class_name == "cdm":
        k = cfg.n_subhalos
        exponent = cfg.subhalo_mass_slope + 1.0
        low, high = (m**exponent for m in cfg.subhalo_mass_range)
        masses = (low + (high - low) * extra[:, :k]) ** (1.0 / exponent)  # inverse CDF of dN/dm ∝ m^slope
        radius = _uniform(extra[:, k : 2 * k], cfg.subhalo_radius_range)
        angle = 2.0 * math.pi * extra[:, 2 * k : 3 * k]
        out["subhalo_mass_fraction"] = masses.sum(dim=1) / cfg.host_mass
    elif class_name == "sphere":
        k = cfg.ab_n_subhalos
        masses = torch.full((batch, k), cfg.ab_substructure_fraction * cfg.host_mass / k, dtype=torch.float64)
        radius = _uniform(extra[:, :k], cfg.ab_sphere_radius_range)
        angle = 2.0 * math.pi * extra[:, k : 2 * k]
        out["subhalo_mass_fraction"] = zeros + cfg.ab_substructure_fraction
    if class_name in ("cdm", "sphere"):
        point_theta_sq = masses * theta_sq_per_msun
        out["point_theta"] = torch.sqrt(point_theta_sq)
        out["point_x"] = radius * torch.cos(angle)
        out["point_y"] = radius * torch.sin(angle)
        out["enclosed"] = (point_theta_sq * (radius < theta_e[:, None])).sum(dim=1)
    if class_name in ("axion", "vortex"):
        if class_name == "axion":
            log10_m_a = _uniform(extra[:, 0], cfg.axion_mass_log10_range)
            de_broglie = cfg.de_broglie_scale * 10.0 ** (-22.0 - log10_m_a)  # lambda in arcsec
            out["log10_m_a"] = log10_m_a
            out["line_length"] = 2.0 * de_broglie
            line_mass = zeros + cfg.vortex_mass
        else:
            out["line_length"] = zeros + cfg.ab_vortex_length
            line_mass = zeros + cfg.ab_substructure_fraction * cfg.host_mass
            out["subhalo_mass_fraction"] = zeros + cfg.ab_substructure_fraction
        out["line_phi"] = math.pi * extra[:, -1]
        line_theta_sq = line_mass * theta_sq_per_msun[:, 0]
        out["line_theta"] = torch.sqrt(line_theta_sq)
        inside = torch.clamp(theta_e / (0.5 * out["line_length"]), max=1.0)  # fraction of the line inside
        out["enclosed"] = line_theta_sq * inside
    return out


def _deflection(
    x: Tensor, y: Tensor, lens: dict[str, Tensor], sub: dict[str, Tensor], cfg: SimulationConfig
) -> tuple[Tensor, Tensor]:
    """Total deflection on the grid ``x, y`` (1, H, W); parameters already on the device, float32."""

    def b(name: str, source: dict[str, Tensor] = lens) -> Tensor:
        return source[name][:, None, None]  # (N, 1, 1)

    alpha_x, alpha_y = profiles.sie_deflection(x, y, b("theta_e_host"), b("q"), b("phi"))
    shear_x, shear_y = profiles.shear_deflection(x, y, b("gamma1"), b("gamma2"))
    alpha_x, alpha_y = alpha_x + shear_x, alpha_y + shear_y
    if sub["point_theta"].shape[1] > 0:
        point_x, point_y = profiles.point_masses_deflection(
            x,
            y,
            sub["point_theta"],
            sub["point_x"],
            sub["point_y"],
            chunk_elements=cfg.subhalo_chunk_elements,
        )
        alpha_x, alpha_y = alpha_x + point_x, alpha_y + point_y
    if bool((sub["line_theta"] > 0).any()):
        line_x, line_y = profiles.line_mass_deflection(
            x, y, b("line_theta", sub), b("line_length", sub), b("line_phi", sub)
        )
        alpha_x, alpha_y = alpha_x + line_x, alpha_y + line_y
    return alpha_x, alpha_y


def _draw_lens(
    cfg: SimulationConfig, class_name: str, index_list: list[int], seed: int
) -> tuple[list[torch.Generator], dict[str, Tensor], dict[str, Tensor]]:
    """Generators (positioned after the lens draws), lens/source and substructure parameters."""
    if class_name not in cfg.classes or class_name not in SUBSTRUCTURE_CLASSES:
        raise ValueError(
            f"class_name {class_name!r} is not a substructure class of preset {cfg.name!r} (classes: {cfg.classes})"
        )
    if not index_list:
        raise ValueError("indices is empty: nothing to simulate")
    generators = image_generators(seed, class_name, index_list)
    base = draw_uniform(generators, N_BASE_UNIFORMS)
    extra = draw_uniform(generators, _substructure_uniform_count(cfg, class_name))
    lens = _lens_and_source_params(cfg, base)
    sub = _substructure(cfg, class_name, extra, lens["theta_e"])
    if cfg.compensate_substructure_mass:
        enclosed_mass = math.pi * sub["enclosed"]  # convergence x area inside the Einstein circle
        lens["theta_e_host"] = lens["theta_e"] - enclosed_mass / (
            lens["theta_e"] * sie_mass_factor(lens["q"])
        )
        if bool((lens["theta_e_host"] <= 0).any()):
            raise ValueError(
                f"preset {cfg.name!r}: the {class_name} substructure holds more than the whole mass inside the "
                "Einstein circle; lower subhalo_mass_range / vortex_mass / ab_substructure_fraction"
            )
    else:
        lens["theta_e_host"] = lens["theta_e"].clone()
    return generators, lens, sub


def lens_deflection(
    cfg: SimulationConfig,
    class_name: str,
    indices: Iterable[int] | Tensor,
    x: Tensor,
    y: Tensor,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Deflection of the lenses of images ``indices`` (as :func:`simulate_batch` draws them) at ``x, y``.

    Args:
        x, y: positions broadcastable to ``(N, *S)`` with ``N = len(indices)``, e.g. ``(1, H, W)`` or
            ``(N, 1, P)``; dtype and device of the result follow ``x``. *Unit: arcsec*

    Returns:
        ``(alpha_x, alpha_y)`` of shape ``(N, *S)``. *Unit: arcsec*
    """
    _, lens, sub = _draw_lens(cfg, class_name, _as_index_list(indices), seed)
    to_device = {"device": x.device, "dtype": x.dtype}
    lens = {k: v.to(**to_device) for k, v in lens.items()}
    sub = {k: v.to(**to_device) for k, v in sub.items()}
    return _deflection(x, y, lens, sub, cfg)


def simulate_batch(
    cfg: SimulationConfig,
    class_name: str,
    indices: Iterable[int] | Tensor,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, Tensor | dict[str, Tensor]]:
    """Simulate images ``indices`` of one substructure class.

    Args:
        cfg: simulation set-up (see :func:`~.presets.get_preset`).
        class_name: one of ``cfg.classes`` (``no_sub``, ``cdm``, ``axion``, ``sphere``, ``vortex``).
        indices: image indices; image ``i`` depends only on ``(cfg, seed, class_name, i)``.
        seed: data-set seed.
        device: where the ray tracing runs (the random numbers are drawn on the CPU).

    Returns:
        ``{"images": FloatTensor (N, C, H, W) in e-/s per pixel, "params": dict[str, FloatTensor (N,)]}``
        on ``device``. ``params``: ``theta_e`` (Einstein radius of the whole lens, arcsec),
        ``theta_e_host`` (of the host SIE after mass compensation), ``q``, ``phi`` (rad), ``gamma1``,
        ``gamma2``, ``source_x``, ``source_y`` (arcsec), ``source_r_eff`` (arcsec), ``source_n``,
        ``source_q``, ``source_phi``, ``source_magnitude``, ``exposure_time`` (s), ``log10_m_a``
        (``log10(m_a / eV)`` for ``axion``, NaN otherwise), ``subhalo_mass_fraction`` (substructure mass
        / host mass; 0 unless ``cdm``/``sphere``/``vortex``).
    """
    index_list = _as_index_list(indices)
    device = torch.device(device)
    generators, lens, sub = _draw_lens(cfg, class_name, index_list, seed)

    n_pixels = cfg.num_channels * cfg.image_size**2
    if cfg.add_noise:
        noise_uniform = draw_uniform32(generators, n_pixels)
        noise_normal = draw_normal(generators, n_pixels)

    to_device = {"device": device, "dtype": torch.float32}
    lens_d = {k: v.to(**to_device) for k, v in lens.items()}
    sub_d = {k: v.to(**to_device) for k, v in sub.items()}

    kernels, pad = _psf_kernels(cfg)
    x, y = instrument.pixel_grid(cfg.image_size, cfg.pixel_scale, pad, device=device)
    alpha_x, alpha_y = _deflection(x, y, lens_d, sub_d, cfg)

    images = []
    for band in range(cfg.num_channels):
        # magnitude in this band (single-band presets: the reference band itself)
        flux = light.magnitude_to_flux(lens_d["source_magnitude"], cfg.zero_point[band])
        amplitude = light.sersic_amplitude_for_flux(flux, lens_d["source_r_eff"], lens_d["source_n"])

        def b(name: str) -> Tensor:
            return lens_d[name][:, None, None]

        surface = light.sersic(
            x - alpha_x,
            y - alpha_y,
            amplitude[:, None, None],
            b("source_r_eff"),
            b("source_n"),
            b("source_q"),
            b("source_phi"),
            b("source_x"),
            b("source_y"),
        )
        images.append(surface * cfg.pixel_scale**2)  # e-/s per pixel
    images = instrument.convolve_psf(torch.stack(images, dim=1), kernels)  # (N, C, H, W)

    if cfg.add_noise:
        images = _add_noise(cfg, images, lens_d["exposure_time"], noise_uniform, noise_normal)

    params = {k: lens_d[k] for k in lens_d}
    params["log10_m_a"] = sub_d["log10_m_a"]
    params["subhalo_mass_fraction"] = sub_d["subhalo_mass_fraction"]
    return {"images": images, "params": params}


def _add_noise(
    cfg: SimulationConfig, images: Tensor, exposure_time: Tensor, uniform: Tensor, normal: Tensor
) -> Tensor:
    """Per-band noise; ``exposure_time`` (N,) is the reference band's, other bands scale with it."""
    device = images.device
    shape = images.shape
    uniform = uniform.to(device).reshape(shape)
    normal = normal.to(device).reshape(shape)
    reference_time = cfg.exposure_time[cfg.reference_band]
    band_factor = torch.tensor([t / reference_time for t in cfg.exposure_time], device=device)
    time = exposure_time[:, None, None, None] * band_factor[None, :, None, None]  # (N, C, 1, 1)
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


from .lens_finding import simulate_lens_finding_batch  # noqa: E402, F401  (re-exported: one simulator entry point)
