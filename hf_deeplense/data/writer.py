"""Atomic, resumable Parquet shard writer for lensing datasets.

Every dataset hf_deeplense builds, converts or publishes has one on-disk format (see
docs/ARCHITECTURE.md)::

    DIR/README.md                                   dataset card (see `card.py`)
    DIR/data/{split}-{i:05d}-of-{n:05d}.parquet     shards, split in train / validation / test

Shard ``i`` of a split is produced by a callback ``make_shard(i)``, written to a hidden temporary
file in the same folder and moved into place with `os.replace`, so a partial shard is never
visible. A rerun skips the shards that already exist (resume after a crash) and removes the
temporary files a killed run left behind. The same input gives the same bytes: Parquet stores
no timestamp, the schema metadata is the features' JSON.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Array3D, ClassLabel, Features, Value
from datasets.arrow_writer import ParquetWriter
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
DATA_DIR = "data"
_SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")
_TMP_MARKER = ".tmp-"


def lensing_features(
    class_names: Sequence[str],
    image_shape: Sequence[int],
    float_columns: Sequence[str] = (),
    with_source_file: bool = False,
    bool_columns: Sequence[str] = (),
) -> Features:
    """The `datasets.Features` of a lensing dataset.

    Args:
        class_names: names of the `label` `ClassLabel`, in label-id order.
        image_shape: `(C, H, W)` of `pixel_values` (channels-first, also for C = 1).
        float_columns: extra float32 columns (`log10_m_a`, `subhalo_mass_fraction`, physical
            parameters, lens-finding meta features), in column order.
        with_source_file: add a `source_file` string column (converted data).
        bool_columns: extra boolean columns (e.g. membership of a published labelled subset), after
            the float columns.
    """
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
    if not class_names:
        raise ValueError("class_names must not be empty")
    reserved = {"pixel_values", "label", "source_file"}
    clash = reserved.intersection([*float_columns, *bool_columns])
    if clash:
        raise ValueError(f"float_columns may not reuse the reserved names {sorted(clash)}")
    columns: dict[str, Any] = {
        "pixel_values": Array3D(tuple(int(s) for s in image_shape), "float32"),
        "label": ClassLabel(names=list(class_names)),
    }
    for name in float_columns:
        columns[name] = Value("float32")
    for name in bool_columns:
        columns[name] = Value("bool")
    if with_source_file:
        columns["source_file"] = Value("string")
    return Features(columns)


def shard_filename(split: str, index: int, num_shards: int) -> str:
    """`{split}-{index:05d}-of-{num_shards:05d}.parquet`."""
    if not 0 <= index < num_shards:
        raise ValueError(f"shard index {index} out of range for {num_shards} shards")
    return f"{split}-{index:05d}-of-{num_shards:05d}.parquet"


def num_shards_for(num_examples: int, examples_per_shard: int) -> int:
    """Number of shards holding `num_examples` with at most `examples_per_shard` each (at least 1)."""
    if examples_per_shard < 1:
        raise ValueError(f"examples_per_shard must be >= 1, got {examples_per_shard}")
    return max(1, -(-num_examples // examples_per_shard))


def shard_bounds(num_examples: int, num_shards: int, index: int) -> tuple[int, int]:
    """`[start, stop)` example range of shard `index` when `num_examples` are cut into `num_shards`
    nearly equal contiguous shards (the first `num_examples % num_shards` get one more)."""
    base, extra = divmod(num_examples, num_shards)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


def list_shards(out_dir: str | os.PathLike, split: str | None = None) -> dict[str, list[Path]]:
    """Finished shards under `out_dir/data`, by split, in index order (temporary files excluded)."""
    data_dir = Path(out_dir) / DATA_DIR
    found: dict[str, list[Path]] = {}
    if not data_dir.is_dir():
        return found
    for path in sorted(data_dir.iterdir()):
        match = _SHARD_RE.match(path.name)
        if match and (split is None or match["split"] == split):
            found.setdefault(match["split"], []).append(path)
    return found


def _check_batch(batch: Mapping[str, Any], features: Features, where: str) -> dict[str, Any]:
    missing = [name for name in features if name not in batch]
    unknown = [name for name in batch if name not in features]
    if missing or unknown:
        raise ValueError(f"{where}: columns do not match the features (missing {missing}, unknown {unknown})")
    num_rows = len(batch["pixel_values"])
    columns: dict[str, Any] = {}
    for name, feature in features.items():
        values = batch[name]
        if len(values) != num_rows:
            raise ValueError(f"{where}: column {name!r} has {len(values)} rows, pixel_values has {num_rows}")
        if name == "pixel_values":
            values = np.asarray(values, dtype=np.float32)
            if values.shape[1:] != tuple(feature.shape):
                raise ValueError(
                    f"{where}: pixel_values has shape {values.shape[1:]} per row, features say {feature.shape}"
                )
            values = np.ascontiguousarray(values)
        elif isinstance(feature, ClassLabel):
            values = np.asarray(values, dtype=np.int64)
            bad = (values < 0) | (values >= feature.num_classes)
            if bad.any():
                raise ValueError(f"{where}: label values {np.unique(values[bad]).tolist()} out of range")
        elif isinstance(feature, Value) and feature.dtype == "float32":
            values = np.asarray(values, dtype=np.float32)
        else:
            values = list(values)
        columns[name] = values
    return columns


def _array_storage(values: np.ndarray) -> pa.Array:
    """The nested-list Arrow storage of an `ArrayXD` column, built from a C-contiguous `(N, *shape)`
    array without going through Python objects (the values buffer is shared, not copied)."""
    array = pa.array(values.reshape(-1))
    for size in reversed(values.shape[1:]):
        count = len(array) // size
        offsets = pa.array(np.arange(0, (count + 1) * size, size, dtype=np.int32))
        array = pa.ListArray.from_arrays(offsets, array)
    return array


def _to_table(columns: Mapping[str, Any], features: Features) -> pa.Table:
    schema = features.arrow_schema
    arrays = []
    for field in schema:
        values = columns[field.name]
        if isinstance(field.type, pa.ExtensionType):
            arrays.append(pa.ExtensionArray.from_storage(field.type, _array_storage(values)))
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _remove_stale_temporaries(data_dir: Path, split: str) -> None:
    for path in data_dir.glob(f".{split}-*{_TMP_MARKER}*"):
        logger.info("removing the temporary file of an interrupted run: %s", path)
        path.unlink(missing_ok=True)


def write_shard(path: str | os.PathLike, batch: Mapping[str, Any], features: Features) -> int:
    """Write one shard atomically: to `.{name}.tmp-{pid}` next to `path`, fsync, `os.replace`.

    Returns the number of rows written (0 gives an empty shard that still carries the schema).
    """
    path = Path(path)
    columns = _check_batch(batch, features, where=str(path))
    tmp = path.with_name(f".{path.name}{_TMP_MARKER}{os.getpid()}")
    try:
        with ParquetWriter(features=features, path=str(tmp)) as writer:
            if len(columns["pixel_values"]):
                writer.write_table(_to_table(columns, features))
            num_rows, _ = writer.finalize()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return num_rows


def write_split(
    out_dir: str | os.PathLike,
    split: str,
    num_shards: int,
    make_shard: Callable[[int], Mapping[str, Any]],
    features: Features,
    *,
    overwrite: bool = False,
    progress: bool = True,
    desc: str | None = None,
) -> list[Path]:
    """Write (or finish writing) the `num_shards` shards of `split` under `out_dir/data`.

    Args:
        out_dir: dataset folder; shards go to `out_dir/data/`.
        split: split name (`train`, `validation`, `test`).
        num_shards: total number of shards of this split (part of every file name).
        make_shard: `make_shard(i)` returns the rows of shard `i` as a mapping column -> values
            (`pixel_values` array `(N, C, H, W)`, `label` ints, float columns, `source_file`
            strings), exactly the columns of `features`. It must depend on `i` only, so a resumed
            run writes the same shards; it is not called for shards that already exist.
        features: the dataset features (see `lensing_features`), stored in every shard.
        overwrite: delete the split's existing shards first instead of resuming.
        progress: show a tqdm bar over shards.
        desc: progress-bar label (default: the split name).

    Returns:
        The paths of all `num_shards` shards, in index order.

    Raises:
        ValueError: shards of this split with a different `num_shards` exist (from another run)
            and `overwrite` is False; or a shard's columns do not match `features`.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    data_dir = Path(out_dir) / DATA_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(data_dir, split)
    existing = list_shards(out_dir, split).get(split, [])
    if overwrite:
        for path in existing:
            path.unlink()
    else:
        foreign = [p.name for p in existing if int(_SHARD_RE.match(p.name)["total"]) != num_shards]
        if foreign:
            raise ValueError(
                f"{data_dir} already holds {split} shards of another run ({', '.join(foreign[:3])}...); "
                f"expected -of-{num_shards:05d}. Pass overwrite=True to replace them."
            )
    paths = [data_dir / shard_filename(split, i, num_shards) for i in range(num_shards)]
    todo = [i for i, path in enumerate(paths) if not path.exists()]
    if len(todo) < num_shards:
        logger.info(
            "%s: resuming, %d of %d shards already written", split, num_shards - len(todo), num_shards
        )
    for i in tqdm(todo, desc=desc or split, unit="shard", disable=not progress):
        write_shard(paths[i], make_shard(i), features)
    return paths
