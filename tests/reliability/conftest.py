"""Fixtures of the reliability tests: a recipe's `main` run in-process and tiny hand-written datasets."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hf_deeplense.data.card import write_dataset_card
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


@pytest.fixture(scope="session", autouse=True)
def datasets_cache(tmp_path_factory):
    """Keep the Arrow files `load_dataset` prepares out of the user's cache (session-wide: module fixtures
    run recipes too)."""
    import datasets.config

    saved = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("hf_datasets_cache")
    yield
    datasets.config.HF_DATASETS_CACHE = saved


@pytest.fixture
def make_dataset(tmp_path) -> Callable[..., Path]:
    """`make_dataset(name, image_size=16, nan_row=None)`: a 12/6/6-row dataset folder with a card; with
    `nan_row`, that row of every split has one NaN pixel."""

    def make(name: str, image_size: int = 16, nan_row: int | None = None) -> Path:
        out_dir = tmp_path / name
        rng = np.random.default_rng(0)
        for split, num_rows in SPLIT_SIZES.items():
            pixel_values = rng.random((num_rows, 1, image_size, image_size), dtype=np.float32)
            if nan_row is not None:
                pixel_values[nan_row, 0, 2, 3] = np.nan
            write_split_arrays(out_dir, split, pixel_values)
        write_dataset_card(out_dir, title=name)
        return out_dir

    return make
