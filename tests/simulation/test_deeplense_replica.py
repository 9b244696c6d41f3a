"""The DeepLense-compatible presets against lenstronomy set up the way DeepLenseSim's code does it.

``deeplense_model_ii`` is compared with lenstronomy's ``SimAPI`` (Euclid VIS, Gaussian PSF,
``z_source_convention=2.5`` with the source at z = 1, the image doubled as ``simple_sim_2`` returns it);
``deeplense_model_i`` with a plain ``ImageModel`` (``simple_sim``, 150 px, PSF cut at 3 sigma) before
noise. Both use the lens, source, subhalo and vortex parameters our simulator drew, so the test checks
the replica's whole forward model: macro lens, deflection rescaling, point-mass vortex, PSF, flux and
pixel orientation (lenstronomy's row 0 is the bottom of the image, ours the top: the same arrays
hold scenes mirrored in y, so positions and angles are mirrored here).
"""

import math

import numpy as np
import pytest
import torch

from hf_deeplense.simulation import draw_lens_parameters, get_preset, simulate_batch

pytest.importorskip("lenstronomy")
from astropy.cosmology import FlatLambdaCDM  # noqa: E402
from lenstronomy.Data.imaging_data import ImageData  # noqa: E402
from lenstronomy.Data.psf import PSF  # noqa: E402
from lenstronomy.ImSim.image_model import ImageModel  # noqa: E402
from lenstronomy.LensModel.lens_model import LensModel  # noqa: E402
from lenstronomy.LightModel.light_model import LightModel  # noqa: E402
from lenstronomy.SimulationAPI.ObservationConfig.Euclid import Euclid  # noqa: E402
from lenstronomy.SimulationAPI.sim_api import SimAPI  # noqa: E402
from lenstronomy.Util import util  # noqa: E402

# DeepLenseSim's main halo: SIE with e1, e2 = 0.1, 0 and shear 0.05, 0; source e1, e2 = -0.1, 0.1.
LENS_ELLIPTICITY, SOURCE_ELLIPTICITY = (0.1, 0.0), (-0.1, 0.1)


def relative_l2(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def deeplense_lens_kwargs(lens: dict, sub, index: int) -> tuple[list[str], list[dict]]:
    """The lens-model lists of DeepLenseSim's `make_single_halo` + `make_old_cdm` / `make_vortex`."""
    models = ["SIE", "SHEAR"]
    kwargs = [
        {
            "theta_E": float(lens["theta_e"][index]),
            "e1": LENS_ELLIPTICITY[0],
            "e2": LENS_ELLIPTICITY[1],
            "center_x": 0.0,
            "center_y": 0.0,
        },
        {"gamma1": 0.05, "gamma2": 0.0},
    ]
    for theta, x, y in zip(sub.point_theta[index], sub.point_x[index], sub.point_y[index]):
        models.append("POINT_MASS")
        # the scene is mirrored in y between our arrays and lenstronomy's (see the preset docs)
        kwargs.append({"theta_E": float(theta), "center_x": float(x), "center_y": -float(y)})
    return models, kwargs


def deeplense_source_kwargs(lens: dict, index: int, **brightness) -> list[dict]:
    return [
        {
            "R_sersic": 0.25,
            "n_sersic": 1,
            "e1": SOURCE_ELLIPTICITY[0],
            "e2": SOURCE_ELLIPTICITY[1],
            "center_x": float(lens["source_x"][index]),
            "center_y": -float(lens["source_y"][index]),
            **brightness,
        }
    ]


@pytest.mark.parametrize("class_name", ["no_sub", "cdm", "axion"])
def test_model_ii_replica_matches_deeplensesim_simapi(class_name):
    cfg = get_preset("deeplense_model_ii")
    indices = range(3)
    ours = simulate_batch(cfg, class_name, indices, seed=5)["images"][:, 0].double().numpy()
    lens, sub = draw_lens_parameters(cfg, class_name, indices, seed=5)
    if class_name == "axion":
        assert sub.point_theta.shape[1] == 100  # DeepLenseSim's vortex: 100 point masses
    cosmology = FlatLambdaCDM(H0=67.5, Om0=0.309, Ob0=0.049)  # pyHalo's default, which DeepLenseSim passes
    band = Euclid(band="VIS", psf_type="GAUSSIAN", coadd_years=6).kwargs_single_band()
    for i in indices:
        models, kwargs_lens = deeplense_lens_kwargs(lens, sub, i)
        sim = SimAPI(
            num_pix=64,
            kwargs_single_band=band,
            kwargs_model={
                "lens_model_list": models,
                "lens_redshift_list": [0.5] * len(models),
                "source_light_model_list": ["SERSIC_ELLIPSE"],
                "source_redshift_list": [1.0],
                "cosmo": cosmology,
                "z_source_convention": 2.5,
                "z_source": 1.0,
            },
        )
        image_model = sim.image_model_class({"point_source_supersampling_factor": 1})
        _, kwargs_source, _ = sim.magnitude2amplitude(None, deeplense_source_kwargs(lens, i, magnitude=20))
        single = image_model.image(kwargs_lens, kwargs_source, None)
        theirs = single + single  # simple_sim_2: image_real = image_model + image_model
        assert relative_l2(ours[i], theirs) < 0.01, (class_name, i)


@pytest.mark.parametrize("class_name", ["no_sub", "cdm", "axion"])
def test_model_i_replica_matches_deeplensesim_image_model(class_name):
    cfg = get_preset("deeplense_model_i", add_noise=False)
    indices = range(2)
    ours = simulate_batch(cfg, class_name, indices, seed=7)["images"][:, 0].double().numpy()
    lens, sub = draw_lens_parameters(cfg, class_name, indices, seed=7)
    _, _, ra0, dec0, _, _, pix2angle, _ = util.make_grid_with_coordtransform(
        150, 0.05, center_ra=0, center_dec=0, subgrid_res=1, inverse=False
    )
    data = ImageData(
        image_data=np.zeros((150, 150)), ra_at_xy_0=ra0, dec_at_xy_0=dec0, transform_pix2angle=pix2angle
    )
    psf = PSF(psf_type="GAUSSIAN", fwhm=0.087, pixel_size=0.05, truncation=3)
    for i in indices:
        models, kwargs_lens = deeplense_lens_kwargs(lens, sub, i)
        model = ImageModel(
            data,
            psf,
            lens_model_class=LensModel(models),
            source_model_class=LightModel(["SERSIC_ELLIPSE"]),
            kwargs_numerics={"supersampling_factor": 1, "supersampling_convolution": False},
        )
        theirs = model.image(kwargs_lens, deeplense_source_kwargs(lens, i, amp=20))
        assert relative_l2(ours[i], theirs) < 0.01, (class_name, i)


def test_replicas_fix_the_macro_model_and_grow_the_ring_with_substructure():
    cfg = get_preset("deeplense_model_ii")
    lens, _ = draw_lens_parameters(cfg, "cdm", range(8), seed=0)
    for name in ("theta_e", "q", "phi", "gamma1", "gamma2", "source_r_eff", "source_q", "source_phi"):
        assert torch.unique(lens[name]).numel() == 1, name
    assert torch.unique(lens["source_x"]).numel() == 8  # only the source centre varies
    assert float(lens["deflection_scale"][0]) == pytest.approx(0.6335, abs=1e-4)
    # no compensation: the host keeps its Einstein radius whatever the substructure adds
    torch.testing.assert_close(lens["theta_e_host"], lens["theta_e"])
    assert math.isclose(float(lens["theta_e"][0]), 1.2815, abs_tol=1e-4)


def test_model_i_replica_noise_is_deeplensesim_counts():
    cfg = get_preset("deeplense_model_i", image_size=64)
    noisy = simulate_batch(cfg, "no_sub", range(4), seed=1)
    clean = simulate_batch(
        get_preset("deeplense_model_i", image_size=64, add_noise=False), "no_sub", range(4), seed=1
    )
    counts = noisy["images"]
    assert torch.equal(counts, counts.round()) and bool((counts >= 0).all())  # Poisson counts
    exposure = noisy["params"]["exposure_time"]
    assert bool(((exposure >= 1000) & (exposure <= 10**3.5)).all())
    # mean counts follow T * image; the variance of a background pixel is T + (0.01 T)^2 at zero flux
    expected = clean["images"] * exposure[:, None, None, None]
    bright = expected > 50
    ratio = counts[bright].sum() / expected[bright].sum()
    assert abs(float(ratio) - 1.0) < 0.02
    corner = counts[:, 0, :8, :8].flatten(1)
    t = exposure[:, None]
    z = (corner - corner.mean(dim=1, keepdim=True)) / torch.sqrt(t + (0.01 * t) ** 2)
    assert 0.7 < float(z.std()) < 1.3


def test_controlled_variant_keeps_the_substructure_and_randomises_the_macro_model():
    replica, controlled = get_preset("deeplense_model_ii"), get_preset("deeplense_model_ii_controlled")
    for name in (
        "n_subhalos",
        "subhalo_mass_slope",
        "subhalo_mass_range",
        "vortex_mass",
        "vortex_point_masses",
        "deflection_scale_range",
        "pixel_scale",
        "psf_fwhm",
        "add_noise",
    ):
        assert getattr(controlled, name) == getattr(replica, name), name
    assert controlled.compensate_substructure_mass and not replica.compensate_substructure_mass
    lens, _ = draw_lens_parameters(controlled, "cdm", range(8), seed=0)
    for name in ("theta_e", "q", "phi", "gamma1", "source_q", "source_phi"):
        assert torch.unique(lens[name]).numel() == 8, name
    # compensation: the host is lighter than the whole lens by the substructure inside the ring
    assert bool((lens["theta_e_host"] < lens["theta_e"]).all())
