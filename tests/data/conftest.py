"""Tiny copies of every DeepLense folder layout (DATA_FORMATS.md), built per test."""

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path_factory, monkeypatch):
    """Keep the Arrow files `load_dataset` prepares out of the user's cache."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf_datasets_cache"))


def save_object(path: Path, image: np.ndarray, mass: float) -> None:
    """An axion file as DeepLense stores it: object array `[image, mass]`."""
    array = np.empty(2, dtype=object)
    array[0], array[1] = image, mass
    np.save(path, array, allow_pickle=True)


def _images(rng, count, shape, dtype=np.float64):
    return [rng.random(shape).astype(dtype) for _ in range(count)]


def build_model_i(root: Path, rng, per_class=4, per_class_test=2, size=150, with_test=True) -> Path:
    """Model_I/{no_sub,cdm,axion} (+ Model_I_test): 2-D images, axion as [image, mass] objects."""
    for folder, count in (("Model_I", per_class), ("Model_I_test", per_class_test if with_test else 0)):
        if not count:
            continue
        for name in ("no_sub", "cdm", "axion"):
            (root / folder / name).mkdir(parents=True)
            for i, image in enumerate(_images(rng, count, (size, size))):
                path = root / folder / name / f"{name}_sim_{i}.npy"
                if name == "axion":
                    save_object(path, image, 10.0 ** rng.uniform(-24, -22))
                else:
                    np.save(path, image)
    return root


def build_model_iv(root: Path, rng) -> Path:
    for split, count in (("train", 3), ("val", 2)):
        for name in ("no", "cdm", "axion"):
            (root / split / name).mkdir(parents=True)
            for i, image in enumerate(_images(rng, count, (64, 64, 3), np.float32)):
                np.save(root / split / name / f"{i}.npy", image)
    return root


def build_common_test_i(root: Path, rng) -> Path:
    for split, count in (("train", 3), ("val", 1)):
        for name in ("no", "sphere", "vort"):
            (root / "dataset" / split / name).mkdir(parents=True)
            for i, image in enumerate(_images(rng, count, (1, 150, 150))):
                np.save(root / "dataset" / split / name / f"{i}.npy", image)
    return root


def build_lens_finding(root: Path, rng) -> Path:
    for folder, count in (
        ("train_lenses", 2),
        ("train_nonlenses", 6),
        ("test_lenses", 1),
        ("test_nonlenses", 3),
    ):
        (root / folder).mkdir(parents=True)
        for i, image in enumerate(_images(rng, count, (3, 64, 64), np.float32)):
            np.save(root / folder / f"{folder}_{i}.npy", image)
    return root


def build_real_lens_ssl(root: Path, rng) -> Path:
    for folder, count in (("lenses", 5), ("nonlenses", 5)):
        (root / folder).mkdir(parents=True)
        for i, image in enumerate(_images(rng, count, (3, 32, 32), np.float32)):
            np.save(root / folder / f"{i}.npy", image)
    return root


def build_regression(root: Path, rng) -> Path:
    (root / "lens_data").mkdir(parents=True)
    for i, image in enumerate(_images(rng, 10, (150, 150))):
        save_object(root / "lens_data" / f"lens_{i}.npy", image, 10.0 ** rng.uniform(-24, -22))
    return root


def build_flat_array(root: Path, rng) -> Path:
    root.mkdir(parents=True)
    rows = np.concatenate([rng.random((9, 4096)), (np.arange(9) % 3)[:, None]], axis=1)
    np.save(root / "batch.npy", rows)
    for i in range(3):
        np.save(root / f"single_{i}.npy", np.append(rng.random(4096), i))
    return root


BUILDERS = {
    "model_i_iii": build_model_i,
    "model_iv": build_model_iv,
    "common_test_i": build_common_test_i,
    "lens_finding": build_lens_finding,
    "real_lens_ssl": build_real_lens_ssl,
    "regression": build_regression,
    "flat_array": build_flat_array,
}


@pytest.fixture
def build_layout():
    """`build_layout(name, root, seed=0)` writes a tiny folder of layout `name` under `root`."""

    def build(name: str, root: Path, seed: int = 0) -> Path:
        return BUILDERS[name](root, np.random.default_rng(seed))

    return build


@pytest.fixture
def save_object_array():
    return save_object
