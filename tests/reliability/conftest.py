"""Fixtures of the reliability tests: a private datasets cache and tiny hand-written datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import SPLIT_SIZES, write_split_arrays

from hf_deeplense.data.card import write_dataset_card


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
