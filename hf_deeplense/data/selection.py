"""Selecting rows of a labelled `datasets.Dataset`: classes, finite regression targets, stratified, label-fraction
and label-count subsets (seeded), and the statistics of a target column."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasets import Dataset

__all__ = [
    "class_names_of",
    "finite_target_rows",
    "keep_classes",
    "label_count_indices",
    "label_count_subset",
    "label_fraction_indices",
    "label_fraction_subset",
    "labelled_subset",
    "stratified_head",
    "stratified_sample_indices",
    "target_statistics",
]


def class_names_of(dataset: Dataset) -> list[str]:
    """Class names of the `label` ClassLabel column."""
    label = dataset.features.get("label")
    if label is None or not hasattr(label, "names"):
        raise ValueError(f"the dataset has no ClassLabel 'label' column (columns: {dataset.column_names})")
    return list(label.names)


def _labels(dataset: Dataset, column: str = "label") -> np.ndarray:
    return dataset.select_columns([column]).with_format("numpy")[:][column]


def stratified_head(dataset: Dataset, max_samples: int | None, seed: int = 0) -> Dataset:
    """At most `max_samples` rows, stratified by `label` (rows stay in order)."""
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    return dataset.select(stratified_sample_indices(_labels(dataset), max_samples, seed))


def keep_classes(dataset: Dataset, names: Sequence[str]) -> Dataset:
    """Rows whose class is one of `names` (labels keep their ids in the full class list)."""
    all_names = class_names_of(dataset)
    unknown = [name for name in names if name not in all_names]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}; the dataset has {all_names}")
    keep = np.isin(_labels(dataset), [all_names.index(name) for name in names])
    return dataset.select(np.flatnonzero(keep))


def finite_target_rows(dataset: Dataset, column: str) -> Dataset:
    """Rows with a finite regression target (e.g. `log10_m_a` exists for axion images only)."""
    if column not in dataset.column_names:
        raise ValueError(f"target column {column!r} not in the dataset's columns {dataset.column_names}")
    values = _labels(dataset, column)
    return dataset.select(np.flatnonzero(np.isfinite(values)))


def target_statistics(dataset: Dataset, column: str) -> tuple[float, float]:
    """Mean and standard deviation of a regression target (finite values)."""
    values = _labels(dataset, column).astype(np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ValueError(f"no finite value in column {column!r}")
    return float(values.mean()), float(max(values.std(), 1e-6))


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
    return dataset.select(label_fraction_indices(_label_values(dataset, label_column), fraction, seed))


def _label_values(dataset: Dataset, label_column: str) -> np.ndarray:
    """The label column as one numpy array (a clear error when the dataset has none)."""
    if label_column not in dataset.column_names:
        raise ValueError(f"label column {label_column!r} not in the dataset's columns {dataset.column_names}")
    return dataset.select_columns([label_column]).with_format("numpy")[:][label_column]


def label_count_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Sorted indices of exactly `count` rows, `count / n_classes` of each class (balanced, whatever the classes'
    shares of `labels`).

    Each class is shuffled once with `seed` and its first rows are kept, so for one seed a smaller count is a
    subset of a larger one (nested label-efficiency curves, as with `label_fraction_indices`).

    Raises:
        ValueError: if `count` is not a positive multiple of the number of classes, or a class has fewer rows
            than its share.
    """
    labels = np.asarray(labels).reshape(-1)
    classes, counts = np.unique(labels, return_counts=True)
    if count < 1 or len(classes) == 0 or count % len(classes):
        raise ValueError(
            f"label count must be a positive multiple of the number of classes ({len(classes)}), got {count}"
        )
    per_class = count // len(classes)
    if (short := classes[counts < per_class]).size:
        raise ValueError(
            f"{count} balanced labels need {per_class} rows of each class; class(es) {short.tolist()} have "
            f"{counts[counts < per_class].tolist()}"
        )
    rng = np.random.default_rng(seed)
    keep = []
    for label in classes:
        members = np.flatnonzero(labels == label)
        keep.append(members[rng.permutation(len(members))][:per_class])
    return np.sort(np.concatenate(keep))


def label_count_subset(dataset: Dataset, count: int, seed: int, label_column: str = "label") -> Dataset:
    """`dataset.select(...)` of `count` rows balanced over the classes (`label_count_indices`)."""
    return dataset.select(label_count_indices(_label_values(dataset, label_column), count, seed))


def labelled_subset(
    dataset: Dataset, fraction: float, seed: int, count: int | None = None, label_column: str = "label"
) -> Dataset:
    """The labelled rows a run trains on: the stratified `fraction` (`label_fraction_subset`), then, with a
    `count`, that many of them balanced over the classes (`label_count_subset`); both seeded by `seed`."""
    subset = label_fraction_subset(dataset, fraction, seed, label_column)
    return subset if count is None else label_count_subset(subset, count, seed, label_column)
