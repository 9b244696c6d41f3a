"""Lensing datasets: one Parquet + dataset-card format for built, converted and published data."""

from .card import dataset_statistics, read_features, render_dataset_card, write_dataset_card
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
    "SPLITS",
    "dataset_statistics",
    "lensing_features",
    "list_shards",
    "num_shards_for",
    "read_features",
    "render_dataset_card",
    "shard_bounds",
    "shard_filename",
    "write_dataset_card",
    "write_shard",
    "write_split",
]
