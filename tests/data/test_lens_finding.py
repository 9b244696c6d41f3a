"""Tests of the lens-finding data helpers: photometric meta features, leakage guard, class weights, reading a built
lens-finding dataset."""

import math

import numpy as np
import pytest
import torch

from hf_deeplense.data import load_lensing_dataset
from hf_deeplense.data.lens_finding import (
    PHOTOMETRIC_FEATURES,
    LensFindingDataset,
    balanced_class_weights,
    check_feature_leakage,
    load_lens_finding_split,
    meta_feature_columns,
    meta_feature_names,
    photometric_features,
    stack_features,
)


def red_galaxy_with_ring(ring_flux: float, size: int = 33, pixel_scale: float = 0.2) -> torch.Tensor:
    """A red core (g, r, i = 1, 2, 4 e-/s per pixel) plus a blue ring (g, r, i = 2, 1, 0.5 x ring_flux) at 1.5"."""
    coords = (torch.arange(size) - (size - 1) / 2) * pixel_scale
    radius = torch.sqrt(coords[:, None] ** 2 + coords[None, :] ** 2)
    core = torch.exp(-((radius / 0.4) ** 2))
    ring = torch.exp(-(((radius - 1.5) / 0.2) ** 2))
    red, blue = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([2.0, 1.0, 0.5])
    return red[:, None, None] * core + ring_flux * blue[:, None, None] * ring  # (3, H, W)


def test_blue_ring_makes_the_annulus_bluer():
    images = torch.stack([red_galaxy_with_ring(0.0), red_galaxy_with_ring(0.5)])
    features = photometric_features(images, pixel_scale=0.2, zero_point=27.0)
    assert list(features) == list(PHOTOMETRIC_FEATURES)
    assert all(torch.isfinite(value).all() for value in features.values())
    # core colour g - i of the red galaxy: -2.5 log10(1 / 4)
    assert features["core_color"][0].item() == pytest.approx(2.5 * math.log10(4), abs=1e-4)
    assert features["color_gradient"][1] < features["color_gradient"][0] - 0.5  # bluer outside with the ring
    assert features["blue_excess"][1] > 0.1 > abs(features["blue_excess"][0])
    assert features["annulus_fraction"][1] > features["annulus_fraction"][0]


def test_photometric_features_need_two_bands():
    with pytest.raises(ValueError, match="C >= 2"):
        photometric_features(torch.zeros(2, 1, 8, 8), pixel_scale=0.2)


def test_leakage_guard_refuses_label_like_features():
    rng = np.random.default_rng(0)
    labels = (rng.random(200) < 0.2).astype(int)
    honest = {"color": rng.normal(size=200) + labels}
    assert check_feature_leakage(honest, labels)["color"] < 0.995
    with pytest.raises(ValueError, match="n_images"):  # 0 for every non-lens, >= 1 for lenses
        check_feature_leakage({**honest, "n_images": labels * rng.integers(1, 5, 200)}, labels)
    with pytest.raises(ValueError, match="non-finite.*einstein_radius"):
        check_feature_leakage({"einstein_radius": np.where(labels == 1, 1.2, np.nan)}, labels)


def test_balanced_class_weights_and_dataset_rows():
    labels = torch.tensor([0] * 9 + [1])
    assert balanced_class_weights(labels, 2) == pytest.approx([10 / 18, 5.0])
    with pytest.raises(ValueError, match="counts"):
        balanced_class_weights(torch.zeros(4), 2)
    meta = stack_features({"b": torch.arange(10.0), "a": -torch.arange(10.0)}, ["a", "b"])
    dataset = LensFindingDataset(torch.zeros(10, 3, 4, 4), labels, meta)
    row = dataset[9]
    assert row["labels"].item() == 1 and row["meta_features"].tolist() == [-9.0, 9.0]
    assert "meta_features" not in LensFindingDataset(torch.zeros(10, 3, 4, 4), labels)[0]
    with pytest.raises(KeyError, match="c"):
        stack_features({"a": torch.zeros(3)}, ["c"])


def test_meta_feature_names_expand_photometric_in_order():
    assert meta_feature_names(["einstein_radius", "photometric", "source_flux"]) == [
        "einstein_radius",
        *PHOTOMETRIC_FEATURES,
        "source_flux",
    ]
    assert meta_feature_names([]) == []


def test_a_built_lens_finding_split_reads_as_a_simulated_one(tmp_path):
    """`load_lens_finding_split` of a built dataset gives the images, labels and meta columns the simulation wrote,
    and `meta_feature_columns` adds the photometry measured on those raw images."""
    from hf_deeplense.data.build import build_simulated_dataset
    from hf_deeplense.simulation import get_preset

    out = build_simulated_dataset(
        tmp_path / "lf", "lens_finding", n_per_class=8, image_size=24, lens_fraction=0.5, progress=False
    )
    data = load_lens_finding_split(str(out), "train")
    rows = load_lensing_dataset(str(out))["train"].with_format("numpy")
    np.testing.assert_array_equal(data["images"].numpy(), rows["pixel_values"])
    np.testing.assert_array_equal(data["labels"].numpy(), rows["label"])
    assert set(data["meta"]) == set(rows.column_names) - {"pixel_values", "label", "source_file"}
    assert data["meta"] and all(len(column) == len(rows) for column in data["meta"].values())

    pixel_scale = get_preset("lens_finding", image_size=24).pixel_scale
    columns = meta_feature_columns(data, ["photometric"], pixel_scale)
    expected = photometric_features(data["images"], pixel_scale)
    for name in PHOTOMETRIC_FEATURES:
        torch.testing.assert_close(columns[name], expected[name])
    assert set(meta_feature_columns(data, [], pixel_scale)) == set(data["meta"])
