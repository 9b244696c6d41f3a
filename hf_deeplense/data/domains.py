"""The data of a domain-adaptation run (`training.domain_adapt`): the images of one domain, a split of a lensing
dataset or a simulation, as tensors standardised per image (zero mean, unit variance: a flux-scale change is not the
shift adapted), and the batches that pair source rows with target images (`TargetBatchCollator`)."""

from __future__ import annotations

import torch
from transformers import default_data_collator

from ..simulation import get_preset, simulate_batch
from .lens_finding import simulate_lens_finding_arrays
from .loading import load_lensing_dataset

__all__ = ["TargetBatchCollator", "load_domain", "simulate_domain", "standardise"]


def simulate_domain(
    preset: str, overrides: dict | None, size: int, seed: int, start: int, lens_fraction: float
):
    """`(images (N, C, H, W) standardised per image, labels (N,), class names)` of one domain."""
    cfg = get_preset(preset, **(overrides or {}))
    if "lens" in cfg.classes:
        data = simulate_lens_finding_arrays(cfg, size, seed=seed, lens_fraction=lens_fraction, start=start)
        images, labels = data["images"], data["labels"]
    else:  # balanced classes, image i of class c has index start + i
        per_class = [
            simulate_batch(cfg, name, range(start, start + size // len(cfg.classes)), seed=seed)["images"]
            for name in cfg.classes
        ]
        images = torch.cat(per_class)
        labels = torch.cat([torch.full((len(part),), index) for index, part in enumerate(per_class)])
    return standardise(images), labels.long(), list(cfg.classes)


def standardise(images: torch.Tensor) -> torch.Tensor:
    """Per-image zero mean and unit variance `(N, C, H, W)`: a flux-scale change is not the shift adapted."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    std = images.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return ((images.double() - mean) / std).float()


def load_domain(dataset: str, split: str, size: int | None = None):
    """`(images standardised per image, labels, class names)` of one split of a lensing dataset (the first
    `size` rows when given; the splits are shuffled when written)."""
    splits = load_lensing_dataset(dataset)
    if split not in splits:
        raise ValueError(f"{dataset} has no {split!r} split (splits: {sorted(splits)})")
    rows = splits[split]
    if size is not None:
        rows = rows.select(range(min(size, rows.num_rows)))
    columns = rows.with_format("torch", columns=["pixel_values", "label"])[:]
    return standardise(columns["pixel_values"].float()), columns["label"].long(), rows.features["label"].names


class TargetBatchCollator:
    """`default_data_collator` of source rows, plus `target_pixel_values`: as many target-domain images drawn at
    random with torch's generator (seeded by the Trainer; each DataLoader worker has its own)."""

    def __init__(self, target_images: torch.Tensor):
        self.target_images = target_images

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        index = torch.randint(len(self.target_images), (len(rows),))
        return {**default_data_collator(rows), "target_pixel_values": self.target_images[index]}
