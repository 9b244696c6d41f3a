"""Batched PyTorch simulation of strong-lensing images (DeepLense classes and lens finding).

Pure functions in :mod:`.profiles` (deflections), :mod:`.light` (surface brightness) and
:mod:`.instrument` (grid, PSF, noise); presets in :mod:`.presets`; the batch simulators in
:mod:`.simulator`. Imports torch and numpy only.
"""

from .presets import LENS_FINDING_CLASSES, PRESETS, SUBSTRUCTURE_CLASSES, SimulationConfig, get_preset
from .simulator import lens_deflection, simulate_batch, simulate_lens_finding_batch

__all__ = [
    "LENS_FINDING_CLASSES",
    "PRESETS",
    "SUBSTRUCTURE_CLASSES",
    "SimulationConfig",
    "get_preset",
    "lens_deflection",
    "simulate_batch",
    "simulate_lens_finding_batch",
]
