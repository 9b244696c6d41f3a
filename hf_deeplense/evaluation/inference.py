"""Batched inference over a dataset: model outputs or anomaly scores, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

__all__ = ["anomaly_scores", "predict_dataset"]


def _loader(dataset, collator: Callable, batch_size: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator)


@torch.no_grad()
def predict_dataset(
    model: nn.Module,
    dataset,
    collator: Callable,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`model(pixel_values).logits` for every row, in order, and the collated `labels` (or None).

    Args:
        model: any model returning `.logits`; run in eval mode on its own device.
        dataset: rows a `collator` turns into `{"pixel_values", "labels"?}`.
        collator: e.g. `LensingCollator(processor, label_column)` without augmentation.
    """
    model.eval()
    device = next(model.parameters()).device
    outputs, labels = [], []
    for batch in tqdm(_loader(dataset, collator, batch_size), desc="predict", disable=not progress):
        outputs.append(model(pixel_values=batch["pixel_values"].to(device)).logits.float().cpu().numpy())
        if "labels" in batch:
            labels.append(batch["labels"].numpy())
    return np.concatenate(outputs), (np.concatenate(labels) if labels else None)


@torch.no_grad()
def anomaly_scores(
    model: nn.Module,
    dataset,
    collator: Callable,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`model.anomaly_score(pixel_values, seed=seed)` (e.g. the MAE reconstruction error) of every row,
    and the collated `labels` (or None)."""
    model.eval()
    device = next(model.parameters()).device
    scores, labels = [], []
    for batch in tqdm(_loader(dataset, collator, batch_size), desc="anomaly scores", disable=not progress):
        scores.append(model.anomaly_score(batch["pixel_values"].to(device), seed=seed).float().cpu().numpy())
        if "labels" in batch:
            labels.append(batch["labels"].numpy())
    return np.concatenate(scores), (np.concatenate(labels) if labels else None)
