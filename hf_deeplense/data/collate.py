"""Turn dataset rows into model batches fast: `LensingCollator`, `BatchedLensingDataset`, `DeviceLensingDataset`,
`batched_loader`.

`torch.utils.data.DataLoader` fetches a batch from a `datasets.Dataset` with one
`dataset.__getitems__(indices)` call and hands the collator a list of row dicts; with
`dataset.with_format("numpy")` (or `"torch"`) the images are already arrays and the collator only
stacks them. For a random (shuffled) batch, `datasets` still gathers row by row (one Arrow chunk
and one numpy conversion per row: ~8k images/s here). `BatchedLensingDataset` wraps the dataset
and gathers a whole batch with numpy fancy indexing on zero-copy views of the memory-mapped Arrow
columns, returning columns: an order of magnitude faster (bench/bench_data.py measures all paths).
`DeviceLensingDataset` goes further for a GPU: a split's images are processed once and kept as one tensor
on the training device, so that a batch is an index into it (no per-step reading, processing or copying).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import datasets
import numpy as np
import torch
from datasets import Array2D, Array3D, Array4D, Array5D, Value
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .transforms import LensingAugment, MultiCropTransform, TwoViewTransform


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


ROW_INDEX = "row_index"


def with_row_index(dataset):
    """A `datasets.Dataset` with a `row_index` column (0, 1, ...), which seeds `LensingCollator`'s augmentation;
    other datasets (a simulated stream, a list of rows) are returned as they are."""
    if not isinstance(dataset, datasets.Dataset):
        return dataset
    return dataset.add_column(ROW_INDEX, np.arange(len(dataset)))


class LensingCollator:
    """Rows -> model batch: stack, process (an image processor), augment; `{"pixel_values", "labels"}` (plus
    `pixel_values_2` for two views, and `local_pixel_values` for multi-crop).

    Args:
        image_processor: called on the stacked `(batch, C, H, W)` images, e.g. a `LensImageProcessor` that
            normalises and resizes (`image_processor(images, return_tensors="pt")["pixel_values"]`); None: the
            images as they are.
        label_column: column(s) holding the target. `"label"` (a `ClassLabel`) gives int64 `labels (batch,)`; a
            float column (e.g. `"log10_m_a"`) gives float32 `(batch,)` in its units (the regression models
            standardise with their config); a list of float columns gives `(batch, num_targets)`; None gives no
            `labels` (self-supervised).
        augment: a `LensingAugment` applied after processing (training only).
        two_views: return `pixel_values` and `pixel_values_2`, two augmentations of each image (SimCLR).
        multi_crop: a `MultiCropTransform` (DINO): `pixel_values`, `pixel_values_2` (global crops) and
            `local_pixel_values (batch, num_local_crops, C, H, W)`, instead of `augment` / `two_views`.
        seed: with rows carrying a `row_index` (`with_row_index`), the augmentation of a batch is drawn from a
            generator seeded by `seed` and the batch's row indices in order: it depends on which rows form the
            batch, not on the global RNG, so a run resumed from a checkpoint augments its batches exactly as the
            uninterrupted run did (the Trainer restores the global RNG only after the first batch of the resumed
            epoch has been collated). Otherwise torch's global RNG is used (which the DataLoader seeds
            differently in every worker).
        pixel_dtype: dtype of `pixel_values`.

    Accepts a list of row dicts (what `DataLoader` passes) or a dict of columns (`BatchedLensingDataset`).
    """

    def __init__(
        self,
        image_processor: Callable | None = None,
        label_column: str | Sequence[str] | None = "label",
        augment: LensingAugment | None = None,
        two_views: bool = False,
        seed: int | None = None,
        pixel_dtype: torch.dtype = torch.float32,
        multi_crop: MultiCropTransform | None = None,
    ):
        if two_views and augment is None:
            raise ValueError("two_views=True needs an augment (two identical views teach nothing)")
        if multi_crop is not None and (two_views or augment is not None):
            raise ValueError("multi_crop augments its crops itself: give it without augment or two_views")
        self.image_processor = image_processor
        self.label_column = label_column
        self.augment = augment
        self.two_views = TwoViewTransform(augment) if two_views else None
        self.seed = seed
        self.pixel_dtype = pixel_dtype
        self.multi_crop = multi_crop

    def _labels(self, column: Callable[[str], Any]) -> Tensor:
        columns = [self.label_column] if isinstance(self.label_column, str) else list(self.label_column)
        values = [column(name) for name in columns]
        if len(columns) == 1 and np.asarray(values[0][0] if len(values[0]) else 0).dtype.kind in "iub":
            return _stack(values[0], torch.int64)
        targets = torch.stack([_stack(v, torch.float32) for v in values], dim=-1)  # (batch, num_targets)
        return targets[:, 0] if isinstance(self.label_column, str) else targets

    def _generator(self, column: Callable[[str], Any], rows) -> torch.Generator | None:
        has_index = ROW_INDEX in rows if isinstance(rows, Mapping) else bool(rows) and ROW_INDEX in rows[0]
        if self.seed is None or not has_index:
            return None
        entropy = [self.seed, *np.asarray(column(ROW_INDEX), dtype=np.int64).tolist()]
        return torch.Generator().manual_seed(
            int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
        )

    def __call__(self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, Tensor]:
        if isinstance(rows, Mapping):
            column = rows.__getitem__
        else:
            column = lambda name: [row[name] for row in rows]  # noqa: E731
        pixel_values = _stack(column("pixel_values"), self.pixel_dtype)
        if pixel_values.ndim == 3:  # (batch, H, W): single channel
            pixel_values = pixel_values[:, None]
        if self.image_processor is not None:
            pixel_values = self.image_processor(pixel_values, return_tensors="pt")["pixel_values"]
        generator = self._generator(column, rows)
        batch: dict[str, Tensor] = {}
        if self.multi_crop is not None:
            batch.update(self.multi_crop(pixel_values, generator=generator))
        elif self.two_views is not None:
            batch.update(self.two_views(pixel_values, generator=generator))
        elif self.augment is not None:
            batch["pixel_values"] = self.augment(pixel_values, generator=generator)
        else:
            batch["pixel_values"] = pixel_values
        if self.label_column is not None:
            batch["labels"] = self._labels(column)
        return batch


class BatchedLensingDataset(Dataset):
    """A `datasets.Dataset` seen as a torch `Dataset` whose `__getitems__` gathers a batch at once.

    `DataLoader(BatchedLensingDataset(ds), batch_size=256, shuffle=True, collate_fn=LensingCollator())`
    reads each batch with numpy fancy indexing on zero-copy views of the memory-mapped Arrow
    columns (no per-row conversion). Works with the `Trainer` (pass it as the train dataset, with
    `remove_unused_columns=False`) and with DataLoader workers (views are rebuilt in each process).

    Args:
        dataset: a `datasets.Dataset` (its `select` / `shuffle` indices are honoured; its format
            and any `set_transform` are not: rows come out as numpy arrays).
        columns: columns to read (default: every column except strings).

    `dataset[i]` gives a row dict; `__getitems__(indices)` a dict of stacked numpy columns.
    """

    def __init__(self, dataset, columns: Sequence[str] | None = None):
        self.dataset = dataset
        features = dataset.features
        if columns is None:
            columns = [
                name
                for name, feature in features.items()
                if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string"))
            ]
        missing = [name for name in columns if name not in features]
        if missing:
            raise ValueError(f"columns {missing} are not in the dataset ({list(features)})")
        self.columns = list(columns)
        self._views: dict[str, tuple[list[np.ndarray], np.ndarray]] | None = None

    def __getstate__(self) -> dict[str, Any]:  # views are process-local: rebuild after pickling
        return {**self.__dict__, "_views": None}

    def _build(self) -> None:
        table = self.dataset.data
        views: dict[str, tuple[list[np.ndarray], np.ndarray]] = {}
        for name in self.columns:
            feature = self.dataset.features[name]
            arrays = []
            chunks = table.column(name).chunks  # columns may be chunked differently (e.g. after add_column)
            for chunk in chunks:
                if isinstance(feature, (Array2D, Array3D, Array4D, Array5D)):
                    values = chunk.storage
                    for _ in feature.shape:
                        values = values.flatten()  # honours slicing offsets
                    array = values.to_numpy(zero_copy_only=False).reshape(len(chunk), *feature.shape)
                else:
                    array = chunk.to_numpy(zero_copy_only=False)
                arrays.append(array)
            views[name] = (arrays, np.cumsum([0, *(len(chunk) for chunk in chunks)]))
        indices = self.dataset._indices
        self._indices = None if indices is None else indices.column("indices").to_numpy()
        self._views = views

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, keys: Sequence[int]) -> dict[str, np.ndarray]:
        if self._views is None:
            self._build()
        rows = np.asarray(keys, dtype=np.int64)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} rows")
        rows = rows % max(1, len(self))
        if self._indices is not None:
            rows = self._indices[rows].astype(np.int64)
        batch = {}
        for name, (arrays, offsets) in self._views.items():
            chunk_ids = np.searchsorted(offsets, rows, side="right") - 1
            out = np.empty((len(rows), *arrays[0].shape[1:]), dtype=arrays[0].dtype)
            for chunk in np.unique(chunk_ids):  # a loop over Arrow chunks, not rows
                selected = chunk_ids == chunk
                out[selected] = arrays[chunk][rows[selected] - offsets[chunk]]
            batch[name] = out
        return batch

    def __getitem__(self, key: int | Sequence[int]) -> dict[str, Any]:
        if not np.isscalar(key):
            return self.__getitems__(key)
        return {name: values[0] for name, values in self.__getitems__([key]).items()}


class DeviceLensingDataset(Dataset):
    """A `datasets.Dataset` whose images are processed once and kept as one tensor on a device.

    At construction every image is read (through `BatchedLensingDataset`, `chunk_size` rows at a time), passed
    through `image_processor` exactly as `LensingCollator` would pass a batch (so a row's processed image is the
    same whatever batch it later falls in: the processor works per image), and copied into one float32 tensor
    `(num_rows, C, H, W)` on `device`. `__getitems__(indices)` then returns that tensor indexed on the device
    plus the other numeric columns (labels, targets, `row_index`) as numpy arrays gathered on the CPU (a few
    bytes per row; the Trainer moves labels to the device with the batch). Give the collator
    `image_processor=None`: the images are processed already.

    Use with `dataloader_num_workers=0` and `dataloader_pin_memory=False` (the batches are device tensors made in
    the main process). Memory: `num_rows * C * H * W * 4` bytes on the device (24,000 images of 64 x 64:
    393 MB).

    Args:
        dataset: a `datasets.Dataset` with `pixel_values` (its `select` indices are honoured, as in
            `BatchedLensingDataset`).
        image_processor: called on each chunk of stacked `(chunk, C, H, W)` images
            (`image_processor(images, return_tensors="pt")["pixel_values"]`); None: the images as stored.
        device: where the images are kept (e.g. the Trainer's `args.device`).
        columns: the other columns to read (default: every non-string column but `pixel_values`).
        chunk_size: rows read and processed at once.
        pixel_dtype: dtype of the kept images.
    """

    def __init__(
        self,
        dataset,
        image_processor: Callable | None = None,
        device: torch.device | str = "cpu",
        columns: Sequence[str] | None = None,
        chunk_size: int = 4096,
        pixel_dtype: torch.dtype = torch.float32,
    ):
        reader = BatchedLensingDataset(dataset)
        if "pixel_values" not in reader.columns:
            raise ValueError(f"DeviceLensingDataset needs a pixel_values column ({list(dataset.features)})")
        self.columns = [
            name for name in (reader.columns if columns is None else columns) if name != "pixel_values"
        ]
        self.device = torch.device(device)
        chunks, others = [], {name: [] for name in self.columns}
        for start in range(0, len(reader), chunk_size):
            batch = reader.__getitems__(range(start, min(start + chunk_size, len(reader))))
            pixel_values = _stack(batch["pixel_values"], pixel_dtype)
            if pixel_values.ndim == 3:  # (chunk, H, W): single channel
                pixel_values = pixel_values[:, None]
            if image_processor is not None:
                pixel_values = image_processor(pixel_values, return_tensors="pt")["pixel_values"]
            chunks.append(pixel_values.to(self.device, pixel_dtype))
            for name in self.columns:
                others[name].append(batch[name])
        self.pixel_values = torch.cat(chunks) if chunks else torch.empty(0, device=self.device)
        self.others = {name: np.concatenate(values) for name, values in others.items() if values}

    def __len__(self) -> int:
        return len(self.pixel_values)

    def __getitems__(self, keys: Sequence[int]) -> dict[str, Any]:
        rows = np.asarray(keys, dtype=np.int64)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} rows")
        rows = rows % max(1, len(self))
        index = torch.from_numpy(rows).to(self.device)
        return {
            "pixel_values": self.pixel_values.index_select(0, index),  # (batch, C, H, W) on the device
            **{name: values[rows] for name, values in self.others.items()},
        }

    def __getitem__(self, key: int | Sequence[int]) -> dict[str, Any]:
        if not np.isscalar(key):
            return self.__getitems__(key)
        return {name: values[0] for name, values in self.__getitems__([key]).items()}


def batched_loader(
    dataset,
    batch_size: int,
    collator: Callable | None = None,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    num_workers: int = 0,
    columns: Sequence[str] | None = None,
    **loader_kwargs: Any,
) -> DataLoader:
    """A `DataLoader` over `BatchedLensingDataset(dataset)`: one vectorised gather per batch.

    Args:
        dataset: a `datasets.Dataset` (or an already wrapped `BatchedLensingDataset`).
        batch_size: rows per batch.
        collator: called on the dict of columns (default `LensingCollator()`).
        shuffle: random order (drawn from `generator`).
        drop_last: drop the last incomplete batch.
        generator: generator of the shuffle order.
        num_workers: DataLoader worker processes.
        columns: columns to read (default: all but strings).
        **loader_kwargs: more `DataLoader` arguments (`pin_memory`, `persistent_workers`, ...).
    """
    if not isinstance(dataset, BatchedLensingDataset):
        dataset = BatchedLensingDataset(dataset, columns)
    return DataLoader(
        dataset,  # the DataLoader's fetcher calls dataset.__getitems__(batch_indices)
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
        collate_fn=collator or LensingCollator(),
        num_workers=num_workers,
        **loader_kwargs,
    )
