import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from hf_deeplense.data.selection import (
    label_fraction_indices,
    label_fraction_subset,
    stratified_sample_indices,
)


def test_stratified_counts_and_nesting():
    labels = np.repeat([0, 1, 2], [100, 50, 10])
    small = label_fraction_indices(labels, 0.1, seed=3)
    large = label_fraction_indices(labels, 0.5, seed=3)
    np.testing.assert_array_equal(np.bincount(labels[small]), [10, 5, 1])
    np.testing.assert_array_equal(np.bincount(labels[large]), [50, 25, 5])
    assert set(small) <= set(large)
    assert np.all(np.diff(small) > 0)


def test_seed_changes_the_subset_and_is_reproducible():
    labels = np.repeat([0, 1], 200)
    first = label_fraction_indices(labels, 0.2, seed=0)
    np.testing.assert_array_equal(first, label_fraction_indices(labels, 0.2, seed=0))
    assert not np.array_equal(first, label_fraction_indices(labels, 0.2, seed=1))


def test_every_class_keeps_one_row_and_fraction_is_checked():
    labels = np.array([0] * 100 + [1])
    assert np.bincount(labels[label_fraction_indices(labels, 0.01, seed=0)]).tolist() == [1, 1]
    with pytest.raises(ValueError, match="fraction"):
        label_fraction_indices(labels, 0.0, seed=0)


def test_dataset_subset():
    features = Features({"x": Value("float32"), "label": ClassLabel(names=["a", "b"])})
    dataset = Dataset.from_dict({"x": np.arange(40.0), "label": [0] * 30 + [1] * 10}, features=features)
    subset = label_fraction_subset(dataset, 0.5, seed=0)
    assert len(subset) == 20
    assert sorted(np.bincount(subset["label"]).tolist()) == [5, 15]
    assert label_fraction_subset(dataset, 1.0, seed=0) is dataset
    with pytest.raises(ValueError, match="label column"):
        label_fraction_subset(dataset, 0.5, seed=0, label_column="target")


def test_stratified_sample_indices_exact_size():
    labels = np.repeat([0, 1, 2], [10, 10, 5])
    indices = stratified_sample_indices(labels, 9, seed=0)
    assert len(indices) == 9
    counts = np.bincount(labels[indices], minlength=3)
    assert counts.tolist() in ([4, 4, 1], [4, 3, 2], [3, 4, 2])  # proportional 3.6 / 3.6 / 1.8
    assert stratified_sample_indices(labels, 100, seed=0).tolist() == list(range(25))
