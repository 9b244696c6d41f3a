"""Simulation presets: one flat, documented, validated dataclass and the named DeepLense set-ups.

Ranges are ``(low, high)`` tuples drawn uniformly per image unless a field says otherwise (a range
with ``low == high`` fixes the value); per-band fields are tuples with one entry per band.

Two families of substructure presets:

- **Physical** (``model_i``, ``model_ii``, ``model_iii``, ``model_ab``): the intended physics of each
  DeepLense set, made harder on purpose: the macro lens (Einstein radius, ellipticity, orientation,
  shear) and the source vary per image, substructure mass is compensated so that ring size does not
  give the class away, noise follows the instrument, and the CDM mass function has the physical
  slope -1.9. Use them to ask whether a model sees substructure.
- **DeepLense-compatible replicas** (``deeplense_model_i``, ``deeplense_model_ii``,
  ``deeplense_model_iii``): what DeepLenseSim's code (``deeplense/lens.py`` and the ``Model_*``
  scripts) really produced for the public files. The lens is the same for every image (SIE from
  M = 1e12 Msun, e1 = 0.1, shear gamma1 = 0.05), the source varies only in position, CDM is exactly
  25 point masses with slope -0.9, the vortex is 100 point masses on a line, nothing compensates the
  added mass (so the ring's size alone separates the classes well), Model II and III images are
  noiseless and Model I has that code's noise. Use them to compare with published DeepLense figures
  and to run on the public files.

Model II and III replicas also reproduce lenstronomy's ``z_source_convention`` rescaling
(``deflection_scale_range``): the code asks ``SimAPI`` for reduced deflections at z = 2.5 while its source
sits at z = 1, and lenstronomy 1.14 rescales every deflection by
``(D_ds / D_s)(z_s = 1) / (D_ds / D_s)(z_s = 2.5) = 0.633`` (ring at 0.81" instead of 1.28").
lenstronomy has rescaled this way since 2019 (also in 1.9, the release DeepLenseSim names), so the
public files most likely have the 0.81" ring; a pipeline that ignores ``z_source_convention`` gives
1.28". :data:`MACRO_SPREAD` gives overrides that train one model for both ring sizes.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass

SUBSTRUCTURE_CLASSES = ("no_sub", "cdm", "axion", "sphere", "vortex")
LENS_FINDING_CLASSES = ("non_lens", "lens")
NOISE_MODELS = ("simapi", "deeplense_model_i")


@dataclass(frozen=True)
class SimulationConfig:
    """Every knob of the simulator (all overridable through :func:`get_preset`).

    Geometry and instrument:
        name: preset name (recorded in dataset cards).
        classes: class names, in label order. Substructure classes: ``no_sub`` (none), ``cdm`` (point-mass
            subhalos), ``axion`` (DeepLense vortex: a uniform line mass), ``sphere`` and ``vortex``
            (Models A/B). Lens finding: ``("non_lens", "lens")``.
        image_size: pixels per side.
        pixel_scale: pixel size. *Unit: arcsec*
        bands: band names, one image channel each.
        psf_fwhm: Gaussian PSF FWHM per band (0: no PSF). *Unit: arcsec*
        psf_truncation: PSF kernel half-width in units of sigma.

    Main lens (SIE + external shear, centred):
        host_profile: ``"sie"`` or ``"sis"`` (axis ratio fixed to 1).
        theta_e_range: Einstein radius of the whole lens (host + substructure, see
            ``compensate_substructure_mass``). *Unit: arcsec*
        q_range: axis ratio of the SIE (minor / major).
        phi_range: position angle of the SIE major axis. *Unit: rad*
        shear_range: external shear magnitude.
        shear_angle_range: shear angle ``psi`` (``gamma1, gamma2 = shear (cos 2 psi, sin 2 psi)``). *Unit: rad*
        host_mass: mass of the host halo, used to convert substructure masses into Einstein radii
            (``theta_m^2 = theta_e^2 m / host_mass``). *Unit: Msun*

    Source (elliptical Sersic):
        source_r_eff_range: half-light radius (geometric mean). *Unit: arcsec*
        source_n_range: Sersic index.
        source_q_range: axis ratio.
        source_phi_range: position angle of the source major axis. *Unit: rad*
        source_center_range: range of each coordinate of the source centre. *Unit: arcsec*
        source_magnitude_range: magnitude in the reference band. *Unit: mag*

    Substructure:
        n_subhalos: number of point-mass subhalos (``cdm``).
        subhalo_mass_range: subhalo masses. *Unit: Msun*
        subhalo_mass_slope: slope ``beta`` of ``dN/dm ∝ m^beta``.
        subhalo_radius_range: projected distance of subhalos from the centre (uniform in radius,
            uniform angle). *Unit: arcsec*
        vortex_mass: mass of the DeepLense axion vortex line. *Unit: Msun*
        axion_mass_log10_range: ``log10(m_a / eV)``, uniform (the regression target).
        de_broglie_scale: ``lambda = de_broglie_scale * 1e-22 eV / m_a``; the line is ``2 lambda`` long. *Unit: arcsec*
        vortex_point_masses: 0 draws the vortex as the exact uniform line mass; ``K >= 2`` as DeepLenseSim
            does, ``K`` equal point masses at ``linspace(-lambda, lambda, K)`` along the line.
        ab_substructure_fraction: substructure mass / host mass for ``sphere`` and ``vortex``.
        ab_n_subhalos: number of point masses of ``sphere``.
        ab_sphere_radius_range: distance of the ``sphere`` masses from the centre. *Unit: arcsec*
        ab_vortex_length: length of the ``vortex`` line (a uniform line mass, the exact limit of a chain). *Unit: arcsec*
        compensate_substructure_mass: scale the host Einstein radius so that the mass inside the
            Einstein circle equals that of the same lens without substructure (no ring-size shortcut).
        deflection_scale_range: factor on every deflection (host, shear, substructure), drawn per
            image. 1 is the physical lens; DeepLense-compatible Model II/III replicas fix it at
            lenstronomy's ``z_source_convention`` rescaling (see the module docstring).
        subhalo_chunk_elements: subhalos are evaluated one at a time on groups of images, with
            temporaries of at most this many elements (bounded memory for any number of subhalos).

    Noise (all per band, lenstronomy ``SimAPI`` conventions, images in e-/s):
        add_noise: False gives noiseless (PSF-convolved) images.
        noise_model: ``"simapi"`` (lenstronomy ``SimAPI``: Poisson on source and sky, read noise, images
            in e-/s) or ``"deeplense_model_i"`` (DeepLenseSim's Model I: Gaussian noise of variance
            ``I / T + background_rms^2``, times ``T``, then Poisson: images in counts; sky, read noise
            and ``num_exposures`` are not used).
        zero_point: magnitude of 1 e-/s. *Unit: mag*
        sky_brightness: sky surface brightness (None: no sky). *Unit: mag / arcsec^2*
        exposure_time: time of one exposure. *Unit: s*
        exposure_time_log10_spread: the exposure is ``exposure_time * 10^U(0, spread)`` per image.
        num_exposures: co-added exposures.
        read_noise: read noise per exposure. *Unit: e-*
        background_rms: extra Gaussian background. *Unit: e-/s per pixel*

    Lens finding (multi-band, used by ``simulate_lens_finding_batch``):
        reference_band: index of the band in which magnitudes are given (r).
        lens_fraction: probability that an image is a lens.
        lens_light_magnitude_range, lens_light_r_eff_range, lens_light_n_range, lens_light_q_range:
            red deflector galaxy (also the bright galaxy of most non-lenses). *Units: mag, arcsec*
        lens_light_colors: per band ``(low, high)`` of ``m_band - m_reference`` for red galaxies.
        source_colors: the same for blue sources, companions and star-forming galaxies.
        nonlens_weights: probabilities of the non-lens kinds (red galaxy alone, red galaxy with blue
            companions, spiral galaxy, ring galaxy).
    """

    name: str = "custom"
    classes: tuple[str, ...] = ("no_sub", "cdm", "axion")
    image_size: int = 64
    pixel_scale: float = 0.101
    bands: tuple[str, ...] = ("VIS",)
    psf_fwhm: tuple[float, ...] = (0.16,)
    psf_truncation: float = 4.0

    host_profile: str = "sie"
    theta_e_range: tuple[float, float] = (1.1, 1.4)
    q_range: tuple[float, float] = (0.7, 1.0)
    phi_range: tuple[float, float] = (0.0, math.pi)
    shear_range: tuple[float, float] = (0.0, 0.1)
    shear_angle_range: tuple[float, float] = (0.0, math.pi)
    host_mass: float = 1e12

    source_r_eff_range: tuple[float, float] = (0.2, 0.3)
    source_n_range: tuple[float, float] = (0.8, 1.5)
    source_q_range: tuple[float, float] = (0.7, 1.0)
    source_phi_range: tuple[float, float] = (0.0, math.pi)
    source_center_range: tuple[float, float] = (-0.35, 0.35)
    source_magnitude_range: tuple[float, float] = (19.5, 20.5)

    n_subhalos: int = 25
    subhalo_mass_range: tuple[float, float] = (1e6, 1e10)
    subhalo_mass_slope: float = -1.9
    subhalo_radius_range: tuple[float, float] = (0.25, 2.0)
    vortex_mass: float = 3e10
    axion_mass_log10_range: tuple[float, float] = (-24.0, -22.0)
    de_broglie_scale: float = 0.03
    vortex_point_masses: int = 0
    ab_substructure_fraction: float = 0.01
    ab_n_subhalos: int = 25
    ab_sphere_radius_range: tuple[float, float] = (0.0, 1.0)
    ab_vortex_length: float = 1.0
    compensate_substructure_mass: bool = True
    deflection_scale_range: tuple[float, float] = (1.0, 1.0)
    subhalo_chunk_elements: int = 1 << 17

    add_noise: bool = True
    noise_model: str = "simapi"
    zero_point: tuple[float, ...] = (24.0,)
    sky_brightness: tuple[float | None, ...] = (22.35,)
    exposure_time: tuple[float, ...] = (565.0,)
    exposure_time_log10_spread: float = 0.0
    num_exposures: int = 4
    read_noise: float = 4.2
    background_rms: float = 0.0

    reference_band: int = 0
    lens_fraction: float = 0.06
    lens_light_magnitude_range: tuple[float, float] = (18.0, 20.5)
    lens_light_r_eff_range: tuple[float, float] = (0.5, 1.5)
    lens_light_n_range: tuple[float, float] = (2.5, 5.0)
    lens_light_q_range: tuple[float, float] = (0.6, 1.0)
    lens_light_colors: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    source_colors: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    nonlens_weights: tuple[float, float, float, float] = (0.4, 0.25, 0.2, 0.15)

    def __post_init__(self) -> None:
        # Lists given as overrides (e.g. from JSON/YAML) become tuples, so configs stay hashable.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
                object.__setattr__(self, field.name, value)
        self._validate()

    def _validate(self) -> None:
        def fail(field: str, message: str) -> None:
            raise ValueError(f"SimulationConfig '{self.name}': {field} {message}")

        if self.image_size < 4:
            fail("image_size", f"must be >= 4, got {self.image_size}")
        if self.pixel_scale <= 0:
            fail("pixel_scale", f"must be > 0, got {self.pixel_scale}")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            fail("classes", f"must be distinct names, got {self.classes}")
        known = set(SUBSTRUCTURE_CLASSES) | set(LENS_FINDING_CLASSES)
        unknown = [c for c in self.classes if c not in known]
        if unknown:
            fail("classes", f"has unknown class(es) {unknown}; known: {sorted(known)}")
        n_bands = len(self.bands)
        for field in ("psf_fwhm", "zero_point", "sky_brightness", "exposure_time"):
            if len(getattr(self, field)) != n_bands:
                fail(field, f"needs one value per band {self.bands}, got {getattr(self, field)}")
        if "lens" in self.classes:
            for field in ("lens_light_colors", "source_colors"):
                if len(getattr(self, field)) != n_bands:
                    fail(field, f"needs one (low, high) per band {self.bands}, got {getattr(self, field)}")
        if not 0 <= self.reference_band < n_bands:
            fail("reference_band", f"must index bands {self.bands}, got {self.reference_band}")
        if self.host_profile not in ("sie", "sis"):
            fail("host_profile", f"must be 'sie' or 'sis', got {self.host_profile!r}")
        for field in dataclasses.fields(self):
            if field.name.endswith("_range"):
                low, high = getattr(self, field.name)
                if not low <= high:
                    fail(field.name, f"must be (low, high) with low <= high, got {(low, high)}")
        if not (0 < self.q_range[0] and self.q_range[1] <= 1):
            fail("q_range", f"must lie in (0, 1], got {self.q_range}")
        if self.subhalo_mass_range[0] <= 0 or math.isclose(self.subhalo_mass_slope, -1.0):
            fail("subhalo_mass_range", "must be positive and subhalo_mass_slope must not be -1")
        if not 0.0 <= self.lens_fraction <= 1.0:
            fail("lens_fraction", f"must lie in [0, 1], got {self.lens_fraction}")
        if len(self.nonlens_weights) != 4 or min(self.nonlens_weights) < 0 or sum(self.nonlens_weights) <= 0:
            fail("nonlens_weights", f"must be 4 non-negative weights, got {self.nonlens_weights}")
        if self.vortex_point_masses < 0 or self.vortex_point_masses == 1:
            fail("vortex_point_masses", f"must be 0 (exact line) or >= 2, got {self.vortex_point_masses}")
        if self.deflection_scale_range[0] <= 0:
            fail("deflection_scale_range", f"must be > 0, got {self.deflection_scale_range}")
        if self.noise_model not in NOISE_MODELS:
            fail("noise_model", f"must be one of {NOISE_MODELS}, got {self.noise_model!r}")
        if self.subhalo_chunk_elements < 1:
            fail("subhalo_chunk_elements", f"must be >= 1, got {self.subhalo_chunk_elements}")

    @property
    def num_channels(self) -> int:
        return len(self.bands)

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)


# DeepLenseSim Model I's instrument: 150 px, 0.05", Gaussian PSF 0.087", Poisson (exposure 10^U(3, 3.5) s) +
# Gaussian background 0.01. Fluxes are arbitrary (zero point 25): magnitude ~22 is lenstronomy's amp = 20 for
# R = 0.25", n = 1, the DeepLense source.
MODEL_I_INSTRUMENT = {
    "image_size": 150,
    "pixel_scale": 0.05,
    "psf_fwhm": (0.087,),
    "zero_point": (25.0,),
    "sky_brightness": (None,),
    "exposure_time": (1000.0,),
    "exposure_time_log10_spread": 0.5,
    "num_exposures": 1,
    "read_noise": 0.0,
    "background_rms": 0.01,
}

PRESETS: dict[str, SimulationConfig] = {
    "model_i": SimulationConfig(
        name="model_i", bands=("model_i",), source_magnitude_range=(21.8, 22.3), **MODEL_I_INSTRUMENT
    ),
    # Model II, Euclid VIS as in DeepLenseSim's lenstronomy version: seeing 0.16", 565 s x 4,
    # sky 22.35 mag/arcsec^2, zero point 24.0, read noise 4.2 e-.
    "model_ii": SimulationConfig(name="model_ii"),
    # Model III, HST WFC3 F160W (lenstronomy's WFC3_F160W): 0.08", PSF 0.08", 5400 s, sky 22.3,
    # zero point 25.96, read noise 4 e-.
    "model_iii": SimulationConfig(
        name="model_iii",
        pixel_scale=0.08,
        bands=("F160W",),
        psf_fwhm=(0.08,),
        zero_point=(25.96,),
        sky_brightness=(22.3,),
        exposure_time=(5400.0,),
        num_exposures=1,
        read_noise=4.0,
    ),
    # Models A/B (PyAutoLens, Common Test I): SIS theta_E = 1.2", shear |gamma| ~ U(0, 0.3),
    # substructure 1% of the host; the Model I instrument.
    "model_ab": SimulationConfig(
        name="model_ab",
        classes=("no_sub", "sphere", "vortex"),
        bands=("model_ab",),
        host_profile="sis",
        theta_e_range=(1.2, 1.2),
        q_range=(1.0, 1.0),
        shear_range=(0.0, 0.3),
        source_magnitude_range=(21.8, 22.3),
        **MODEL_I_INSTRUMENT,
    ),
    # HSC-like g, r, i cut-outs (0.168", seeing 0.8 / 0.7 / 0.6", Wide-survey depth, zero point 27):
    # red lens galaxies, blue sources; ~6% lenses as in DeepLense's lens-finding test.
    "lens_finding": SimulationConfig(
        name="lens_finding",
        classes=LENS_FINDING_CLASSES,
        image_size=64,
        pixel_scale=0.168,
        bands=("g", "r", "i"),
        psf_fwhm=(0.8, 0.7, 0.6),
        theta_e_range=(0.8, 2.5),
        q_range=(0.6, 1.0),
        shear_range=(0.0, 0.08),
        source_r_eff_range=(0.15, 0.5),
        source_n_range=(0.7, 2.0),
        source_q_range=(0.5, 1.0),
        source_center_range=(-0.4, 0.4),
        source_magnitude_range=(21.0, 23.5),
        zero_point=(27.0, 27.0, 27.0),
        sky_brightness=(22.0, 21.0, 20.3),
        exposure_time=(600.0, 600.0, 1200.0),
        num_exposures=1,
        read_noise=4.5,
        reference_band=1,
        lens_fraction=0.06,
        lens_light_colors=((1.0, 1.6), (0.0, 0.0), (-0.6, -0.3)),
        source_colors=((0.0, 0.5), (0.0, 0.0), (-0.3, 0.0)),
    ),
}


# DeepLenseSim's fixed macro model (deeplense/lens.py): an SIE of M = 1e12 Msun at z = 0.5 lensing a
# source at z = 1 (Einstein radius from that code's mass_to_radius, which uses luminosity distances),
# e1, e2 = 0.1, 0 and shear gamma1, gamma2 = 0.05, 0; the source is a Sersic with R = 0.25", n = 1 and
# e1, e2 = -0.1, 0.1 whose centre alone varies. Ellipticities in lenstronomy's (e1, e2) convention are
# given here as q = (1 - |e|) / (1 + |e|) and phi = atan2(e2, e1) / 2. Our pixel rows run from the top
# (largest y) while lenstronomy's run from the bottom, so the arrays equal DeepLenseSim's when the
# scene is mirrored in y: only the source's position angle changes sign (phi -> pi - phi).
DEEPLENSE_THETA_E = 1.2815  # arcsec
DEEPLENSE_LENS_Q = 0.9 / 1.1
DEEPLENSE_SOURCE_Q = 0.7522
DEEPLENSE_SOURCE_PHI = math.pi - 3.0 * math.pi / 8.0
# lenstronomy's z_source_convention = 2.5 rescaling of deflections for a source at z = 1 (flat LCDM,
# H0 = 67.5, Om0 = 0.309: pyHalo's default cosmology, which the code hands to SimAPI):
# (D_ds / D_s)(1.0) / (D_ds / D_s)(2.5).
DEEPLENSE_Z_CONVENTION_SCALE = 0.63346
# Model II and III: `simple_sim_2` returns image_model + image_model, i.e. the source twice as bright.
DOUBLED_MAGNITUDE_SHIFT = 2.5 * math.log10(2.0)

DEEPLENSE_REPLICA = {
    "theta_e_range": (DEEPLENSE_THETA_E, DEEPLENSE_THETA_E),
    "q_range": (DEEPLENSE_LENS_Q, DEEPLENSE_LENS_Q),
    "phi_range": (0.0, 0.0),
    "shear_range": (0.05, 0.05),
    "shear_angle_range": (0.0, 0.0),
    "source_r_eff_range": (0.25, 0.25),
    "source_n_range": (1.0, 1.0),
    "source_q_range": (DEEPLENSE_SOURCE_Q, DEEPLENSE_SOURCE_Q),
    "source_phi_range": (DEEPLENSE_SOURCE_PHI, DEEPLENSE_SOURCE_PHI),
    "source_center_range": (-0.35, 0.35),
    "n_subhalos": 25,
    "subhalo_mass_slope": -0.9,
    "vortex_point_masses": 100,
    "compensate_substructure_mass": False,
    "psf_truncation": 5.0,
}

# Overrides that spread the replica's macro model (ring radius 0.70-1.41", small ellipticity, angle and
# shear spreads), so that one checkpoint serves DeepLense files made with either lenstronomy
# behaviour: ``get_preset("deeplense_model_ii", **MACRO_SPREAD)``.
MACRO_SPREAD = {
    "deflection_scale_range": (0.55, 1.1),
    "q_range": (0.75, 0.9),
    "phi_range": (-0.3, 0.3),
    "shear_range": (0.03, 0.07),
    "shear_angle_range": (-0.3, 0.3),
}


def _simple_sim_2_replica(name: str, **fields) -> SimulationConfig:
    """A replica of DeepLenseSim's ``simple_sim_2`` pipeline (Models II and III): the source doubled,
    deflections rescaled, no noise; ``fields`` set the instrument or replace replica fields."""
    return SimulationConfig(
        name=name,
        source_magnitude_range=(20.0 - DOUBLED_MAGNITUDE_SHIFT,) * 2,
        add_noise=False,
        deflection_scale_range=(DEEPLENSE_Z_CONVENTION_SCALE,) * 2,
        **{**DEEPLENSE_REPLICA, **fields},
    )


PRESETS.update(
    {
        # DeepLenseSim Model I (`simple_sim`): Model I's instrument with the PSF cut at 3 sigma, no deflection
        # rescaling (a plain LensModel), source amp = 20 (magnitude 22.06 at zero point 25), that code's
        # noise: images in counts.
        "deeplense_model_i": SimulationConfig(
            name="deeplense_model_i",
            bands=("model_i",),
            source_magnitude_range=(22.0631, 22.0631),
            noise_model="deeplense_model_i",
            **{**MODEL_I_INSTRUMENT, **DEEPLENSE_REPLICA, "psf_truncation": 3.0},
        ),
        # DeepLenseSim Model II (`simple_sim_2`, lenstronomy 1.14's Euclid VIS): 64 px of 0.101", Gaussian
        # PSF 0.16", source magnitude 20 at zero point 25.72 (older lenstronomy: 24.0, a constant factor
        # of 4.9 in flux).
        "deeplense_model_ii": _simple_sim_2_replica("deeplense_model_ii", zero_point=(25.72,)),
        # The Model II replica with the ring-size shortcut controlled: the same substructure (25 CDM point
        # masses with slope -0.9, the 100-point vortex, the same deflection rescaling) and instrument, but
        # a randomised macro model (Einstein radius, ellipticity, orientation, shear, source shape) and
        # compensated substructure mass, so that only the substructure itself tells the classes apart.
        "deeplense_model_ii_controlled": _simple_sim_2_replica(
            "deeplense_model_ii_controlled",
            zero_point=(25.72,),
            theta_e_range=(1.1, 1.45),
            q_range=(0.7, 1.0),
            phi_range=(0.0, math.pi),
            shear_range=(0.0, 0.1),
            shear_angle_range=(0.0, math.pi),
            source_r_eff_range=(0.2, 0.3),
            source_n_range=(0.8, 1.5),
            source_q_range=(0.6, 1.0),
            source_phi_range=(0.0, math.pi),
            compensate_substructure_mass=True,
        ),
        # DeepLenseSim Model III: its scripts call set_instrument("hst"), which sets nothing in
        # deeplense/lens.py, so the published code cannot say which instrument made the files. This
        # replica keeps Model II's pipeline (`simple_sim_2`: doubled, noiseless, rescaled) on the HST
        # WFC3 F160W grid of the Model III description: 64 px of 0.08", PSF 0.08", zero point 25.96.
        "deeplense_model_iii": _simple_sim_2_replica(
            "deeplense_model_iii", pixel_scale=0.08, bands=("F160W",), psf_fwhm=(0.08,), zero_point=(25.96,)
        ),
    }
)


def get_preset(name: str, **overrides) -> SimulationConfig:
    """A preset with some fields replaced: ``get_preset("model_ii", image_size=32, add_noise=False)``.

    Raises:
        KeyError: unknown preset name.
        TypeError: an override that is not a ``SimulationConfig`` field (the message names it).
        ValueError: an override that fails validation (the message names the field).
    """
    if name not in PRESETS:
        raise KeyError(f"unknown simulation preset {name!r}; available: {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(SimulationConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        hints = {k: difflib.get_close_matches(k, fields, n=1) for k in unknown}
        described = ", ".join(
            f"{k!r}" + (f" (did you mean {hints[k][0]!r}?)" if hints[k] else "") for k in unknown
        )
        raise TypeError(f"unknown SimulationConfig field(s) {described} for preset {name!r}")
    return dataclasses.replace(PRESETS[name], **overrides)
