"""Deflection angles of lens mass profiles, as pure batched functions.

Every function takes image-plane positions ``x, y`` and profile parameters that broadcast together
(for a batch: parameters of shape ``(batch, 1, 1)`` and positions of shape ``(1, H, W)`` or
``(batch, H, W)``) and returns the deflection ``(alpha_x, alpha_y)`` with the broadcast shape.
Angles are in arcsec; masses are expressed by their Einstein radius (``theta_m**2`` is proportional to
the mass, the mass of a point lens whose Einstein radius is ``theta_m``).

Only operations whose float32 result does not depend on the element's position in a tensor are used
(``atanh`` and ``atan2`` are rewritten with ``log1p`` and ``atan``), so an image is bit-identical
whatever batch it is computed in.

References:
- [0] Kormann, Schneider & Bartelmann 1994, A&A 284, 285 (SIE); Keeton 2001, arXiv:astro-ph/0102341.
- [1] Wright & Brainerd 2000, ApJ 534, 34; Bartelmann 1996, A&A 313, 697 (NFW).
- [2] DeepLenseSim (Toomey et al.), vortex line of point masses; here its exact continuum limit.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor

_TINY = 1e-12


def _atanh(value: Tensor) -> Tensor:
    """atanh written with log1p (torch's CPU atanh differs in the last bit between tensor positions)."""
    return 0.5 * torch.log1p(2.0 * value / (1.0 - value))


def _atan2(y: Tensor, x: Tensor) -> Tensor:
    """atan2 via the half-angle formula and atan (position independent, unlike torch.atan2 on CPU)."""
    radius = torch.sqrt(x * x + y * y)
    positive = 2.0 * torch.atan(y / (radius + x))
    negative = 2.0 * torch.atan((radius - x) / y)
    return torch.where(x >= 0, torch.where(radius > 0, positive, torch.zeros_like(radius)), negative)


def rotate(x: Tensor, y: Tensor, phi: Tensor | float) -> tuple[Tensor, Tensor]:
    """Coordinates in the frame rotated by ``phi`` (its x' axis points at angle ``phi``).

    Args:
        x, y: positions. *Unit: arcsec*
        phi: angle of the new x' axis from the x axis, counter-clockwise. *Unit: rad*
    """
    cos_phi, sin_phi = _cos_sin(phi)
    return cos_phi * x + sin_phi * y, -sin_phi * x + cos_phi * y


def _cos_sin(phi: Tensor | float) -> tuple[Tensor | float, Tensor | float]:
    if isinstance(phi, Tensor):
        return torch.cos(phi), torch.sin(phi)
    return math.cos(phi), math.sin(phi)


def sie_deflection(
    x: Tensor,
    y: Tensor,
    theta_e: Tensor | float,
    q: Tensor | float,
    phi: Tensor | float,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Singular isothermal ellipsoid (Kormann et al. 1994; lenstronomy's ``SIE`` convention).

    Convergence ``kappa = theta_e / (2 sqrt(q x'^2 + y'^2 / q))`` (``theta_e`` is the Einstein radius
    of the circle with the same area as the critical curve of the SIS limit). In the frame x', y'
    rotated by ``phi``, with ``f = sqrt(1 - q^2)`` and ``psi = sqrt(q^2 x'^2 + y'^2)``:
    ``alpha_x' = theta_e sqrt(q) / f atan(f x' / psi)``, ``alpha_y' = theta_e sqrt(q) / f atanh(f y' / psi)``.
    At ``q -> 1`` both tend to the SIS ``theta_e (x, y) / r``; ``f`` is floored at 1e-4 (relative
    error below 1e-8) so ``q = 1`` is exact.

    Args:
        x, y: image-plane positions. *Unit: arcsec*
        theta_e: Einstein radius. *Unit: arcsec*
        q: axis ratio (minor / major), in (0, 1].
        phi: position angle of the major axis, counter-clockwise from x. *Unit: rad*
        center_x, center_y: lens centre. *Unit: arcsec*

    Returns:
        ``(alpha_x, alpha_y)``. *Unit: arcsec*
    """
    dx, dy = rotate(x - center_x, y - center_y, phi)
    q = torch.as_tensor(q, dtype=x.dtype, device=x.device)
    f = torch.sqrt(torch.clamp(1.0 - q * q, min=1e-8))
    psi = torch.sqrt(q * q * dx * dx + dy * dy + _TINY)
    scale = theta_e * torch.sqrt(q) / f
    alpha_xr = scale * torch.atan(f * dx / psi)
    alpha_yr = scale * _atanh(f * dy / psi)
    cos_phi, sin_phi = _cos_sin(phi)
    return cos_phi * alpha_xr - sin_phi * alpha_yr, sin_phi * alpha_xr + cos_phi * alpha_yr


def sis_deflection(
    x: Tensor,
    y: Tensor,
    theta_e: Tensor | float,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Singular isothermal sphere: ``alpha = theta_e (x, y) / r``.

    Args:
        x, y: image-plane positions. *Unit: arcsec*
        theta_e: Einstein radius. *Unit: arcsec*
        center_x, center_y: lens centre. *Unit: arcsec*
    """
    dx, dy = x - center_x, y - center_y
    scale = theta_e / torch.sqrt(dx * dx + dy * dy + _TINY)
    return scale * dx, scale * dy


def shear_deflection(
    x: Tensor, y: Tensor, gamma1: Tensor | float, gamma2: Tensor | float
) -> tuple[Tensor, Tensor]:
    """External shear (potential ``(gamma1 (x^2 - y^2) + 2 gamma2 x y) / 2``), centred on the origin.

    Args:
        x, y: image-plane positions. *Unit: arcsec*
        gamma1, gamma2: shear components (dimensionless).

    Returns:
        ``(gamma1 x + gamma2 y, gamma2 x - gamma1 y)``. *Unit: arcsec*
    """
    return gamma1 * x + gamma2 * y, gamma2 * x - gamma1 * y


def point_mass_deflection(
    x: Tensor,
    y: Tensor,
    theta_m: Tensor | float,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Point mass: ``alpha = theta_m^2 (x, y) / r^2`` (equal to ``theta_m`` at ``r = theta_m``).

    Args:
        x, y: image-plane positions. *Unit: arcsec*
        theta_m: Einstein radius of the point mass. *Unit: arcsec*
        center_x, center_y: position of the mass. *Unit: arcsec*
    """
    dx, dy = x - center_x, y - center_y
    scale = theta_m * theta_m / (dx * dx + dy * dy + _TINY)
    return scale * dx, scale * dy


def point_masses_deflection(
    x: Tensor,
    y: Tensor,
    theta_m: Tensor,
    center_x: Tensor,
    center_y: Tensor,
    chunk_elements: int = 1 << 17,
) -> tuple[Tensor, Tensor]:
    """Summed deflection of ``K`` point masses per image, with bounded memory.

    Images are processed in groups of ``max(1, chunk_elements // (H * W))`` and the masses one after
    the other, so temporaries hold at most ``max(chunk_elements, H * W)`` elements whatever ``K`` and
    the batch size are (small temporaries also stay in cache: ~4x faster than one big broadcast).
    The masses are summed in a fixed order, so each image is bit-identical in any batch.

    Args:
        x, y: positions of shape ``(1, H, W)`` (shared grid) or ``(batch, H, W)``. *Unit: arcsec*
        theta_m: Einstein radii, shape ``(batch, K)``; 0 switches a mass off. *Unit: arcsec*
        center_x, center_y: positions of the masses, shape ``(batch, K)``. *Unit: arcsec*
        chunk_elements: element budget of one temporary.

    Returns:
        ``(alpha_x, alpha_y)`` of shape ``(batch, H, W)``. *Unit: arcsec*
    """
    if chunk_elements < 1:
        raise ValueError(f"chunk_elements must be >= 1, got {chunk_elements}")
    batch, n_masses = theta_m.shape
    height, width = x.shape[-2:]
    alpha_x = torch.zeros(batch, height, width, dtype=x.dtype, device=x.device)
    alpha_y = torch.zeros_like(alpha_x)
    theta_sq = (theta_m * theta_m)[:, :, None, None]  # (batch, K, 1, 1)
    group = max(1, chunk_elements // (height * width))
    for start in range(0, batch, group):
        images = slice(start, min(start + group, batch))
        grid_x = x if x.shape[0] == 1 else x[images]
        grid_y = y if y.shape[0] == 1 else y[images]
        for k in range(n_masses):
            dx = grid_x - center_x[images, k, None, None]  # (group, H, W)
            dy = grid_y - center_y[images, k, None, None]
            scale = theta_sq[images, k] / (dx * dx + dy * dy + _TINY)
            alpha_x[images] += scale * dx
            alpha_y[images] += scale * dy
    return alpha_x, alpha_y


def nfw_deflection(
    x: Tensor,
    y: Tensor,
    kappa_s: Tensor | float,
    r_s: Tensor | float,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Navarro-Frenk-White halo (Bartelmann 1996; Wright & Brainerd 2000).

    With ``u = r / r_s``: ``|alpha| = 4 kappa_s r_s [ln(u / 2) + h(u)] / u``, where
    ``h(u) = arccosh(1/u) / sqrt(1 - u^2)`` for ``u < 1``, ``arccos(1/u) / sqrt(u^2 - 1)`` for ``u > 1``
    and ``h(1) = 1`` (a second-order series is used for ``|u - 1| < 1e-3``). lenstronomy's ``alpha_Rs``
    (deflection at ``r_s``) is ``4 kappa_s r_s (1 - ln 2)``.

    Args:
        x, y: image-plane positions. *Unit: arcsec*
        kappa_s: convergence scale ``rho_s r_s / Sigma_crit`` (dimensionless).
        r_s: scale radius. *Unit: arcsec*
        center_x, center_y: halo centre. *Unit: arcsec*
    """
    dx, dy = x - center_x, y - center_y
    radius = torch.sqrt(dx * dx + dy * dy + _TINY)
    u = radius / r_s
    inside = torch.clamp(u, max=1.0 - 1e-3)
    outside = torch.clamp(u, min=1.0 + 1e-3)
    root_in = torch.sqrt(1.0 - inside * inside)
    root_out = torch.sqrt(outside * outside - 1.0)
    h_in = torch.log((1.0 + root_in) / inside) / root_in  # arccosh(1/u) / sqrt(1 - u^2)
    h_out = torch.atan(root_out) / root_out  # arccos(1/u) = atan(sqrt(u^2 - 1))
    d = u - 1.0
    h_near = 1.0 - 2.0 / 3.0 * d + 7.0 / 15.0 * d * d
    h = torch.where(u < 1.0 - 1e-3, h_in, torch.where(u > 1.0 + 1e-3, h_out, h_near))
    magnitude = 4.0 * kappa_s * r_s * (torch.log(u / 2.0) + h) / u
    return magnitude * dx / radius, magnitude * dy / radius


def nfw_kappa_s_from_alpha_rs(alpha_rs: Tensor | float, r_s: Tensor | float) -> Tensor | float:
    """``kappa_s`` from lenstronomy's ``alpha_Rs`` (deflection at ``r_s``). *Unit: arcsec in, none out*"""
    return alpha_rs / (4.0 * r_s * (1.0 - math.log(2.0)))


def line_mass_deflection(
    x: Tensor,
    y: Tensor,
    theta_line: Tensor | float,
    length: Tensor | float,
    phi: Tensor | float,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Exact deflection of a finite, uniform, infinitely thin line of mass (the DeepLense "vortex").

    With the complex position ``z = x - i y`` from the line centre and half-length vector
    ``h = (L / 2) e^{-i phi}``, the complex deflection ``alpha_x + i alpha_y`` is
    ``(theta_line^2 / L) e^{i phi} log((z + h) / (z - h))``: the continuum limit of DeepLenseSim's
    chain of point masses. The principal branch puts the cut on the line itself. Far from the line it
    tends to a point mass of Einstein radius ``theta_line``.

    Args:
        x, y: image-plane positions. *Unit: arcsec*
        theta_line: Einstein radius of the total line mass (``theta_line^2`` is proportional to its mass). *Unit: arcsec*
        length: full length ``L`` of the line (``2 lambda`` for a de Broglie wavelength ``lambda``). *Unit: arcsec*
        phi: orientation of the line, counter-clockwise from x. *Unit: rad*
        center_x, center_y: centre of the line. *Unit: arcsec*
    """
    dx, dy = x - center_x, y - center_y
    cos_phi, sin_phi = _cos_sin(phi)
    half_x, half_y = 0.5 * length * cos_phi, 0.5 * length * sin_phi  # end point of the line
    # log((z + h) / (z - h)) = ln|z + h| - ln|z - h| + i arg((z + h) conj(z - h))
    minus_sq = (dx - half_x) ** 2 + (dy - half_y) ** 2  # |z - h|^2
    ratio = 4.0 * (dx * half_x + dy * half_y) / (minus_sq + _TINY)  # |z + h|^2 / |z - h|^2 - 1
    # at the far end of the line (z = -h) the ratio rounds to -1: log1p(-1) = -inf would make the image NaN.
    # The log singularity is integrable; a floor keeps the pixel finite.
    log_modulus = 0.5 * torch.log1p(ratio.clamp_min(-1.0 + 1e-6))
    argument = _atan2(2.0 * (half_x * dy - half_y * dx), dx * dx + dy * dy - 0.25 * length * length)
    scale = theta_line * theta_line / length
    return (
        scale * (cos_phi * log_modulus - sin_phi * argument),
        scale * (sin_phi * log_modulus + cos_phi * argument),
    )


def axisymmetric_deflection(
    x: Tensor,
    y: Tensor,
    enclosed_mass: Tensor,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Deflection of any axisymmetric convergence from its enclosed mass: ``alpha_r = M(<r) / (pi r)``.

    Args:
        x, y: image-plane positions. *Unit: arcsec*
        enclosed_mass: ``M(<r) = 2 pi int_0^r kappa(r') r' dr'`` at each position (same shape as ``x``). *Unit: arcsec^2*
        center_x, center_y: profile centre. *Unit: arcsec*
    """
    dx, dy = x - center_x, y - center_y
    radius_sq = dx * dx + dy * dy + _TINY
    scale = enclosed_mass / (math.pi * radius_sq)
    return scale * dx, scale * dy


def gaussian_ring_enclosed_mass(
    radius: Tensor, kappa_0: Tensor | float, ring_radius: Tensor | float, width: Tensor | float
) -> Tensor:
    """Enclosed mass of a Gaussian ring in convergence, ``kappa(r) = kappa_0 exp(-(r - R)^2 / (2 w^2))``.

    Closed form: ``M(<r) = 2 pi kappa_0 w [w (e^{-R^2/2w^2} - e^{-(r-R)^2/2w^2})
    + R sqrt(pi/2) (erf((r - R)/(sqrt 2 w)) + erf(R/(sqrt 2 w)))]``.

    Args:
        radius: distance from the centre. *Unit: arcsec*
        kappa_0: peak convergence of the ring (may be negative: an under-density).
        ring_radius: ring radius ``R``. *Unit: arcsec*
        width: Gaussian width ``w``. *Unit: arcsec*

    Returns:
        ``M(<r)``. *Unit: arcsec^2* (convergence times area)
    """
    root2_w = math.sqrt(2.0) * width
    gaussian_0 = torch.exp(-((torch.as_tensor(ring_radius) / root2_w) ** 2))
    gaussian_r = torch.exp(-(((radius - ring_radius) / root2_w) ** 2))
    erf_sum = torch.erf((radius - ring_radius) / root2_w) + torch.erf(torch.as_tensor(ring_radius / root2_w))
    return (
        2.0
        * math.pi
        * kappa_0
        * width
        * (width * (gaussian_0 - gaussian_r) + ring_radius * math.sqrt(math.pi / 2.0) * erf_sum)
    )


def soliton_enclosed_mass(radius: Tensor, kappa_0: Tensor | float, core_radius: Tensor | float) -> Tensor:
    """Enclosed mass of a projected cored profile ``kappa(r) = kappa_0 / (1 + (r / r_c)^2)^4``.

    A projected stand-in for the ultra-light dark-matter soliton core (Schive et al. 2014 give
    ``rho ∝ (1 + 0.091 (r / r_c)^2)^-8`` in 3-D). Closed form:
    ``M(<r) = pi kappa_0 r_c^2 / 3 [1 - (1 + r^2 / r_c^2)^-3]``.

    Args:
        radius: distance from the centre. *Unit: arcsec*
        kappa_0: central convergence.
        core_radius: core radius ``r_c``. *Unit: arcsec*

    Returns:
        ``M(<r)``. *Unit: arcsec^2*
    """
    ratio_sq = (radius / core_radius) ** 2
    return math.pi * kappa_0 * core_radius**2 / 3.0 * (1.0 - (1.0 + ratio_sq) ** -3)
