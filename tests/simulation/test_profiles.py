"""Physics of the deflection profiles: limits, symmetries and Gauss's theorem."""

import math

import pytest
import torch

from hf_deeplense.simulation import profiles


def circle(radius: float, n: int = 720, dtype=torch.float64):
    angle = (torch.arange(n, dtype=dtype) + 0.5) * (2 * math.pi / n)
    return radius * torch.cos(angle), radius * torch.sin(angle)


def mean_radial_deflection(alpha_x, alpha_y, x, y):
    radius = torch.sqrt(x * x + y * y)
    return ((alpha_x * x + alpha_y * y) / radius).mean()


def test_point_mass_deflection_at_its_einstein_radius():
    x, y = circle(0.7)
    alpha_x, alpha_y = profiles.point_mass_deflection(x + 0.3, y - 0.2, 0.7, center_x=0.3, center_y=-0.2)
    torch.testing.assert_close(torch.hypot(alpha_x, alpha_y), torch.full_like(x, 0.7))
    # pointing towards the mass: alpha parallel to the position from the mass
    torch.testing.assert_close(alpha_x * y - alpha_y * x, torch.zeros_like(x), atol=1e-12, rtol=0)


def test_sie_with_q_one_is_sis():
    x = torch.linspace(-2, 2, 41)[None, :].expand(41, 41)
    y = x.T + 0.013
    for phi in (0.0, 0.7):
        sie = profiles.sie_deflection(x, y, 1.2, 1.0, phi, center_x=0.1, center_y=-0.05)
        sis = profiles.sis_deflection(x, y, 1.2, center_x=0.1, center_y=-0.05)
        torch.testing.assert_close(sie[0], sis[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(sie[1], sis[1], atol=1e-5, rtol=1e-5)
    # continuous at q -> 1 (the guard), and finite everywhere including the centre
    near = profiles.sie_deflection(x, y, 1.2, 0.99999, 0.3)
    one = profiles.sie_deflection(x, y, 1.2, 1.0, 0.3)
    torch.testing.assert_close(near[0], one[0], atol=1e-4, rtol=0)
    centre = profiles.sie_deflection(torch.zeros(1), torch.zeros(1), 1.2, 0.7, 0.3)
    assert all(bool(torch.isfinite(a).all()) for a in centre)


def test_sie_convergence_matches_its_definition():
    """kappa = div(alpha) / 2 equals theta_e / (2 sqrt(q x'^2 + y'^2 / q)) (finite differences, float64)."""
    theta_e, q, phi = 1.3, 0.6, 0.4
    x = torch.tensor([0.9, -0.4, 1.5], dtype=torch.float64)
    y = torch.tensor([0.2, 1.1, -0.7], dtype=torch.float64)
    h = 1e-5
    dax = (
        profiles.sie_deflection(x + h, y, theta_e, q, phi)[0]
        - profiles.sie_deflection(x - h, y, theta_e, q, phi)[0]
    )
    day = (
        profiles.sie_deflection(x, y + h, theta_e, q, phi)[1]
        - profiles.sie_deflection(x, y - h, theta_e, q, phi)[1]
    )
    kappa = (dax + day) / (4 * h)
    xr, yr = profiles.rotate(x, y, phi)
    expected = theta_e / (2 * torch.sqrt(q * xr**2 + yr**2 / q))
    torch.testing.assert_close(kappa, expected, rtol=1e-6, atol=0)


def test_external_shear():
    x, y = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 1.0, -1.0])
    alpha_x, alpha_y = profiles.shear_deflection(x, y, 0.05, -0.02)
    torch.testing.assert_close(alpha_x, 0.05 * x - 0.02 * y)
    torch.testing.assert_close(alpha_y, -0.02 * x - 0.05 * y)
    # traceless: no mass, so the mean radial deflection on a circle vanishes
    cx, cy = circle(1.3)
    assert abs(float(mean_radial_deflection(*profiles.shear_deflection(cx, cy, 0.05, -0.02), cx, cy))) < 1e-12


def test_line_mass_far_away_is_a_point_mass():
    x, y = circle(40.0, dtype=torch.float64)
    line = profiles.line_mass_deflection(x, y, 0.25, 1.5, 0.8)
    point = profiles.point_mass_deflection(x, y, 0.25)
    error = torch.hypot(line[0] - point[0], line[1] - point[1]) / torch.hypot(*point)
    assert float(error.max()) < 1e-3  # quadrupole term ~ (L / 2r)^2 = 3.5e-4


def test_line_mass_equals_a_dense_chain_of_point_masses():
    x = torch.linspace(-2.0, 2.0, 33, dtype=torch.float64)[None, :].expand(33, 33) + 0.031
    y = x.T.clone() - 0.047
    theta, length, phi, cx, cy = 0.3, 1.2, 0.6, 0.1, -0.2
    n = 2000
    s = (torch.arange(n, dtype=torch.float64) + 0.5) / n * length - length / 2
    px, py = cx + s * math.cos(phi), cy + s * math.sin(phi)
    chain = profiles.point_masses_deflection(
        x[None], y[None], torch.full((1, n), theta / math.sqrt(n), dtype=torch.float64), px[None], py[None]
    )
    line = profiles.line_mass_deflection(x, y, theta, length, phi, cx, cy)
    # away from the line itself (where a chain of points is not a continuum)
    dx, dy = profiles.rotate(x - cx, y - cy, phi)
    far = (dy.abs() > 0.05) | (dx.abs() > length / 2 + 0.05)
    for a_line, a_chain in zip(line, chain):
        torch.testing.assert_close(a_line[far], a_chain[0][far], rtol=1e-4, atol=1e-6)


def test_line_mass_enclosed_mass_from_gauss_theorem():
    """Mean radial deflection on a circle of radius R is M(<R) / (pi R); a line through the centre of
    half-length h > R has the fraction R / h of its mass inside."""
    theta, length = 0.4, 3.0
    x, y = circle(0.9, n=4000)
    mean = mean_radial_deflection(*profiles.line_mass_deflection(x, y, theta, length, 0.3), x, y)
    torch.testing.assert_close(
        mean, torch.tensor(theta**2 * (0.9 / 1.5) / 0.9, dtype=torch.float64), rtol=1e-3, atol=0
    )


@pytest.mark.parametrize("profile", ["gaussian_ring", "soliton"])
def test_axisymmetric_deflection_from_enclosed_mass(profile):
    """Closed-form M(<r) equals 2 pi int kappa r dr, and alpha_r = M(<r) / (pi r)."""
    r = torch.linspace(1e-4, 3.0, 300001, dtype=torch.float64)
    if profile == "gaussian_ring":
        kappa = 0.3 * torch.exp(-((r - 1.1) ** 2) / (2 * 0.2**2))
        closed = profiles.gaussian_ring_enclosed_mass(r, 0.3, 1.1, 0.2)
    else:
        kappa = 0.5 / (1 + (r / 0.4) ** 2) ** 4
        closed = profiles.soliton_enclosed_mass(r, 0.5, 0.4)
    numeric = torch.cumulative_trapezoid(2 * math.pi * kappa * r, r)
    torch.testing.assert_close(closed[1:], numeric + closed[0], rtol=1e-5, atol=1e-8)
    x, y = torch.tensor([0.6, -1.2], dtype=torch.float64), torch.tensor([0.8, 0.5], dtype=torch.float64)
    radius = torch.hypot(x, y)
    mass = (
        profiles.gaussian_ring_enclosed_mass(radius, 0.3, 1.1, 0.2)
        if profile == "gaussian_ring"
        else profiles.soliton_enclosed_mass(radius, 0.5, 0.4)
    )
    alpha_x, alpha_y = profiles.axisymmetric_deflection(x, y, mass)
    torch.testing.assert_close(torch.hypot(alpha_x, alpha_y), mass / (math.pi * radius))


def test_nfw_enclosed_mass_and_continuity_at_scale_radius():
    kappa_s, r_s = 0.2, 1.5
    # alpha(r) = M(<r) / (pi r) with M(<r) = 4 pi kappa_s r_s^2 [ln(u/2) + h(u)] (Bartelmann 1996)
    r = torch.tensor([0.3, 1.5 - 1e-3, 1.5, 1.5 + 1e-3, 4.0], dtype=torch.float64)
    alpha_x, _ = profiles.nfw_deflection(r, torch.zeros_like(r), kappa_s, r_s)
    u = r / r_s
    h = torch.where(
        u < 1,
        torch.acosh(1 / u.clamp(max=1 - 1e-12)) / torch.sqrt((1 - u**2).clamp(min=1e-24)),
        torch.acos(1 / u.clamp(min=1 + 1e-12)) / torch.sqrt((u**2 - 1).clamp(min=1e-24)),
    )
    h[2] = 1.0
    expected = 4 * kappa_s * r_s * (torch.log(u / 2) + h) / u
    torch.testing.assert_close(alpha_x, expected, rtol=1e-6, atol=0)
    # lenstronomy's alpha_Rs is the deflection at r_s
    alpha_rs = float(expected[2])
    assert profiles.nfw_kappa_s_from_alpha_rs(alpha_rs, r_s) == pytest.approx(kappa_s)


def test_point_masses_chunking_does_not_change_the_sum():
    torch.manual_seed(0)
    x = torch.linspace(-2, 2, 24)[None, None, :].expand(1, 24, 24)
    y = x.transpose(1, 2)
    theta = torch.rand(5, 37) * 0.1
    cx, cy = torch.randn(5, 37), torch.randn(5, 37)
    small = profiles.point_masses_deflection(x, y, theta, cx, cy, chunk_elements=1)
    large = profiles.point_masses_deflection(x, y, theta, cx, cy, chunk_elements=1 << 20)
    torch.testing.assert_close(small, large, rtol=0, atol=0)
    single = [
        profiles.point_mass_deflection(
            x, y, theta[:, k, None, None], cx[:, k, None, None], cy[:, k, None, None]
        )
        for k in range(37)
    ]
    torch.testing.assert_close(small[0], sum(s[0] for s in single), rtol=1e-5, atol=1e-6)
