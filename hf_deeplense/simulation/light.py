"""Surface-brightness profiles (sources, lens light and non-lens galaxies), pure and batched.

Parameters broadcast against the positions as in :mod:`.profiles`. Surface brightness is in flux per
arcsec^2 (the instrument multiplies by the pixel area); the elliptical radius follows lenstronomy's
convention ``R = sqrt(q x'^2 + y'^2 / q)`` (``r_eff`` is the geometric-mean half-light radius; a
major-axis half-light radius is ``r_eff / sqrt(q)``).

References:
- [0] Sersic 1963; Ciotti & Bertin 1999, A&A 352, 447 (``b_n``; here ``1.9992 n - 0.3271`` as in lenstronomy).
"""

from __future__ import annotations

import math

import torch

from .profiles import rotate

Tensor = torch.Tensor


def sersic_b(n: Tensor | float) -> Tensor | float:
    """``b_n`` such that ``r_eff`` encloses half the light (Capaccioli 1989 fit, good for 0.5 < n < 10)."""
    return 1.9992 * n - 0.3271


def elliptical_radius(
    x: Tensor,
    y: Tensor,
    q: Tensor | float,
    phi: Tensor | float,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> Tensor:
    """``sqrt(q x'^2 + y'^2 / q)`` in the frame rotated by ``phi``. *Unit: arcsec*"""
    dx, dy = rotate(x - center_x, y - center_y, phi)
    return torch.sqrt(q * dx * dx + dy * dy / q)


def sersic(
    x: Tensor,
    y: Tensor,
    amplitude: Tensor | float,
    r_eff: Tensor | float,
    n: Tensor | float,
    q: Tensor | float = 1.0,
    phi: Tensor | float = 0.0,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> Tensor:
    """Elliptical Sersic profile ``I = amplitude exp(-b_n ((R / r_eff)^(1/n) - 1))``.

    Args:
        x, y: positions (source plane for a lensed source). *Unit: arcsec*
        amplitude: surface brightness at ``R = r_eff``. *Unit: flux / arcsec^2*
        r_eff: half-light radius (geometric mean of the axes). *Unit: arcsec*
        n: Sersic index.
        q: axis ratio (minor / major).
        phi: position angle of the major axis. *Unit: rad*
        center_x, center_y: centre. *Unit: arcsec*
    """
    radius = elliptical_radius(x, y, q, phi, center_x, center_y)
    # (R / r_eff)^(1/n) as exp(log(.) / n); R is floored like lenstronomy's smoothing (1e-5 arcsec)
    power = torch.exp(torch.log(torch.clamp(radius / r_eff, min=1e-5 / 10.0)) / n)
    return amplitude * torch.exp(-sersic_b(n) * (power - 1.0))


def sersic_total_flux(amplitude: Tensor | float, r_eff: Tensor | float, n: Tensor | float) -> Tensor | float:
    """Total flux ``2 pi n r_eff^2 e^{b_n} Gamma(2n) / b_n^{2n} * amplitude``. *Unit: flux*"""
    b = sersic_b(n)
    if isinstance(n, Tensor):
        log_factor = (
            math.log(2.0 * math.pi) + torch.log(n) + b + torch.lgamma(2.0 * n) - 2.0 * n * torch.log(b)
        )
        return amplitude * r_eff**2 * torch.exp(log_factor)
    log_factor = math.log(2.0 * math.pi * n) + b + math.lgamma(2.0 * n) - 2.0 * n * math.log(b)
    return amplitude * r_eff**2 * math.exp(log_factor)


def sersic_amplitude_for_flux(
    flux: Tensor | float, r_eff: Tensor | float, n: Tensor | float
) -> Tensor | float:
    """Amplitude (surface brightness at ``r_eff``) of a Sersic profile of total ``flux``."""
    return flux / sersic_total_flux(1.0, r_eff, n)


def magnitude_to_flux(magnitude: Tensor | float, zero_point: Tensor | float) -> Tensor | float:
    """Flux from an AB-like magnitude; ``zero_point`` is the magnitude of 1 count per second. *Unit: e-/s*"""
    return 10.0 ** (-0.4 * (magnitude - zero_point))


def gaussian_ring(
    x: Tensor,
    y: Tensor,
    amplitude: Tensor | float,
    ring_radius: Tensor | float,
    width: Tensor | float,
    q: Tensor | float = 1.0,
    phi: Tensor | float = 0.0,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
) -> Tensor:
    """Elliptical ring of light ``amplitude exp(-(R - ring_radius)^2 / (2 width^2))`` (ring galaxies).

    Args:
        amplitude: peak surface brightness. *Unit: flux / arcsec^2*
        ring_radius, width: ring radius and Gaussian width. *Unit: arcsec*
    """
    radius = elliptical_radius(x, y, q, phi, center_x, center_y)
    return amplitude * torch.exp(-0.5 * ((radius - ring_radius) / width) ** 2)


def gaussian_ring_total_flux(
    amplitude: Tensor | float, ring_radius: Tensor | float, width: Tensor | float
) -> Tensor | float:
    """Total flux of :func:`gaussian_ring` (independent of ``q``: the elliptical radius keeps areas).

    ``2 pi amplitude w [w e^{-R^2 / 2 w^2} + R sqrt(pi / 2) (1 + erf(R / (sqrt 2 w)))]``. *Unit: flux*
    """
    ring_radius, width = torch.as_tensor(ring_radius), torch.as_tensor(width)
    gaussian = torch.exp(-0.5 * (ring_radius / width) ** 2)
    erf = torch.erf(ring_radius / (math.sqrt(2.0) * width))
    return (
        2.0
        * math.pi
        * amplitude
        * width
        * (width * gaussian + ring_radius * math.sqrt(math.pi / 2.0) * (1.0 + erf))
    )


def spiral_arms(
    x: Tensor,
    y: Tensor,
    n_arms: Tensor | float,
    pitch: Tensor | float,
    phase: Tensor | float,
    q: Tensor | float = 1.0,
    phi: Tensor | float = 0.0,
    center_x: Tensor | float = 0.0,
    center_y: Tensor | float = 0.0,
    sharpness: float = 4.0,
) -> Tensor:
    """Logarithmic-spiral modulation in [0, 1]: ``((1 + cos(m (theta - ln(R) / tan(pitch)) - phase)) / 2)^s``.

    Multiply a disk profile by ``1 + contrast * spiral_arms(...)`` to draw a spiral galaxy.

    Args:
        n_arms: number of arms ``m``.
        pitch: pitch angle of the arms. *Unit: rad*
        phase: rotation of the pattern. *Unit: rad*
        sharpness: exponent ``s`` that narrows the arms.
    """
    dx, dy = rotate(x - center_x, y - center_y, phi)
    root_q = torch.sqrt(torch.as_tensor(q, dtype=x.dtype))
    dx, dy = dx * root_q, dy / root_q  # the same elliptical radius as the disk
    radius = torch.sqrt(dx * dx + dy * dy + 1e-8)
    azimuth = 2.0 * torch.atan(dy / (radius + dx))  # atan2(dy, dx) up to the branch at -x
    wave = torch.cos(n_arms * (azimuth - torch.log(radius) / torch.tan(torch.as_tensor(pitch))) - phase)
    return (0.5 * (1.0 + wave)) ** sharpness
