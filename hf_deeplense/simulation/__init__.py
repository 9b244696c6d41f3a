"""Batched PyTorch simulation of strong-lensing images (DeepLense classes and lens finding).

Pure functions in :mod:`.profiles` (deflections), :mod:`.light` (surface brightness) and
:mod:`.instrument` (grid, PSF, noise); presets in :mod:`.presets`; the batch simulators in
:mod:`.simulator` and :mod:`.lens_finding`, sharing :mod:`.draws`. Imports torch and numpy only.
"""

from .lens_finding import simulate_lens_finding_batch
from .presets import (
    LENS_FINDING_CLASSES,
    MACRO_SPREAD,
    PRESETS,
    SUBSTRUCTURE_CLASSES,
    SimulationConfig,
    get_preset,
)
from .simulator import Substructure, draw_lens_parameters, lens_deflection, simulate_batch

__all__ = [
    "LENS_FINDING_CLASSES",
    "MACRO_SPREAD",
    "PRESETS",
    "SUBSTRUCTURE_CLASSES",
    "SimulationConfig",
    "get_preset",
    "Substructure",
    "draw_lens_parameters",
    "lens_deflection",
    "simulate_batch",
    "simulate_lens_finding_batch",
]
