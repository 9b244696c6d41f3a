"""Shortcut checks: how much of a classification task a radial profile alone solves.

Substructure classes must differ in small-scale, non-axisymmetric structure. If a classifier that
sees only the azimuthally averaged profile of each image (ring radius, ring width, total flux)
separates the classes, a network can learn that shortcut instead (e.g. a ring enlarged by the
substructure mass). Dataset cards report :func:`radial_profile_baseline`; on a well-built set its
macro AUC stays near 0.5.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .metrics import classification_metrics

__all__ = ["radial_profile", "radial_profile_baseline", "radial_profile_baseline_on_dataset"]


def radial_profile(images: np.ndarray | torch.Tensor, n_bins: int = 16) -> np.ndarray:
    """Azimuthally averaged profile of each image about its centre, batched.

    Bins are ``n_bins`` equal rings in radius from the centre (between pixels for even sizes) to the
    inscribed circle (half the smaller side); corner pixels are left out.

    Args:
        images: ``(N, H, W)`` or ``(N, C, H, W)``.
        n_bins: number of radial bins.

    Returns:
        float64 ``(N, C, n_bins)`` (``C = 1`` for ``(N, H, W)`` input): mean pixel value per ring.
    """
    images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {tuple(images.shape)}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    batch, channels, height, width = images.shape
    rows = torch.arange(height, dtype=torch.float64) - (height - 1) / 2
    cols = torch.arange(width, dtype=torch.float64) - (width - 1) / 2
    radius = torch.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2).reshape(-1)
    outer = min(height, width) / 2
    bins = torch.floor(radius / outer * n_bins).long()
    inside = bins < n_bins
    weights = torch.zeros(height * width, n_bins, dtype=torch.float64)
    weights[inside.nonzero().squeeze(1), bins[inside]] = 1.0
    weights /= weights.sum(dim=0, keepdim=True).clamp(min=1.0)  # mean per ring
    flat = images.to(torch.float64).reshape(batch * channels, height * width)
    return (flat @ weights).reshape(batch, channels, n_bins).numpy()


def radial_profile_baseline(
    train_images: np.ndarray | torch.Tensor,
    train_labels: np.ndarray | torch.Tensor,
    test_images: np.ndarray | torch.Tensor,
    test_labels: np.ndarray | torch.Tensor,
    n_bins: int = 16,
    class_names: list[str] | None = None,
) -> dict[str, float]:
    """Train a logistic regression on radial profiles only and score it on the test images.

    Args:
        train_images, test_images: ``(N, H, W)`` or ``(N, C, H, W)``.
        train_labels, test_labels: integer class ids ``(N,)``.
        n_bins: radial bins per channel (the features, standardised).
        class_names: names for the per-class AUC keys.

    Returns:
        ``{"accuracy", "macro_auc", "auc_<class>"...}`` on the test set (chance: AUC 0.5).
    """
    train_labels = np.asarray(train_labels).astype(np.int64).reshape(-1)
    test_labels = np.asarray(test_labels).astype(np.int64).reshape(-1)
    train_features = radial_profile(train_images, n_bins).reshape(len(train_labels), -1)
    test_features = radial_profile(test_images, n_bins).reshape(len(test_labels), -1)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(train_features, train_labels)
    probabilities = np.zeros((len(test_labels), int(max(train_labels.max(), test_labels.max())) + 1))
    probabilities[:, classifier.classes_] = classifier.predict_proba(test_features)
    logits = np.log(np.clip(probabilities, 1e-12, None))
    metrics = classification_metrics(logits, test_labels, class_names)
    metrics["macro_auc"] = metrics.pop("auc_macro")
    return metrics


def radial_profile_baseline_on_dataset(
    dataset,
    image_processor=None,
    train_split: str = "train",
    test_split: str = "test",
    max_images: int | None = None,
    n_bins: int = 16,
    test_dataset=None,
    label_fraction: float = 1.0,
    seed: int = 0,
    label_count: int | None = None,
) -> dict[str, float]:
    """:func:`radial_profile_baseline` from one split of a lensing dataset to another (or to another dataset).

    Args:
        dataset: a ``DatasetDict`` (e.g. from :func:`hf_deeplense.data.load_lensing_dataset`) or its
            folder / Hub id, with ``pixel_values`` and ``label`` columns.
        image_processor: when given (e.g. a model's :class:`~hf_deeplense.LensImageProcessor`), the
            profiles are taken of the processed images, i.e. of what that model sees (resized,
            normalised per image); otherwise of the stored pixel values.
        train_split, test_split: the splits the regression is fitted on and scored on.
        max_images: at most this many images of each split (the first ones); None: every image.
        n_bins: radial bins per channel.
        test_dataset: score on ``test_split`` of this dataset (same classes) instead, e.g. images made by
            another simulation code.
        label_fraction, seed: fit on the stratified, seeded fraction of the training labels that
            ``finetune`` trains on with the same ``label_fraction`` and ``seed`` (before ``max_images``).
        label_count: then keep this many training labels, balanced over the classes (``finetune``'s
            ``label_count``).

    Returns:
        As :func:`radial_profile_baseline`, with per-class AUCs named after the dataset's classes.
    """
    from ..data import load_lensing_dataset
    from ..data.selection import labelled_subset

    if isinstance(dataset, (str, os.PathLike)):
        dataset = load_lensing_dataset(str(dataset))
    if isinstance(test_dataset, (str, os.PathLike)):
        test_dataset = load_lensing_dataset(str(test_dataset))
    class_names = dataset[train_split].features["label"].names
    if test_dataset is not None and test_dataset[test_split].features["label"].names != class_names:
        raise ValueError(
            f"test_dataset classes {test_dataset[test_split].features['label'].names} differ from {class_names}"
        )

    def images_and_labels(
        source, split: str, fraction: float = 1.0, label_count: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        subset = labelled_subset(source[split], fraction, seed, label_count)
        count = subset.num_rows if max_images is None else min(max_images, subset.num_rows)
        rows = subset.select_columns(["pixel_values", "label"]).with_format("numpy")[:count]
        images, labels = rows["pixel_values"], rows["label"]
        if image_processor is not None:
            images = image_processor(images, return_tensors="np")["pixel_values"]
        return images, labels

    train_images, train_labels = images_and_labels(dataset, train_split, label_fraction, label_count)
    test_images, test_labels = images_and_labels(
        dataset if test_dataset is None else test_dataset, test_split
    )
    return radial_profile_baseline(
        train_images, train_labels, test_images, test_labels, n_bins=n_bins, class_names=class_names
    )
