"""Lens-finding data: multi-band cut-outs, per-image meta features, and a guard against label leakage.

Two kinds of meta features:

- **Simulator meta** (`simulate_lens_finding_batch(...)["meta"]`: Einstein radius and area, source flux and
  magnitude, magnification, number of images, source pixels above noise, galaxy kind). They describe the
  lensed source, so they exist only for lenses: NaN or 0 for every non-lens, and `galaxy_kind == 4` *is* the
  label. Fed to a classifier they leak the answer (a survey has no such numbers for an unknown object).
- **Photometric meta** ([`photometric_features`]): catalogue-like quantities measured on every image, as a
  survey pipeline would (core magnitude, core and annulus colours, their difference, annulus flux fraction,
  blue excess in the annulus). Blue arcs around a red galaxy make the annulus bluer than the core, the
  signature colour-based lens searches use (e.g. Gavazzi et al. 2014, https://arxiv.org/abs/1403.1041).

[`check_feature_leakage`] refuses features whose values alone separate the classes (single-feature AUC ~1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..simulation import SimulationConfig
from ..simulation.lens_finding import simulate_lens_finding_batch
from .loading import load_lensing_dataset

__all__ = [
    "PHOTOMETRIC_FEATURES",
    "LensFindingDataset",
    "balanced_class_weights",
    "check_feature_leakage",
    "load_lens_finding_split",
    "meta_feature_columns",
    "meta_feature_names",
    "photometric_features",
    "simulate_lens_finding_arrays",
    "single_feature_aucs",
]

PHOTOMETRIC_FEATURES = (
    "core_mag",
    "core_color",
    "annulus_color",
    "color_gradient",
    "annulus_fraction",
    "blue_excess",
)
"""Names of the features returned by [`photometric_features`], in order."""


def _magnitude(flux: torch.Tensor, zero_point: float, floor: float) -> torch.Tensor:
    return zero_point - 2.5 * torch.log10(flux.clamp_min(floor))


def photometric_features(
    images: torch.Tensor,
    pixel_scale: float,
    zero_point: float = 27.0,
    reference_band: int | None = None,
    core_radius: float = 0.7,
    annulus_radius: float = 3.0,
    flux_floor: float = 1e-3,
) -> dict[str, torch.Tensor]:
    """Catalogue-like photometry of multi-band cut-outs, finite for every image.

    Fluxes are summed in a central aperture (`r < core_radius`) and an annulus (`core_radius <= r <
    annulus_radius`), centred on the cut-out. Colours are "first band minus last band" (g - i for g, r, i).

    Args:
        images: `(N, C, H, W)` in e-/s per pixel, bands ordered blue to red; `C >= 2`.
        pixel_scale: *Unit: arcsec / pixel*
        zero_point: magnitude of 1 e-/s. *Unit: mag*
        reference_band: band of `core_mag` and `annulus_fraction` (default: the middle band).
        core_radius, annulus_radius: aperture radii. *Unit: arcsec*
        flux_floor: fluxes below this (noise can make them negative) are clamped before logarithms. *Unit: e-/s*

    Returns:
        `{name: FloatTensor (N,)}` for the names in [`PHOTOMETRIC_FEATURES`]: `core_mag` (mag), `core_color`,
        `annulus_color`, `color_gradient` (annulus colour - core colour; negative = bluer outside), `annulus_fraction`
        (annulus / core flux), `blue_excess` (first-band annulus flux beyond what the core colour predicts, in units
        of the reference-band core flux).
    """
    if images.ndim != 4 or images.shape[1] < 2:
        raise ValueError(
            f"photometric_features needs (N, C >= 2, H, W) images, got shape {tuple(images.shape)}"
        )
    images = images.to(torch.float64)
    height, width = images.shape[-2:]
    reference_band = images.shape[1] // 2 if reference_band is None else reference_band
    rows = (torch.arange(height, dtype=torch.float64) - (height - 1) / 2) * pixel_scale
    cols = (torch.arange(width, dtype=torch.float64) - (width - 1) / 2) * pixel_scale
    radius = torch.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2)  # (H, W) arcsec
    core = (radius < core_radius).to(images.dtype)
    annulus = ((radius >= core_radius) & (radius < annulus_radius)).to(images.dtype)
    core_flux = (images * core).sum(dim=(-2, -1))  # (N, C)
    annulus_flux = (images * annulus).sum(dim=(-2, -1))  # (N, C)
    blue, red = 0, images.shape[1] - 1

    def color(flux: torch.Tensor) -> torch.Tensor:
        return _magnitude(flux[:, blue], zero_point, flux_floor) - _magnitude(
            flux[:, red], zero_point, flux_floor
        )

    core_color, annulus_color = color(core_flux), color(annulus_flux)
    reference_core = core_flux[:, reference_band].clamp_min(flux_floor)
    predicted_blue = (
        annulus_flux[:, red]
        * core_flux[:, blue].clamp_min(flux_floor)
        / core_flux[:, red].clamp_min(flux_floor)
    )
    features = {
        "core_mag": _magnitude(core_flux[:, reference_band], zero_point, flux_floor),
        "core_color": core_color,
        "annulus_color": annulus_color,
        "color_gradient": annulus_color - core_color,
        "annulus_fraction": annulus_flux[:, reference_band] / reference_core,
        "blue_excess": (annulus_flux[:, blue] - predicted_blue) / reference_core,
    }
    return {name: value.to(torch.float32) for name, value in features.items()}


def simulate_lens_finding_arrays(
    cfg: SimulationConfig,
    num_images: int,
    seed: int = 0,
    lens_fraction: float | None = None,
    start: int = 0,
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
    """Images `start .. start + num_images - 1` of a lens-finding set, simulated in batches (with a progress bar).

    Returns:
        `{"images": (N, C, H, W), "labels": (N,), "meta": {name: (N,)}}` as `simulate_lens_finding_batch`.
    """
    parts = []
    for first in tqdm(
        range(start, start + num_images, batch_size),
        desc=f"simulate {cfg.name}",
        disable=not progress,
        leave=False,
    ):
        indices = range(first, min(first + batch_size, start + num_images))
        parts.append(simulate_lens_finding_batch(cfg, indices, seed=seed, lens_fraction=lens_fraction))
    return {
        "images": torch.cat([part["images"] for part in parts]),
        "labels": torch.cat([part["labels"] for part in parts]),
        "meta": {name: torch.cat([part["meta"][name] for part in parts]) for name in parts[0]["meta"]},
    }


def load_lens_finding_split(dataset: str, split: str) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
    """One split of a built lens-finding dataset (folder or Hub repo id) in the form `simulate_lens_finding_arrays`
    returns: raw images (e-/s), labels, and every other column as meta."""
    rows = load_lensing_dataset(dataset)[split]
    meta = [name for name in rows.column_names if name not in ("pixel_values", "label", "source_file")]
    columns = rows.with_format("torch", columns=["pixel_values", "label", *meta])[:]
    images, labels = columns["pixel_values"], columns["label"]
    return {"images": images, "labels": labels, "meta": {name: columns[name] for name in meta}}


def meta_feature_names(meta_features: Sequence[str]) -> list[str]:
    """The feature names `meta_features` stands for, in order: `"photometric"` is the `PHOTOMETRIC_FEATURES`, any
    other name a meta column."""
    return [
        column
        for name in meta_features
        for column in (PHOTOMETRIC_FEATURES if name == "photometric" else [name])
    ]


def meta_feature_columns(
    data: Mapping, meta_features: Sequence[str], pixel_scale: float
) -> dict[str, torch.Tensor]:
    """Every meta column of a split (`data` as `simulate_lens_finding_arrays` returns it), with the
    `photometric_features` measured on its raw images (`pixel_scale` arcsec per pixel) when `meta_features` names
    `"photometric"`."""
    columns = dict(data["meta"])
    if "photometric" in meta_features:
        columns.update(photometric_features(data["images"], pixel_scale))
    return columns


def single_feature_aucs(features: Mapping[str, torch.Tensor | np.ndarray], labels) -> dict[str, float]:
    """ROC AUC of each feature alone as a score for class 1, folded to `max(AUC, 1 - AUC)`.

    NaN counts as the lowest value, so a feature that is missing exactly for one class scores 1.0.
    """
    labels = np.asarray(labels).astype(bool)
    aucs = {}
    for name, values in features.items():
        values = np.asarray(values, dtype=np.float64)
        values = np.where(np.isnan(values), -np.inf, values)
        finite = values[np.isfinite(values)]
        values = np.where(np.isneginf(values), (finite.min() - 1.0) if finite.size else 0.0, values)
        auc = float(roc_auc_score(labels, values)) if 0 < labels.sum() < labels.size else math.nan
        aucs[name] = max(auc, 1.0 - auc)
    return aucs


def check_feature_leakage(
    features: Mapping[str, torch.Tensor | np.ndarray], labels, max_auc: float = 0.995
) -> dict[str, float]:
    """Raise when a meta feature is non-finite or alone separates the classes (AUC >= `max_auc`).

    Such a feature is label information, not a measurement: e.g. the simulator's `n_images` is 0 for every
    non-lens and `galaxy_kind == 4` marks the lenses. Returns the single-feature AUCs otherwise.
    """
    labels = np.asarray(labels)
    non_finite = [
        name for name, values in features.items() if not np.isfinite(np.asarray(values, float)).all()
    ]
    aucs = single_feature_aucs(features, labels)
    leaking = {name: round(auc, 4) for name, auc in aucs.items() if auc >= max_auc}
    problems = []
    if non_finite:
        problems.append(f"non-finite values (NaN for some class) in {non_finite}")
    if leaking:
        problems.append(f"features that alone separate the classes (single-feature AUC) {leaking}")
    if problems:
        raise ValueError(
            "meta features leak the label: "
            + "; ".join(problems)
            + ". Use measured features (e.g. hf_deeplense.data.lens_finding.photometric_features)."
        )
    return aucs


def balanced_class_weights(labels, num_labels: int) -> list[float]:
    """`n / (num_labels * n_c)` per class (scikit-learn's "balanced"): the rare class weighs more."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels)
    if (counts == 0).any():
        raise ValueError(f"every class needs at least one example, got counts {counts.tolist()}")
    return (counts.sum() / (num_labels * counts)).tolist()


class LensFindingDataset(Dataset):
    """In-memory `{"pixel_values", "labels"[, "meta_features"]}` rows for `Trainer`.

    Args:
        pixel_values: `(N, C, H, W)` float.
        labels: `(N,)` int.
        meta_features: `(N, F)` float, or None for an image-only model.
    """

    def __init__(
        self, pixel_values: torch.Tensor, labels: torch.Tensor, meta_features: torch.Tensor | None = None
    ):
        if len(pixel_values) != len(labels) or (
            meta_features is not None and len(meta_features) != len(labels)
        ):
            raise ValueError("pixel_values, labels and meta_features must have the same length")
        self.pixel_values = pixel_values.to(torch.float32)
        self.labels = labels.to(torch.long)
        self.meta_features = None if meta_features is None else meta_features.to(torch.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = {"pixel_values": self.pixel_values[index], "labels": self.labels[index]}
        if self.meta_features is not None:
            row["meta_features"] = self.meta_features[index]
        return row


def stack_features(features: Mapping[str, torch.Tensor], names: Sequence[str]) -> torch.Tensor:
    """`(N, len(names))` from a dict of `(N,)` columns, in the order of `names` (a missing name is an error)."""
    missing = [name for name in names if name not in features]
    if missing:
        raise KeyError(f"unknown meta feature(s) {missing}; available: {sorted(features)}")
    return torch.stack([torch.as_tensor(features[name], dtype=torch.float32) for name in names], dim=1)
