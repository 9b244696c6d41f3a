"""Shared fixture of the recipe smoke tests: one tiny built dataset (per xdist worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_deeplense.data.build import build_simulated_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Model II-like 16x16 images, 20 per class (train 48, validation 6, test 6 rows)."""
    return build_simulated_dataset(
        tmp_path_factory.mktemp("recipes") / "tiny_model_ii",
        "model_ii",
        n_per_class=20,
        image_size=16,
        overrides={"subhalo_mass_slope": -0.9},
        progress=False,
    )
