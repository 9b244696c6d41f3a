"""Label-efficiency subsets: a stratified, seeded fraction of a labelled split."""

from __future__ import annotations

import numpy as np
from datasets import Dataset

__all__ = ["label_fraction_indices", "label_fraction_subset", "stratified_sample_indices"]


def label_fraction_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a stratified `fraction` of `labels` (at least one per class).

    Each class is shuffled once with `seed` and its first `round(fraction * n_class)` rows are kept,
    so for one seed a smaller fraction is a subset of a larger one (nested label-efficiency curves).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        shuffled = members[rng.permutation(len(members))]
        keep.append(shuffled[: max(1, round(fraction * len(members)))])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def stratified_sample_indices(labels: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
    """Sorted indices of exactly `min(num_samples, len(labels))` rows, classes in proportion.

    Per-class quotas are `floor(num_samples * n_class / n)`, the remaining rows going to the classes
    with the largest fractional parts; each class's rows are drawn from a seeded shuffle.
    """
    labels = np.asarray(labels).reshape(-1)
    if num_samples >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = num_samples * counts / len(labels)
    quotas = np.floor(exact).astype(int)
    for position in np.argsort(-(exact - quotas), kind="stable")[: num_samples - quotas.sum()]:
        quotas[position] += 1
    rng = np.random.default_rng(seed)
    keep = []
    for label, quota in zip(classes, quotas):
        members = np.flatnonzero(labels == label)
        keep.append(members[rng.permutation(len(members))][:quota])
    return np.sort(np.concatenate(keep))


def label_fraction_subset(
    dataset: Dataset, fraction: float, seed: int, label_column: str = "label"
) -> Dataset:
    """`dataset.select(...)` of a stratified, seeded `fraction` of its rows (all rows for 1.0)."""
    if fraction == 1.0:
        return dataset
    if label_column not in dataset.column_names:
        raise ValueError(f"label column {label_column!r} not in the dataset's columns {dataset.column_names}")
    labels = dataset.select_columns([label_column]).with_format("numpy")[:][label_column]
    return dataset.select(label_fraction_indices(labels, fraction, seed))
