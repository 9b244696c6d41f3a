"""simulate_lens_finding_batch: contract, determinism, lens fraction, meta features."""

import math

import torch

from hf_deeplense.simulation import get_preset, simulate_lens_finding_batch
from hf_deeplense.simulation.lens_finding import count_connected_regions, einstein_area
from hf_deeplense.simulation.profiles import sie_deflection

META = (
    "einstein_radius",
    "einstein_area",
    "source_flux_r",
    "source_mag_r",
    "magnification",
    "n_images",
    "source_pixels_above_noise",
)


def test_contract_and_meta():
    cfg = get_preset("lens_finding", image_size=32)
    out = simulate_lens_finding_batch(cfg, range(40), seed=0, lens_fraction=0.5)
    assert out["images"].shape == (40, 3, 32, 32) and out["labels"].dtype == torch.long
    lenses = out["labels"] == 1
    assert 5 < int(lenses.sum()) < 35
    meta = out["meta"]
    for name in META:
        assert meta[name].shape == (40,), name
    assert bool(torch.isfinite(meta["einstein_radius"][lenses]).all())
    assert bool(torch.isnan(meta["einstein_radius"][~lenses]).all())
    assert bool((meta["n_images"][lenses] >= 1).all()) and bool((meta["n_images"][~lenses] == 0).all())
    assert bool((meta["magnification"][lenses] > 1).all())
    assert bool((meta["source_pixels_above_noise"][lenses] > 0).all())
    flux = 10 ** (-0.4 * (meta["source_mag_r"][lenses] - cfg.zero_point[1]))
    torch.testing.assert_close(flux, meta["source_flux_r"][lenses], rtol=1e-4, atol=0)
    assert set(meta["galaxy_kind"][~lenses].tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert set(meta["galaxy_kind"][lenses].tolist()) == {4.0}


def test_lens_fraction_and_default():
    cfg = get_preset("lens_finding", image_size=16, add_noise=False)
    labels = simulate_lens_finding_batch(cfg, range(1000), seed=1)["labels"]
    assert abs(float(labels.float().mean()) - 0.06) < 0.025  # 3.3 standard errors
    assert int(simulate_lens_finding_batch(cfg, range(50), seed=1, lens_fraction=0.0)["labels"].sum()) == 0
    assert int(simulate_lens_finding_batch(cfg, range(50), seed=1, lens_fraction=1.0)["labels"].sum()) == 50


def test_deterministic_per_index():
    cfg = get_preset("lens_finding", image_size=32)
    whole = simulate_lens_finding_batch(cfg, range(16), seed=2, lens_fraction=0.4)
    parts = [
        simulate_lens_finding_batch(cfg, chunk, seed=2, lens_fraction=0.4)
        for chunk in (range(0, 5), range(5, 16))
    ]
    assert torch.equal(whole["images"], torch.cat([p["images"] for p in parts]))
    assert torch.equal(whole["labels"], torch.cat([p["labels"] for p in parts]))
    for name in META:
        torch.testing.assert_close(
            whole["meta"][name], torch.cat([p["meta"][name] for p in parts]), rtol=0, atol=0, equal_nan=True
        )
    other = simulate_lens_finding_batch(cfg, range(16), seed=3, lens_fraction=0.4)
    assert not torch.equal(whole["images"], other["images"])


def test_lenses_are_bluer_outside_the_core_than_red_galaxies_alone():
    """Lensed arcs add blue light: the g - i colour of lenses is bluer than that of kind-0 galaxies."""
    cfg = get_preset("lens_finding", add_noise=False)
    out = simulate_lens_finding_batch(cfg, range(300), seed=4, lens_fraction=0.5)
    g, i = out["images"][:, 0].sum(dim=(1, 2)), out["images"][:, 2].sum(dim=(1, 2))
    color = -2.5 * torch.log10(g / i)
    lens_color = color[out["labels"] == 1].median()
    red_color = color[out["meta"]["galaxy_kind"] == 0].median()
    assert float(lens_color) < float(red_color) - 0.1


def test_count_connected_regions():
    mask = torch.zeros(3, 12, 12, dtype=torch.bool)
    mask[0, 1:3, 1:3] = True
    mask[0, 6:10, 6] = True
    mask[0, 3, 3] = True  # diagonal neighbour: 8-connected to the first blob
    mask[1, 2:10, 2] = True
    mask[1, 2, 2:10] = True
    yy, xx = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    radius = torch.sqrt((yy - 5.5) ** 2 + (xx - 5.5) ** 2)
    mask[2] = (radius > 3) & (radius < 4.5)  # a ring: one region
    assert count_connected_regions(mask).tolist() == [2, 1, 1]


def test_einstein_area_of_a_sis_is_pi_theta_e_squared():
    theta_e, scale = 1.5, 0.02
    offsets = (torch.arange(300, dtype=torch.float64) - 149.5) * scale
    y, x = torch.meshgrid(-offsets, offsets, indexing="ij")
    alpha_x, alpha_y = sie_deflection(x[None], y[None], theta_e, 1.0, 0.0)
    area = float(einstein_area(alpha_x, alpha_y, scale)[0])
    assert math.isclose(area, math.pi * theta_e**2, rel_tol=0.01)
