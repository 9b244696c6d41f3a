"""Helpers of the reliability tests: a recipe's `main` imported in-process, tiny hand-written dataset shards."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from hf_deeplense.data.writer import lensing_features, write_split

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
CLASS_NAMES = ["no_sub", "cdm", "axion"]
SPLIT_SIZES = {"train": 12, "validation": 6, "test": 6}


def load_recipe(name: str):
    """Import `recipes/<name>.py` (recipes are scripts, not a package) and return the module."""
    module_name = f"_reliability_recipe_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, RECIPES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def write_split_arrays(out_dir: Path, split: str, pixel_values: np.ndarray, overwrite: bool = False) -> None:
    """One shard of `pixel_values (N, C, H, W)` with labels 0, 1, 2, 0, ... in the on-disk format."""
    features = lensing_features(CLASS_NAMES, image_shape=pixel_values.shape[1:])
    labels = np.arange(len(pixel_values)) % len(CLASS_NAMES)
    write_split(
        out_dir,
        split,
        1,
        lambda _: {"pixel_values": pixel_values, "label": labels},
        features,
        overwrite=overwrite,
        progress=False,
    )
