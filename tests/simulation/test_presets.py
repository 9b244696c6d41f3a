"""Presets: the DeepLense set-ups, overrides and errors that name the bad field."""

import pytest

from hf_deeplense.simulation import PRESETS, SimulationConfig, get_preset


def test_preset_instruments():
    assert (PRESETS["model_i"].image_size, PRESETS["model_i"].pixel_scale) == (150, 0.05)
    assert (PRESETS["model_ii"].image_size, PRESETS["model_ii"].pixel_scale) == (64, 0.101)
    assert (PRESETS["model_iii"].image_size, PRESETS["model_iii"].pixel_scale) == (64, 0.08)
    assert PRESETS["model_ii"].psf_fwhm == (0.16,) and PRESETS["model_ii"].num_exposures == 4
    assert PRESETS["model_ab"].classes == ("no_sub", "sphere", "vortex")
    assert PRESETS["model_ab"].host_profile == "sis" and PRESETS["model_ab"].shear_range == (0.0, 0.3)
    lens_finding = PRESETS["lens_finding"]
    assert lens_finding.bands == ("g", "r", "i") and lens_finding.image_size == 64
    assert lens_finding.classes == ("non_lens", "lens") and lens_finding.num_channels == 3
    for name in ("model_i", "model_ii", "model_iii"):
        assert PRESETS[name].classes == ("no_sub", "cdm", "axion")
        assert PRESETS[name].axion_mass_log10_range == (-24.0, -22.0)


def test_overrides_and_lists_become_tuples():
    cfg = get_preset("model_ii", image_size=32, theta_e_range=[1.0, 1.5], add_noise=False)
    assert cfg.image_size == 32 and cfg.theta_e_range == (1.0, 1.5) and not cfg.add_noise
    assert PRESETS["model_ii"].image_size == 64  # the preset itself is untouched
    assert SimulationConfig(**cfg.to_dict()) == cfg
    hash(cfg)


def test_unknown_names_are_reported():
    with pytest.raises(KeyError, match="model_iv"):
        get_preset("model_iv")
    with pytest.raises(TypeError, match=r"'image_sise' \(did you mean 'image_size'\?\)"):
        get_preset("model_ii", image_sise=32)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"theta_e_range": (1.5, 1.0)}, "theta_e_range"),
        ({"psf_fwhm": (0.1, 0.2)}, "psf_fwhm"),
        ({"classes": ("no_sub", "wdm")}, "classes"),
        ({"q_range": (0.0, 1.0)}, "q_range"),
        ({"host_profile": "nfw"}, "host_profile"),
        ({"lens_fraction": 1.5}, "lens_fraction"),
        ({"image_size": 2}, "image_size"),
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        get_preset("model_ii", **overrides)
