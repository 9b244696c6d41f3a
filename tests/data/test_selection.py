import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from hf_deeplense.data.selection import (
    label_count_indices,
    label_count_subset,
    label_fraction_indices,
    label_fraction_subset,
    labelled_subset,
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


def test_label_count_gives_exactly_n_rows_balanced_and_nested():
    labels = np.repeat([0, 1], [940, 60])  # 6% lenses, the lens_finding preset's share
    chosen = {count: label_count_indices(labels, count, seed=4) for count in (20, 60, 120)}
    for count, indices in chosen.items():
        assert len(indices) == count and np.all(np.diff(indices) > 0)
        np.testing.assert_array_equal(np.bincount(labels[indices]), [count // 2, count // 2])
    assert set(chosen[20]) <= set(chosen[60]) <= set(chosen[120])  # one seed: nested label budgets
    np.testing.assert_array_equal(chosen[60], label_count_indices(labels, 60, seed=4))
    assert not np.array_equal(chosen[60], label_count_indices(labels, 60, seed=5))
    three_classes = np.repeat([0, 1, 2], 10)
    np.testing.assert_array_equal(
        np.bincount(three_classes[label_count_indices(three_classes, 9, 0)]), [3, 3, 3]
    )


def test_label_count_errors_name_the_problem():
    labels = np.repeat([0, 1], [940, 60])
    with pytest.raises(ValueError, match="multiple of the number of classes"):
        label_count_indices(labels, 21, seed=0)
    with pytest.raises(ValueError, match="class"):
        label_count_indices(labels, 122, seed=0)  # 61 lenses needed, 60 exist
    with pytest.raises(ValueError, match="positive"):
        label_count_indices(labels, 0, seed=0)


def test_label_count_subset_selects_the_rows():
    features = Features({"label": ClassLabel(names=["non_lens", "lens"]), "index": Value("int64")})
    labels = [0] * 30 + [1] * 10
    dataset = Dataset.from_dict({"label": labels, "index": list(range(40))}, features=features)
    subset = label_count_subset(dataset, 12, seed=1)
    assert subset.num_rows == 12 and sorted(subset["label"]) == [0] * 6 + [1] * 6
    assert subset["index"] == sorted(label_count_indices(np.array(labels), 12, seed=1).tolist())


def test_labelled_subset_is_the_fraction_then_the_balanced_count():
    features = Features({"label": ClassLabel(names=["non_lens", "lens"]), "index": Value("int64")})
    labels = [0] * 60 + [1] * 20
    dataset = Dataset.from_dict({"label": labels, "index": list(range(80))}, features=features)
    fraction = label_fraction_subset(dataset, 0.5, seed=2)  # 30 + 10 rows
    assert labelled_subset(dataset, 0.5, seed=2)["index"] == fraction["index"]
    both = labelled_subset(dataset, 0.5, seed=2, count=12)
    assert both["index"] == label_count_subset(fraction, 12, seed=2)["index"]
    assert sorted(both["label"]) == [0] * 6 + [1] * 6 and set(both["index"]) <= set(fraction["index"])
    with pytest.raises(ValueError, match="label column 'target'"):
        labelled_subset(dataset, 1.0, seed=0, count=4, label_column="target")
