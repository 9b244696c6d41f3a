"""Load a lensing dataset from a local folder or a Hub repo (offline from the cache too)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, load_dataset
from huggingface_hub import snapshot_download


def _is_dataset_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "README.md").is_file() or (path / "data").is_dir())


def load_lensing_dataset(
    dir_or_repo_id: str | os.PathLike,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    **load_kwargs: Any,
) -> DatasetDict:
    """Load a dataset in the hf_deeplense format (Parquet shards + card, docs/ARCHITECTURE.md).

    Args:
        dir_or_repo_id: a local dataset folder, or a Hub dataset repo id (`org/name`).
        revision: branch, tag or commit of a Hub repo (not allowed for a local folder).
        cache_dir: `datasets` cache for the prepared Arrow files (default: the `datasets` cache).
        token: Hub token for private repos.
        **load_kwargs: passed to `datasets.load_dataset` (`split=` then returns a `Dataset`).

    Returns:
        A `DatasetDict` with the splits of the dataset (`train`, `validation`, `test`).

    A repo id is fetched with `snapshot_download(repo_type="dataset")` and the snapshot folder is
    loaded: unlike `load_dataset("org/name")` this also works offline (`HF_HUB_OFFLINE=1`) once the
    repo is in the Hub cache.
    """
    path = Path(dir_or_repo_id).expanduser()
    if _is_dataset_dir(path):
        if revision is not None:
            raise ValueError(f"revision={revision!r} applies to Hub repos, not to the local folder {path}")
        folder = path
    elif path.exists():
        raise FileNotFoundError(f"{path} is not a dataset folder (no README.md and no data/)")
    else:
        folder = Path(
            snapshot_download(str(dir_or_repo_id), repo_type="dataset", revision=revision, token=token)
        )
    return load_dataset(str(folder), cache_dir=None if cache_dir is None else str(cache_dir), **load_kwargs)


def check_split_pixels(
    dataset: Dataset,
    *,
    where: str,
    image_shape: tuple[int, ...] | None = None,
    batch_size: int = 1024,
) -> None:
    """Raise a `ValueError` naming `where`, the row and its `source_file` if a split cannot be trained on.

    Checks that `pixel_values` has `image_shape` (e.g. the train split's `(C, H, W)`) and that every pixel
    is finite, reading the split in slices of `batch_size` rows (one pass, no per-row Python work).

    Args:
        dataset: one split, with a `pixel_values` column.
        where: how to name the split in errors, e.g. `"data/model_ii [validation]"`.
        image_shape: the expected `(C, H, W)`; None skips the shape check.
    """
    feature = dataset.features["pixel_values"]
    shape = tuple(getattr(feature, "shape", ()) or ())
    if image_shape is not None and shape and shape != tuple(image_shape):
        raise ValueError(
            f"{where}: images have shape {shape}, expected {tuple(image_shape)} like the train split"
        )
    view = dataset.with_format("numpy", columns=["pixel_values"])
    for start in range(0, len(view), batch_size):
        try:
            pixels = view[start : start + batch_size]["pixel_values"]
        except ValueError as error:  # a shard whose arrays do not fit the declared feature shape
            raise ValueError(
                f"{where}: rows {start}-{start + batch_size - 1} cannot be read as images of shape {shape}: {error}"
            ) from error
        finite = np.isfinite(pixels.reshape(len(pixels), -1)).all(axis=1)  # (rows,)
        if not finite.all():
            row = start + int(np.argmin(finite))
            source = dataset[row].get("source_file") if "source_file" in dataset.column_names else None
            origin = f" ({source})" if source else ""
            raise ValueError(f"{where}: row {row}{origin} has NaN/inf pixel values")
