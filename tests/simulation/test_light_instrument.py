"""Light profiles, pixel grid, PSF and noise."""

import math

import pytest
import torch

from hf_deeplense.simulation import instrument, light


def fine_grid(half_width: float, n: int):
    step = 2 * half_width / n
    offsets = (torch.arange(n, dtype=torch.float64) + 0.5) * step - half_width
    y, x = torch.meshgrid(offsets, offsets, indexing="ij")
    return x, y, step * step


@pytest.mark.parametrize("n", [1.0, 2.5])
def test_sersic_total_flux_and_half_light_radius(n):
    x, y, area = fine_grid(12.0, 1200)
    r_eff, q = 0.6, 0.7
    image = light.sersic(x, y, 2.0, r_eff, n, q, 0.4, 0.1, -0.2)
    total = light.sersic_total_flux(2.0, r_eff, n)
    assert float(image.sum() * area) == pytest.approx(total, rel=2e-3)
    inside = light.elliptical_radius(x, y, q, 0.4, 0.1, -0.2) < r_eff
    assert float(image[inside].sum() / image.sum()) == pytest.approx(0.5, abs=0.01)
    assert light.sersic_amplitude_for_flux(total, r_eff, n) == pytest.approx(2.0)
    assert float(
        light.sersic_total_flux(torch.tensor(2.0), torch.tensor(r_eff), torch.tensor(n))
    ) == pytest.approx(total, rel=1e-6)


def test_gaussian_ring_total_flux():
    x, y, area = fine_grid(5.0, 1000)
    image = light.gaussian_ring(x, y, 1.5, 1.2, 0.25, q=0.8, phi=0.3)
    assert float(image.sum() * area) == pytest.approx(
        float(light.gaussian_ring_total_flux(1.5, 1.2, 0.25)), rel=1e-4
    )


def test_pixel_grid_is_centred_with_row_zero_on_top():
    x, y = instrument.pixel_grid(4, 0.5, pad=1)
    assert x.shape == (1, 6, 6)
    torch.testing.assert_close(x[0, 0], torch.tensor([-1.25, -0.75, -0.25, 0.25, 0.75, 1.25]))
    torch.testing.assert_close(y[0, :, 0], torch.tensor([1.25, 0.75, 0.25, -0.25, -0.75, -1.25]))


def test_psf_kernel_and_convolution_conserve_flux():
    kernel = instrument.gaussian_psf_kernel_1d(0.16, 0.101)
    assert len(kernel) % 2 == 1 and float(kernel.sum()) == pytest.approx(1.0)
    sigma = 0.16 / (2 * math.sqrt(2 * math.log(2))) / 0.101
    offsets = torch.arange(len(kernel), dtype=torch.float64) - len(kernel) // 2
    assert float((kernel * offsets**2).sum()) == pytest.approx(sigma**2, rel=1e-2)  # sampled at pixel centres
    kernels = [
        kernel,
        instrument.gaussian_psf_kernel_1d(0.3, 0.101),
        instrument.gaussian_psf_kernel_1d(0.0, 0.101),
    ]
    pad = max(len(k) for k in kernels) // 2
    torch.manual_seed(0)
    images = torch.zeros(2, 3, 20 + 2 * pad, 20 + 2 * pad)
    # light at least one kernel half-width inside the cut-out: all of its blurred flux stays in it
    images[..., 2 * pad : 20, 2 * pad : 20] = torch.rand(2, 3, 20 - 2 * pad, 20 - 2 * pad)
    out = instrument.convolve_psf(images, kernels)
    assert out.shape == (2, 3, 20, 20)
    torch.testing.assert_close(out.sum(dim=(-2, -1)), images.sum(dim=(-2, -1)), rtol=1e-5, atol=0)
    # zero FWHM is the identity; a point source becomes the outer product of the kernel
    torch.testing.assert_close(out[:, 2], images[:, 2, pad:-pad, pad:-pad])
    point = torch.zeros(1, 1, 21 + 2 * pad, 21 + 2 * pad)
    point[0, 0, pad + 10, pad + 10] = 1.0
    psf = instrument.convolve_psf(point, [kernels[1]])[0, 0]
    half = len(kernels[1]) // 2
    torch.testing.assert_close(
        psf[10 - half : 11 + half, 10 - half : 11 + half], torch.outer(kernels[1], kernels[1]).float()
    )


@pytest.mark.parametrize("rate", [0.05, 0.7, 4.0, 11.9, 12.1, 40.0, 900.0])
def test_poisson_from_uniform_statistics(rate):
    generator = torch.Generator().manual_seed(1)
    uniform = torch.rand(200_000, generator=generator)
    counts = instrument.poisson_from_uniform(torch.full_like(uniform, rate), uniform)
    assert bool((counts == counts.round()).all()) and bool((counts >= 0).all())
    standard_error = math.sqrt(rate / counts.numel())
    assert abs(float(counts.mean()) - rate) < 5 * standard_error
    assert float(counts.var()) == pytest.approx(rate, rel=0.03)
    if rate < 12:  # exact inversion: the empirical P(0) matches e^-rate
        assert float((counts == 0).float().mean()) == pytest.approx(math.exp(-rate), abs=5e-3)


def test_add_noise_matches_noise_rms_and_is_unbiased():
    generator = torch.Generator().manual_seed(2)
    images = torch.full((4, 1, 64, 64), 0.8)
    images[:, :, :32] = 0.05
    uniform = torch.rand(images.shape, generator=generator)
    normal = torch.randn(images.shape, generator=generator)
    time = torch.tensor(565.0)
    sky = instrument.sky_counts_per_pixel(22.35, 24.0, 0.101)
    noisy = instrument.add_noise(
        images, uniform, normal, time, sky, read_noise=4.2, num_exposures=4.0, background_rms=0.01
    )
    rms = instrument.noise_rms(images, time, sky, read_noise=4.2, num_exposures=4.0, background_rms=0.01)
    residual = (noisy - images) / rms
    for half in (slice(0, 32), slice(32, 64)):
        assert abs(float(residual[:, :, half].mean())) < 0.05
        assert float(residual[:, :, half].std()) == pytest.approx(1.0, abs=0.05)
    assert sky == pytest.approx(10 ** (-0.4 * (22.35 - 24.0)) * 0.101**2)
