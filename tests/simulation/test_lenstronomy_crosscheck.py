"""Cross-check against lenstronomy (an independent code): relative L2 difference below 1%.

Conventions mapped here: lenstronomy's ``SIE`` and ``SERSIC_ELLIPSE`` use the same "product-average"
elliptical radius ``sqrt(q x'^2 + y'^2 / q)`` as ours, with ``e1, e2 = (1 - q) / (1 + q) (cos 2 phi, sin 2 phi)``;
``R_sersic`` is our ``r_eff`` and ``amp`` the surface brightness at ``r_eff``; ``NFW`` takes ``alpha_Rs``
(deflection at ``Rs``) = ``4 kappa_s r_s (1 - ln 2)``. lenstronomy has no finite line mass: the line is
compared with a chain of 1000 point masses (DeepLenseSim's construction, with 100).
"""

import math

import numpy as np
import pytest
import torch

from hf_deeplense.simulation import get_preset, instrument, profiles, simulate_batch

lenstronomy = pytest.importorskip("lenstronomy")
from lenstronomy.Data.imaging_data import ImageData  # noqa: E402
from lenstronomy.Data.psf import PSF  # noqa: E402
from lenstronomy.ImSim.image_model import ImageModel  # noqa: E402
from lenstronomy.LensModel.lens_model import LensModel  # noqa: E402
from lenstronomy.LightModel.light_model import LightModel  # noqa: E402
from lenstronomy.Util import param_util  # noqa: E402


def relative_l2(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def grid(size=64, scale=0.101):
    x, y = instrument.pixel_grid(size, scale, dtype=torch.float64)
    return x[0], y[0]


@pytest.mark.parametrize("fwhm", [0.0, 0.16])
def test_sie_shear_sersic_images_match(fwhm):
    cfg = get_preset("model_ii", add_noise=False, psf_fwhm=(fwhm,), image_size=48)
    out = simulate_batch(cfg, "no_sub", range(4), seed=11)
    kernel_1d, pad = instrument.gaussian_psf_kernel_1d(fwhm, cfg.pixel_scale), 0
    pad = len(kernel_1d) // 2
    x, y = instrument.pixel_grid(cfg.image_size, cfg.pixel_scale, pad, dtype=torch.float64)
    size = cfg.image_size + 2 * pad
    data = ImageData(
        image_data=np.zeros((size, size)),
        ra_at_xy_0=float(x[0, 0, 0]),
        dec_at_xy_0=float(y[0, 0, 0]),
        transform_pix2angle=np.array([[cfg.pixel_scale, 0.0], [0.0, -cfg.pixel_scale]]),
    )
    ra, dec = data.pixel_coordinates
    np.testing.assert_allclose(ra, x[0].numpy(), atol=1e-12)
    np.testing.assert_allclose(dec, y[0].numpy(), atol=1e-12)
    if fwhm > 0:  # the same sampled Gaussian kernel (ours is separable: the outer product)
        psf = PSF(psf_type="PIXEL", kernel_point_source=torch.outer(kernel_1d, kernel_1d).numpy())
    else:
        psf = PSF(psf_type="NONE")
    model = ImageModel(
        data,
        psf,
        lens_model_class=LensModel(["SIE", "SHEAR"]),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        kwargs_numerics={"supersampling_factor": 1},
    )
    for i in range(4):
        p = {k: float(v[i]) for k, v in out["params"].items()}
        e1, e2 = param_util.phi_q2_ellipticity(p["phi"], p["q"])
        s1, s2 = param_util.phi_q2_ellipticity(p["source_phi"], p["source_q"])
        flux = 10 ** (-0.4 * (p["source_magnitude"] - cfg.zero_point[0]))
        n, r_eff = p["source_n"], p["source_r_eff"]
        b_n = 1.9992 * n - 0.3271
        amp = flux / (2 * math.pi * n * r_eff**2 * math.exp(b_n) * math.gamma(2 * n) / b_n ** (2 * n))
        kwargs_lens = [
            {"theta_E": p["theta_e_host"], "e1": e1, "e2": e2, "center_x": 0.0, "center_y": 0.0},
            {"gamma1": p["gamma1"], "gamma2": p["gamma2"], "ra_0": 0.0, "dec_0": 0.0},
        ]
        kwargs_source = [
            {
                "amp": amp,
                "R_sersic": r_eff,
                "n_sersic": n,
                "e1": s1,
                "e2": s2,
                "center_x": p["source_x"],
                "center_y": p["source_y"],
            }
        ]
        theirs = model.image(kwargs_lens, kwargs_source)
        if pad:
            theirs = theirs[pad:-pad, pad:-pad]
        assert relative_l2(out["images"][i, 0].numpy(), theirs) < 0.01


def test_point_masses_match():
    x, y = grid()
    rng = np.random.default_rng(0)
    k = 25
    theta = rng.uniform(0.001, 0.15, k)
    cx, cy = rng.uniform(-2, 2, k), rng.uniform(-2, 2, k)
    ours = profiles.point_masses_deflection(
        x[None], y[None], torch.tensor(theta)[None], torch.tensor(cx)[None], torch.tensor(cy)[None]
    )
    lens = LensModel(["POINT_MASS"] * k)
    kwargs = [{"theta_E": t, "center_x": a, "center_y": b} for t, a, b in zip(theta, cx, cy)]
    theirs = lens.alpha(x.numpy(), y.numpy(), kwargs)
    assert relative_l2(torch.stack(ours)[:, 0].numpy(), np.stack(theirs)) < 0.01


def test_nfw_matches():
    x, y = grid()
    r_s, alpha_rs = 1.3, 0.4
    ours = profiles.nfw_deflection(x, y, profiles.nfw_kappa_s_from_alpha_rs(alpha_rs, r_s), r_s, 0.2, -0.1)
    theirs = LensModel(["NFW"]).alpha(
        x.numpy(), y.numpy(), [{"Rs": r_s, "alpha_Rs": alpha_rs, "center_x": 0.2, "center_y": -0.1}]
    )
    assert relative_l2(torch.stack(ours).numpy(), np.stack(theirs)) < 0.01


def test_sie_matches():
    x, y = grid()
    theta_e, q, phi = 1.25, 0.65, 0.9
    ours = profiles.sie_deflection(x, y, theta_e, q, phi, 0.05, -0.03)
    e1, e2 = param_util.phi_q2_ellipticity(phi, q)
    theirs = LensModel(["SIE"]).alpha(
        x.numpy(), y.numpy(), [{"theta_E": theta_e, "e1": e1, "e2": e2, "center_x": 0.05, "center_y": -0.03}]
    )
    assert relative_l2(torch.stack(ours).numpy(), np.stack(theirs)) < 0.01


def test_line_mass_matches_a_chain_of_point_masses():
    x, y = grid()
    theta_line, length, phi = 0.2, 2.4, 0.7
    ours = profiles.line_mass_deflection(x, y, theta_line, length, phi)
    n = 1000
    s = (np.arange(n) + 0.5) / n * length - length / 2
    kwargs = [
        {"theta_E": theta_line / math.sqrt(n), "center_x": t * math.cos(phi), "center_y": t * math.sin(phi)}
        for t in s
    ]
    theirs = LensModel(["POINT_MASS"] * n).alpha(x.numpy(), y.numpy(), kwargs)
    assert relative_l2(torch.stack(ours).numpy(), np.stack(theirs)) < 0.01
