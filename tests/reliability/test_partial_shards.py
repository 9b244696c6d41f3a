"""No partial shard is ever readable: a writer's leftover temporary (`data/.{name}.tmp-{pid}`, what a killed
build leaves) is invisible to `load_lensing_dataset`, and the next write of that split removes it."""

from __future__ import annotations

import numpy as np
from reliability_helpers import SPLIT_SIZES, write_split_arrays

from hf_deeplense.data import load_lensing_dataset


def test_leftover_temporary_is_never_read_and_is_cleaned_up(make_dataset):
    dataset = make_dataset("with_leftover")
    good = (dataset / "data" / "train-00000-of-00001.parquet").read_bytes()
    leftover = dataset / "data" / ".train-00000-of-00001.parquet.tmp-4242"
    leftover.write_bytes(good[: len(good) // 2])  # a shard cut short by SIGKILL
    loaded = load_lensing_dataset(dataset)
    assert {split: loaded[split].num_rows for split in loaded} == SPLIT_SIZES
    assert np.isfinite(np.asarray(loaded["train"]["pixel_values"])).all()

    rows = np.random.default_rng(0).random((SPLIT_SIZES["train"], 1, 16, 16), dtype=np.float32)
    write_split_arrays(dataset, "train", rows)  # a rerun: the finished shard is kept, the temporary removed
    assert not leftover.exists()
    assert (dataset / "data" / "train-00000-of-00001.parquet").read_bytes() == good
