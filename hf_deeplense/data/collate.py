"""Turn dataset rows into model batches fast: `LensingCollator` and a batched DataLoader.

`torch.utils.data.DataLoader` fetches a batch from a `datasets.Dataset` with one
`dataset.__getitems__(indices)` call (one Arrow query) and hands the collator a list of row dicts;
with `dataset.with_format("numpy")` (or `"torch"`) the images are already arrays and the collator
only stacks them. `batched_loader` goes one step further: a `BatchSampler` passes the whole index
list to `dataset[indices]`, which returns columns, so nothing is split into rows at all
(bench/bench_data.py measures both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from .transforms import LensingAugment, TwoViewTransform


def _stack(values: Any, dtype: torch.dtype) -> Tensor:
    """Stack a column (list of arrays / tensors / numbers, or an already batched array) to a tensor."""
    if isinstance(values, Tensor):
        return values.to(dtype)
    if isinstance(values, np.ndarray) and values.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(values)).to(dtype)
    first = values[0]
    if isinstance(first, Tensor):
        return torch.stack(list(values)).to(dtype)
    return torch.from_numpy(
        np.stack([np.asarray(v) for v in values]) if np.ndim(first) else np.asarray(values)
    ).to(dtype)


class LensingCollator:
    """Collate lensing rows into `{"pixel_values", "labels"}` (plus `pixel_values_2` for two views).

    Args:
        label_column: column(s) holding the target. `"label"` (a `ClassLabel`) gives int64
            `labels (batch,)`; a float column (e.g. `"log10_m_a"`) gives float32 `(batch,)`; a list
            of float columns gives `(batch, num_targets)`; None gives no `labels` (self-supervised).
        augment: a `LensingAugment` applied to the batch (None: no augmentation).
        two_views: also return a second, independently augmented view `pixel_values_2` (SimCLR);
            needs `augment`.
        target_mean, target_std: standardise float targets, `(y - mean) / std` (default: leave
            them in their units; the regression models standardise with their config instead).
        generator: generator for the augmentation (None: torch's global generator, which the
            DataLoader seeds differently in every worker; a generator passed here is copied into
            each worker, so all workers would draw the same augmentations).
        pixel_dtype: dtype of `pixel_values`.

    Accepts a list of row dicts (what `DataLoader` passes) or a dict of columns (`dataset[indices]`).
    """

    def __init__(
        self,
        label_column: str | Sequence[str] | None = "label",
        augment: LensingAugment | None = None,
        two_views: bool = False,
        target_mean: float | Sequence[float] | None = None,
        target_std: float | Sequence[float] | None = None,
        generator: torch.Generator | None = None,
        pixel_dtype: torch.dtype = torch.float32,
    ):
        if two_views and augment is None:
            raise ValueError("two_views=True needs an augment (two identical views teach nothing)")
        if (target_mean is None) != (target_std is None):
            raise ValueError("give both target_mean and target_std, or neither")
        self.label_column = label_column
        self.augment = augment
        self.two_views = TwoViewTransform(augment) if two_views else None
        self.target_mean = None if target_mean is None else torch.as_tensor(target_mean, dtype=torch.float32)
        self.target_std = None if target_std is None else torch.as_tensor(target_std, dtype=torch.float32)
        self.generator = generator
        self.pixel_dtype = pixel_dtype

    def _labels(self, column: Callable[[str], Any]) -> Tensor:
        columns = [self.label_column] if isinstance(self.label_column, str) else list(self.label_column)
        values = [column(name) for name in columns]
        integer = len(columns) == 1 and np.asarray(values[0][0] if len(values[0]) else 0).dtype.kind in "iub"
        if integer and self.target_mean is None:
            return _stack(values[0], torch.int64)
        targets = torch.stack([_stack(v, torch.float32) for v in values], dim=-1)  # (batch, num_targets)
        if isinstance(self.label_column, str):
            targets = targets[:, 0]
        if self.target_mean is not None:
            targets = (targets - self.target_mean) / self.target_std
        return targets

    def __call__(self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, Tensor]:
        if isinstance(rows, Mapping):
            column = rows.__getitem__
        else:
            column = lambda name: [row[name] for row in rows]  # noqa: E731
        pixel_values = _stack(column("pixel_values"), self.pixel_dtype)
        if pixel_values.ndim == 3:  # (batch, H, W): single channel
            pixel_values = pixel_values[:, None]
        batch: dict[str, Tensor] = {}
        if self.two_views is not None:
            batch.update(self.two_views(pixel_values, generator=self.generator))
        elif self.augment is not None:
            batch["pixel_values"] = self.augment(pixel_values, generator=self.generator)
        else:
            batch["pixel_values"] = pixel_values
        if self.label_column is not None:
            batch["labels"] = self._labels(column)
        return batch


def batched_loader(
    dataset,
    batch_size: int,
    collator: Callable | None = None,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    num_workers: int = 0,
    **loader_kwargs: Any,
) -> DataLoader:
    """A `DataLoader` that reads each batch with one `dataset[indices]` call (a dict of columns).

    Args:
        dataset: a `datasets.Dataset`, preferably `with_format("numpy")`.
        batch_size: rows per batch.
        collator: called on the dict of columns (default `LensingCollator()`).
        shuffle: random order (drawn from `generator`).
        drop_last: drop the last incomplete batch.
        generator: generator of the shuffle order.
        num_workers: DataLoader worker processes.
        **loader_kwargs: more `DataLoader` arguments (`pin_memory`, `persistent_workers`, ...).
    """
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(
        dataset,
        sampler=BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last),
        batch_size=None,
        collate_fn=collator or LensingCollator(),
        num_workers=num_workers,
        **loader_kwargs,
    )
