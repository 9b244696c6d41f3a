"""Lensing datasets: one Parquet + dataset-card format for built, converted and published data."""

from .card import dataset_statistics, read_features, render_dataset_card, write_dataset_card
from .collate import (
    BatchedLensingDataset,
    DeviceLensingDataset,
    LensingCollator,
    batched_loader,
    with_row_index,
)
from .convert import (
    ALLOW_PICKLE_WARNING,
    LAYOUTS,
    ConversionResult,
    LayoutError,
    SkipFile,
    convert_deeplense,
    detect_layout,
    load_example,
    load_split_file,
)
from .hub import publish_dataset
from .iterable import SimulatedLensDataset
from .loading import check_split_pixels, load_lensing_dataset
from .transforms import LensingAugment, MultiCropTransform, TwoViewTransform
from .writer import (
    SPLITS,
    lensing_features,
    list_shards,
    num_shards_for,
    shard_bounds,
    shard_filename,
    write_shard,
    write_split,
)

__all__ = [
    "ALLOW_PICKLE_WARNING",
    "LAYOUTS",
    "SPLITS",
    "BatchedLensingDataset",
    "ConversionResult",
    "DeviceLensingDataset",
    "LayoutError",
    "LensingAugment",
    "LensingCollator",
    "MultiCropTransform",
    "SimulatedLensDataset",
    "SkipFile",
    "TwoViewTransform",
    "batched_loader",
    "convert_deeplense",
    "dataset_statistics",
    "detect_layout",
    "lensing_features",
    "list_shards",
    "load_example",
    "load_split_file",
    "check_split_pixels",
    "load_lensing_dataset",
    "num_shards_for",
    "publish_dataset",
    "read_features",
    "render_dataset_card",
    "shard_bounds",
    "shard_filename",
    "write_dataset_card",
    "write_shard",
    "with_row_index",
    "write_split",
]
