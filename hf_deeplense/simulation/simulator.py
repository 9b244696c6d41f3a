"""Batched DeepLense image simulation of the substructure classes: ``simulate_batch``.

Image ``i`` of class ``c`` depends only on ``(cfg, seed, c, i)``: its random numbers come from its own
generator (:mod:`.rng`), drawn in a fixed order (the 16 :data:`LENS_SOURCE_DRAWS`, the class's
:func:`substructure_draws`, then per-pixel noise), and all arithmetic is element-wise per image.

Substructure-mass compensation (``cfg.compensate_substructure_mass``): ``params["theta_e"]`` is the
Einstein radius of the whole lens, drawn from the same range for every class. The host SIE gets
``theta_e_host = theta_e - M_sub(<theta_e) / (theta_e A(q))``, where ``M_sub(<theta_e)`` is the
substructure mass inside the circle of radius ``theta_e`` (``pi theta_m^2`` per point mass,
``pi theta_line^2 min(1, theta_e / (L / 2))`` for a line through the centre) and
``theta_e_host * theta_e * A(q)`` is the SIE mass inside that circle (``A = pi`` for q = 1). The mass inside
the Einstein circle, hence the ring size, is then the same with and without substructure.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import torch

from . import instrument, light, profiles
from .draws import add_configured_noise, as_index_list, layout_width, psf_kernels, split_draws, uniform_in
from .presets import SUBSTRUCTURE_CLASSES, SimulationConfig
from .rng import draw_normal, draw_uniform, draw_uniform32, image_generators

Tensor = torch.Tensor

# The 16 lens and source uniforms every image draws first, in this order.
LENS_SOURCE_DRAWS = {
    "theta_e": 1,
    "q": 1,
    "phi": 1,
    "shear": 1,
    "shear_angle": 1,
    "source_x": 1,
    "source_y": 1,
    "source_r_eff": 1,
    "source_n": 1,
    "source_q": 1,
    "source_phi": 1,
    "source_magnitude": 1,
    "exposure_time": 1,
    "deflection_scale": 1,
    "unused": 2,
}


def substructure_draws(cfg: SimulationConfig, class_name: str) -> dict[str, int]:
    """The uniforms one image of ``class_name`` draws after :data:`LENS_SOURCE_DRAWS`, in order."""
    if class_name == "cdm":
        return {"mass": cfg.n_subhalos, "radius": cfg.n_subhalos, "angle": cfg.n_subhalos}
    if class_name == "sphere":
        return {"radius": cfg.ab_n_subhalos, "angle": cfg.ab_n_subhalos}
    if class_name == "axion":
        return {"log10_m_a": 1, "angle": 1}
    if class_name == "vortex":
        return {"angle": 1}
    return {}


def sie_mass_factor(q: Tensor, n_angles: int = 64) -> Tensor:
    """``A(q)``: mass of the SIE of :func:`~.profiles.sie_deflection` inside a circle of radius R is
    ``theta_e R A(q)`` (midpoint rule over angle, exact to float precision for q >= 0.3; ``A(1) = pi``).
    """
    angle = (torch.arange(n_angles, dtype=q.dtype, device=q.device) + 0.5) * (2.0 * math.pi / n_angles)
    q = q[..., None]
    denominator = torch.sqrt(q * torch.cos(angle) ** 2 + torch.sin(angle) ** 2 / q)
    return 0.5 * (1.0 / denominator).mean(dim=-1) * 2.0 * math.pi


def _lens_and_source_params(cfg: SimulationConfig, draws: dict[str, Tensor]) -> dict[str, Tensor]:
    """Main-lens and source parameters (float64, CPU) from the named lens/source uniforms."""
    theta_e = uniform_in(draws["theta_e"], cfg.theta_e_range)
    q = uniform_in(draws["q"], cfg.q_range) if cfg.host_profile == "sie" else torch.ones_like(theta_e)
    shear = uniform_in(draws["shear"], cfg.shear_range)
    shear_angle = uniform_in(draws["shear_angle"], cfg.shear_angle_range)
    exposure_factor = 10.0 ** (cfg.exposure_time_log10_spread * draws["exposure_time"])
    return {
        "theta_e": theta_e,
        "q": q,
        "phi": uniform_in(draws["phi"], cfg.phi_range),
        "gamma1": shear * torch.cos(2.0 * shear_angle),
        "gamma2": shear * torch.sin(2.0 * shear_angle),
        "source_x": uniform_in(draws["source_x"], cfg.source_center_range),
        "source_y": uniform_in(draws["source_y"], cfg.source_center_range),
        "source_r_eff": uniform_in(draws["source_r_eff"], cfg.source_r_eff_range),
        "source_n": uniform_in(draws["source_n"], cfg.source_n_range),
        "source_q": uniform_in(draws["source_q"], cfg.source_q_range),
        "source_phi": uniform_in(draws["source_phi"], cfg.source_phi_range),
        "source_magnitude": uniform_in(draws["source_magnitude"], cfg.source_magnitude_range),
        "exposure_time": cfg.exposure_time[cfg.reference_band] * exposure_factor,
        "deflection_scale": uniform_in(draws["deflection_scale"], cfg.deflection_scale_range),
    }


@dataclasses.dataclass
class Substructure:
    """The substructure of a batch of images of one class (float64 on the CPU until moved).

    Attributes:
        point_theta, point_x, point_y: Einstein radii and positions of the point masses, ``(N, K)``
            (``K = 0`` without point masses). *Unit: arcsec*
        line_theta, line_length, line_phi: a uniform line mass through the centre, ``(N,)`` each
            (its mass in ``theta^2``, its length and angle), or None without one. *Unit: arcsec, rad*
        log10_m_a: ``log10(m_a / eV)`` of the axion vortex, ``(N,)``; NaN for other classes.
        subhalo_mass_fraction: substructure mass / host mass, ``(N,)``.
        enclosed: substructure mass inside the Einstein circle in ``theta^2`` (times pi = mass), ``(N,)``.
    """

    point_theta: Tensor
    point_x: Tensor
    point_y: Tensor
    log10_m_a: Tensor
    subhalo_mass_fraction: Tensor
    enclosed: Tensor
    line_theta: Tensor | None = None
    line_length: Tensor | None = None
    line_phi: Tensor | None = None

    def to(self, **kwargs) -> Substructure:
        return Substructure(
            **{
                field.name: None
                if getattr(self, field.name) is None
                else getattr(self, field.name).to(**kwargs)
                for field in dataclasses.fields(self)
            }
        )


def _substructure(
    cfg: SimulationConfig, class_name: str, draws: dict[str, Tensor], theta_e: Tensor
) -> Substructure:
    """Substructure of one class: point masses (cdm, sphere, a DeepLenseSim vortex) or a line mass."""
    batch = theta_e.shape[0]
    zeros = torch.zeros(batch, dtype=torch.float64)
    no_points = torch.zeros(batch, 0, dtype=torch.float64)
    log10_m_a = torch.full((batch,), math.nan, dtype=torch.float64)
    theta_sq_per_msun = theta_e[:, None] ** 2 / cfg.host_mass  # (N, 1)
    if class_name == "no_sub":
        return Substructure(no_points, no_points, no_points, log10_m_a, zeros, zeros)

    if class_name in ("cdm", "sphere"):
        if class_name == "cdm":
            exponent = cfg.subhalo_mass_slope + 1.0
            low, high = (m**exponent for m in cfg.subhalo_mass_range)
            masses = (low + (high - low) * draws["mass"]) ** (
                1.0 / exponent
            )  # inverse CDF of dN/dm ∝ m^slope
            radius = uniform_in(draws["radius"], cfg.subhalo_radius_range)
        else:
            per_mass = cfg.ab_substructure_fraction * cfg.host_mass / cfg.ab_n_subhalos
            masses = torch.full((batch, cfg.ab_n_subhalos), per_mass, dtype=torch.float64)
            radius = uniform_in(draws["radius"], cfg.ab_sphere_radius_range)
        angle = 2.0 * math.pi * draws["angle"]
        point_theta_sq = masses * theta_sq_per_msun
        return Substructure(
            point_theta=torch.sqrt(point_theta_sq),
            point_x=radius * torch.cos(angle),
            point_y=radius * torch.sin(angle),
            log10_m_a=log10_m_a,
            subhalo_mass_fraction=masses.sum(dim=1) / cfg.host_mass,
            enclosed=(point_theta_sq * (radius < theta_e[:, None])).sum(dim=1),
        )

    # a line through the centre: the DeepLense axion vortex or the Models A/B vortex
    if class_name == "axion":
        log10_m_a = uniform_in(draws["log10_m_a"], cfg.axion_mass_log10_range)
        length = 2.0 * cfg.de_broglie_scale * 10.0 ** (-22.0 - log10_m_a)  # 2 lambda, arcsec
        line_mass = cfg.vortex_mass
        fraction = zeros
    else:
        length = zeros + cfg.ab_vortex_length
        line_mass = cfg.ab_substructure_fraction * cfg.host_mass
        fraction = zeros + cfg.ab_substructure_fraction
    phi = math.pi * draws["angle"]
    line_theta_sq = line_mass * theta_sq_per_msun[:, 0]
    if class_name == "axion" and cfg.vortex_point_masses:
        # DeepLenseSim's vortex: equal point masses at linspace(-lambda, lambda, K) along the line
        k = cfg.vortex_point_masses
        along = torch.linspace(-0.5, 0.5, k, dtype=torch.float64)[None] * length[:, None]  # (N, K)
        point_theta_sq = (line_theta_sq / k)[:, None].expand(-1, k)
        return Substructure(
            point_theta=torch.sqrt(point_theta_sq),
            point_x=along * torch.cos(phi)[:, None],
            point_y=along * torch.sin(phi)[:, None],
            log10_m_a=log10_m_a,
            subhalo_mass_fraction=fraction,
            enclosed=(point_theta_sq * (along.abs() < theta_e[:, None])).sum(dim=1),
        )
    inside = torch.clamp(theta_e / (0.5 * length), max=1.0)  # fraction of the line inside the circle
    return Substructure(
        point_theta=no_points,
        point_x=no_points,
        point_y=no_points,
        log10_m_a=log10_m_a,
        subhalo_mass_fraction=fraction,
        enclosed=line_theta_sq * inside,
        line_theta=torch.sqrt(line_theta_sq),
        line_length=length,
        line_phi=phi,
    )


def _deflection(x: Tensor, y: Tensor, lens: dict[str, Tensor], sub: Substructure, cfg: SimulationConfig):
    """Total deflection ``(alpha_x, alpha_y)`` on the grid ``x, y``; parameters on the grid's device."""

    def b(value: Tensor) -> Tensor:
        return value[:, None, None]  # (N, 1, 1)

    alpha_x, alpha_y = profiles.sie_deflection(x, y, b(lens["theta_e_host"]), b(lens["q"]), b(lens["phi"]))
    shear_x, shear_y = profiles.shear_deflection(x, y, b(lens["gamma1"]), b(lens["gamma2"]))
    alpha_x, alpha_y = alpha_x + shear_x, alpha_y + shear_y
    if sub.point_theta.shape[1] > 0:
        point_x, point_y = profiles.point_masses_deflection(
            x, y, sub.point_theta, sub.point_x, sub.point_y, chunk_elements=cfg.subhalo_chunk_elements
        )
        alpha_x, alpha_y = alpha_x + point_x, alpha_y + point_y
    if sub.line_theta is not None:
        line_x, line_y = profiles.line_mass_deflection(
            x, y, b(sub.line_theta), b(sub.line_length), b(sub.line_phi)
        )
        alpha_x, alpha_y = alpha_x + line_x, alpha_y + line_y
    if cfg.deflection_scale_range != (1.0, 1.0):
        scale = b(lens["deflection_scale"])
        alpha_x, alpha_y = scale * alpha_x, scale * alpha_y
    return alpha_x, alpha_y


def _draw_lens(
    cfg: SimulationConfig, class_name: str, index_list: list[int], seed: int
) -> tuple[list[torch.Generator], dict[str, Tensor], Substructure]:
    """Generators (positioned after the lens draws), lens/source and substructure parameters."""
    if class_name not in cfg.classes or class_name not in SUBSTRUCTURE_CLASSES:
        raise ValueError(
            f"class_name {class_name!r} is not a substructure class of preset {cfg.name!r} (classes: {cfg.classes})"
        )
    if not index_list:
        raise ValueError("indices is empty: nothing to simulate")
    generators = image_generators(seed, class_name, index_list)
    lens_source = split_draws(draw_uniform(generators, layout_width(LENS_SOURCE_DRAWS)), LENS_SOURCE_DRAWS)
    sub_layout = substructure_draws(cfg, class_name)
    sub_draws = split_draws(draw_uniform(generators, layout_width(sub_layout)), sub_layout)
    lens = _lens_and_source_params(cfg, lens_source)
    sub = _substructure(cfg, class_name, sub_draws, lens["theta_e"])
    if cfg.compensate_substructure_mass:
        enclosed_mass = math.pi * sub.enclosed  # convergence x area inside the Einstein circle
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


def draw_lens_parameters(
    cfg: SimulationConfig, class_name: str, indices: Iterable[int] | Tensor, seed: int = 0
) -> tuple[dict[str, Tensor], Substructure]:
    """The lens, source and substructure parameters :func:`simulate_batch` draws for images ``indices``.

    Returns:
        ``(lens, substructure)``: the lens and source parameters of :func:`simulate_batch`'s ``params``
        (float64, CPU, ``(N,)`` each) and the :class:`Substructure` (positions and Einstein radii of
        every point mass, or the line mass). For cross-checks against other codes.
    """
    _, lens, sub = _draw_lens(cfg, class_name, as_index_list(indices), seed)
    return lens, sub


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
    _, lens, sub = _draw_lens(cfg, class_name, as_index_list(indices), seed)
    to_device = {"device": x.device, "dtype": x.dtype}
    lens = {k: v.to(**to_device) for k, v in lens.items()}
    return _deflection(x, y, lens, sub.to(**to_device), cfg)


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
        ``source_q``, ``source_phi``, ``source_magnitude``, ``exposure_time`` (s), ``deflection_scale``
        (the factor on every deflection, see ``cfg.deflection_scale_range``), ``log10_m_a``
        (``log10(m_a / eV)`` for ``axion``, NaN otherwise), ``subhalo_mass_fraction`` (substructure mass
        / host mass; 0 unless ``cdm``/``sphere``/``vortex``).
    """
    index_list = as_index_list(indices)
    device = torch.device(device)
    generators, lens, sub = _draw_lens(cfg, class_name, index_list, seed)

    n_pixels = cfg.num_channels * cfg.image_size**2
    if cfg.add_noise:
        noise_uniform = draw_uniform32(generators, n_pixels)
        noise_normal = draw_normal(generators, n_pixels)

    to_device = {"device": device, "dtype": torch.float32}
    lens_d = {k: v.to(**to_device) for k, v in lens.items()}
    sub_d = sub.to(**to_device)

    kernels, pad = psf_kernels(cfg)
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
        images = add_configured_noise(cfg, images, lens_d["exposure_time"], noise_uniform, noise_normal)

    params = {k: lens_d[k] for k in lens_d}
    params["log10_m_a"] = sub_d.log10_m_a
    params["subhalo_mass_fraction"] = sub_d.subhalo_mass_fraction
    return {"images": images, "params": params}
