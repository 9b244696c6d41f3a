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
    """Model_IV/{train,val}/{no_sub,cdm,axion} as the DeepLense notebooks read it: `np.load(f)[0]` is the
    image, so no_sub/cdm files are (1, 64, 64) and axion files are [image (64, 64), mass] objects."""
    for split, count in (("train", 3), ("val", 2)):
        for name in ("no_sub", "cdm", "axion"):
            (root / "Model_IV" / split / name).mkdir(parents=True)
            for i in range(count):
                path = root / "Model_IV" / split / name / f"{name}_{i}.npy"
                if name == "axion":
                    save_object(path, rng.random((64, 64)), 10.0 ** rng.uniform(-24, -22))
                else:
                    np.save(path, rng.random((1, 64, 64)))
    return root


def build_model_iv_channels_last(root: Path, rng) -> Path:
    """The older Model IV variant: train/{no,cdm,axion}, (64, 64, 3) channels-last."""
    for split, count in (("train", 3), ("val", 2)):
        for name in ("no", "cdm", "axion"):
            (root / split / name).mkdir(parents=True)
            for i, image in enumerate(_images(rng, count, (64, 64, 3), np.float32)):
                np.save(root / split / name / f"{i}.npy", image)
    return root


def build_binary_substructure(root: Path, rng) -> Path:
    """{no_sub,sub}/: the binary substructure test, 8-bit grey (150, 150) PNGs as its notebook reads them
    (`np.asarray(Image.open(f))`)."""
    from PIL import Image

    for name in ("no_sub", "sub"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray((rng.random((150, 150)) * 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def build_hsc(root: Path, rng) -> Path:
    """hsc/ (non-lenses) and hsc_lens_candidates/ (lenses): HSC cut-outs, (64, 64)."""
    for folder, count in (("hsc", 6), ("hsc_lens_candidates", 2)):
        (root / folder).mkdir(parents=True)
        for i, image in enumerate(_images(rng, count, (64, 64), np.float32)):
            np.save(root / folder / f"{i}.npy", image)
    return root


def build_stacked(root: Path, rng) -> Path:
    """Domain-adaptation arrays: f_{train,test}_data*.npy (N, 1, 150, 150) + f_*_labels*.npy (N, 1)."""
    root.mkdir(parents=True)
    for stem, count in (("f_train_{}_zoom-rotation", 9), ("f_test_{}", 6)):
        np.save(root / f"{stem.format('data')}.npy", rng.random((count, 1, 150, 150)).astype(np.float32))
        np.save(root / f"{stem.format('labels')}.npy", (np.arange(count) % 3).astype(np.float64)[:, None])
    return root


def build_npz(root: Path, rng, count: int = 10) -> Path:
    """A multi-target regression cache: data (N, 4, 91, 91), targets (N, 4), redshifts (N, 2), extras."""
    root.mkdir(parents=True)
    np.savez(
        root / "dataset_4task_log10_10samples.npz",
        data=rng.standard_normal((count, 4, 91, 91)).astype(np.float32),
        targets=rng.standard_normal((count, 4)),
        redshifts=rng.uniform(0.1, 3.0, (count, 2)),
        loaded_uids=np.arange(count),
        target_scaler_params=np.ones((2, 4)),
    )
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
    "model_iv_channels_last": build_model_iv_channels_last,
    "binary_substructure": build_binary_substructure,
    "hsc": build_hsc,
    "stacked": build_stacked,
    "npz": build_npz,
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
