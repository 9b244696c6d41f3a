"""Radial-profile shortcut baseline: separates ring sizes, not angular structure."""

import math

import numpy as np
import pytest
import torch

from hf_deeplense.evaluation.baselines import (
    radial_profile,
    radial_profile_baseline,
    radial_profile_baseline_on_dataset,
)


def ring_images(n, radius_range, lumps, seed, size=32):
    """Noisy Gaussian rings of random radius; `lumps` modulates the ring by 1 + 0.9 cos(3 (angle - phase)),
    which keeps every azimuthal mean: only the angular structure differs."""
    rng = np.random.default_rng(seed)
    offsets = np.arange(size) - (size - 1) / 2
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    r, angle = np.hypot(x, y), np.arctan2(y, x)
    images = []
    for _ in range(n):
        radius = rng.uniform(*radius_range)
        image = np.exp(-0.5 * ((r - radius) / 1.5) ** 2)
        if lumps:
            image *= 1 + 0.9 * np.cos(3 * (angle - rng.uniform(0, 2 * math.pi)))
        images.append(image + rng.normal(0, 0.05, image.shape))
    return np.stack(images).astype(np.float32)


def test_radial_profile_of_known_images():
    size = 20
    offsets = np.arange(size) - (size - 1) / 2
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    r = np.hypot(x, y)
    images = np.stack([np.ones((size, size)), r]).astype(np.float32)
    profile = radial_profile(torch.from_numpy(images[:, None]), n_bins=5)
    assert profile.shape == (2, 1, 5)
    np.testing.assert_allclose(profile[0, 0], 1.0)
    assert np.all(np.diff(profile[1, 0]) > 0)  # increasing with radius
    np.testing.assert_allclose(profile[1, 0], [1.0, 3.0, 5.0, 7.0, 9.0], atol=0.4)  # ring centres
    assert radial_profile(images, 5).shape == (2, 1, 5)  # (N, H, W) numpy input


def test_baseline_separates_classes_that_differ_in_ring_radius():
    train = np.concatenate([ring_images(150, (5, 7), False, 0), ring_images(150, (8, 10), False, 1)])
    test = np.concatenate([ring_images(100, (5, 7), False, 2), ring_images(100, (8, 10), False, 3)])
    labels_train, labels_test = np.repeat([0, 1], 150), np.repeat([0, 1], 100)
    result = radial_profile_baseline(train, labels_train, test, labels_test)
    assert result["accuracy"] > 0.95 and result["macro_auc"] > 0.98


def test_baseline_does_not_separate_classes_that_differ_only_in_angular_structure():
    train = np.concatenate([ring_images(150, (5, 9), False, 0), ring_images(150, (5, 9), True, 1)])
    test = np.concatenate([ring_images(150, (5, 9), False, 2), ring_images(150, (5, 9), True, 3)])
    labels_train, labels_test = np.repeat([0, 1], 150), np.repeat([0, 1], 150)
    result = radial_profile_baseline(train, labels_train, test, labels_test, class_names=["smooth", "lumpy"])
    assert result["macro_auc"] < 0.65 and result["accuracy"] < 0.65
    assert set(result) >= {"accuracy", "macro_auc", "auc_smooth", "auc_lumpy"}


def test_three_classes_and_errors():
    images = np.concatenate([ring_images(40, (4, 5), False, s) for s in range(3)])
    images[40:80] *= 2.0
    images[80:] *= 4.0
    labels = np.repeat([0, 1, 2], 40)
    result = radial_profile_baseline(images, labels, images, labels)
    assert result["macro_auc"] > 0.9
    with pytest.raises(ValueError, match="images must be"):
        radial_profile(np.zeros((2, 3, 4, 5, 6)))


def test_baseline_on_a_dataset_sees_what_the_image_processor_gives_the_model():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    from hf_deeplense import LensImageProcessor

    # two classes that differ only in brightness: the raw profile separates them, a per-image
    # min-max normalised one cannot
    def split(n, seed):
        rings = ring_images(2 * n, (6, 9), False, seed)
        labels = np.repeat([0, 1], n)
        images = rings * np.where(labels == 1, 3.0, 1.0)[:, None, None]
        return Dataset.from_dict(
            {"pixel_values": images[:, None].tolist(), "label": labels.tolist()},
            features=Features(
                {
                    "pixel_values": Sequence(Sequence(Sequence(Value("float32")))),
                    "label": ClassLabel(names=["dim", "bright"]),
                }
            ),
        )

    dataset = DatasetDict({"train": split(80, 0), "test": split(60, 1)})
    raw = radial_profile_baseline_on_dataset(dataset)
    assert raw["macro_auc"] > 0.98 and {"auc_dim", "auc_bright"} <= set(raw)
    processor = LensImageProcessor(size=16, normalization="minmax")
    seen = radial_profile_baseline_on_dataset(dataset, image_processor=processor)
    assert seen["macro_auc"] < 0.7

    # fitted on one dataset, scored on another with the same classes
    other = DatasetDict({"test": split(40, 2)})
    crossed = radial_profile_baseline_on_dataset(dataset, test_dataset=other)
    assert crossed["macro_auc"] > 0.98
    renamed = DatasetDict({"test": other["test"].cast_column("label", ClassLabel(names=["a", "b"]))})
    with pytest.raises(ValueError, match="differ"):
        radial_profile_baseline_on_dataset(dataset, test_dataset=renamed)
