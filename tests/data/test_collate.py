import numpy as np
import pytest
import torch
from datasets import load_dataset
from torch.utils.data import DataLoader

from hf_deeplense.data import (
    BatchedLensingDataset,
    LensingAugment,
    LensingCollator,
    MultiCropTransform,
    batched_loader,
    lensing_features,
    with_row_index,
    write_dataset_card,
    write_split,
)

N = 10


@pytest.fixture
def dataset(tmp_path):
    features = lensing_features(["no_sub", "cdm", "axion"], (1, 8, 8), ["log10_m_a", "theta_e"])

    def make_shard(i):
        index = np.arange(N)
        return {
            "pixel_values": np.arange(N * 64, dtype=np.float32).reshape(N, 1, 8, 8),
            "label": index % 3,
            "log10_m_a": -23.0 + index / 10,
            "theta_e": 1.0 + index,
        }

    write_split(tmp_path, "train", 1, make_shard, features, progress=False)
    write_dataset_card(tmp_path, title="t")
    return load_dataset(str(tmp_path))["train"]


@pytest.mark.parametrize("format", ["numpy", "torch", None])
def test_collator_on_dataloader_rows(dataset, format):
    data = dataset.with_format(format) if format else dataset
    batch = next(iter(DataLoader(data, batch_size=4, collate_fn=LensingCollator())))
    assert batch["pixel_values"].dtype == torch.float32 and batch["pixel_values"].shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(batch["pixel_values"].numpy(), np.arange(4 * 64).reshape(4, 1, 8, 8))
    assert batch["labels"].dtype == torch.int64 and batch["labels"].tolist() == [0, 1, 2, 0]


def test_regression_targets(dataset):
    data = dataset.with_format("numpy")
    rows = [data[i] for i in range(3)]
    single = LensingCollator(label_column="log10_m_a")(rows)["labels"]
    assert single.dtype == torch.float32
    torch.testing.assert_close(single, torch.tensor([-23.0, -22.9, -22.8]))
    both = LensingCollator(label_column=["log10_m_a", "theta_e"])(rows)["labels"]
    assert both.shape == (3, 2)
    torch.testing.assert_close(both[:, 1], torch.tensor([1.0, 2.0, 3.0]))
    assert "labels" not in LensingCollator(label_column=None)(rows)


def test_augment_and_two_views(dataset):
    data = dataset.with_format("numpy")
    rows = [data[i] for i in range(N)]
    plain = LensingCollator()(rows)["pixel_values"]
    torch.manual_seed(0)
    collator = LensingCollator(augment=LensingAugment(), two_views=True)
    batch = collator(rows)
    assert set(batch) == {"pixel_values", "pixel_values_2", "labels"}
    assert not torch.equal(batch["pixel_values"], batch["pixel_values_2"])
    for view in (batch["pixel_values"], batch["pixel_values_2"]):  # same pixels, moved around
        torch.testing.assert_close(view.flatten(1).sort().values, plain.flatten(1).sort().values)
    with pytest.raises(ValueError, match="augment"):
        LensingCollator(two_views=True)


def test_multi_crop(dataset):
    data = with_row_index(dataset).with_format("numpy")
    rows = [data[i] for i in range(4)]
    collator = LensingCollator(label_column=None, multi_crop=MultiCropTransform(2), seed=0)
    batch = collator(rows)
    assert set(batch) == {"pixel_values", "pixel_values_2", "local_pixel_values"}
    assert batch["pixel_values"].shape == (4, 1, 8, 8) and batch["local_pixel_values"].shape == (
        4,
        2,
        1,
        8,
        8,
    )
    assert not torch.equal(batch["pixel_values"], batch["pixel_values_2"])
    again = collator(rows)  # seeded by the rows: the same crops
    assert all(torch.equal(batch[name], again[name]) for name in batch)
    with pytest.raises(ValueError, match="multi_crop"):
        LensingCollator(augment=LensingAugment(), multi_crop=MultiCropTransform(2))


def test_batched_loader_reads_columns(dataset):
    data = dataset.with_format("numpy")
    batches = list(batched_loader(data, batch_size=4, shuffle=False))
    assert [len(b["labels"]) for b in batches] == [4, 4, 2]
    rows = next(iter(DataLoader(data, batch_size=4, collate_fn=LensingCollator())))
    for key in rows:
        assert torch.equal(batches[0][key], rows[key])
    order = [
        torch.cat(
            [
                b["pixel_values"][:, 0, 0, 0]
                for b in batched_loader(data, 3, generator=torch.Generator().manual_seed(s))
            ]
        )
        for s in (0, 0, 1)
    ]
    assert torch.equal(order[0], order[1]) and not torch.equal(order[0], order[2])
    assert sorted((order[0] / 64).long().tolist()) == list(range(N))  # every row exactly once


@pytest.fixture
def sharded(tmp_path):
    """37 rows in 4 shards (several Arrow chunks), pixel (0, 0, 0) = row number."""
    features = lensing_features(["a", "b"], (2, 3, 3), ["theta_e"], with_source_file=True)

    def make_shard(i):
        index = np.arange(i, 37, 4)
        pixels = np.random.default_rng(i).random((len(index), 2, 3, 3), dtype=np.float32)
        pixels[:, 0, 0, 0] = index
        return {
            "pixel_values": pixels,
            "label": index % 2,
            "theta_e": index / 2,
            "source_file": [f"{j}" for j in index],
        }

    write_split(tmp_path, "train", 4, make_shard, features, progress=False)
    write_dataset_card(tmp_path, title="t")
    return load_dataset(str(tmp_path))["train"]


def test_batched_dataset_matches_datasets_access(sharded):
    assert sharded.data.column("pixel_values").num_chunks > 1
    # add_column gives the new column its own chunking (one chunk beside the 4 of the shards)
    with_column = sharded.add_column("row_index", np.arange(len(sharded)))
    assert with_column.data.column("row_index").num_chunks != with_column.data.column("label").num_chunks
    for view in (
        sharded,
        sharded.shuffle(seed=0).select(range(5, 30)),
        with_column,
        with_column.shuffle(seed=1),
    ):
        fast = BatchedLensingDataset(view)
        assert len(fast) == len(view)
        assert fast.columns == ["pixel_values", "label", "theta_e", "row_index"][: len(view.column_names) - 1]
        keys = np.random.default_rng(0).integers(0, len(view), 50).tolist() + [-1]
        batch = fast.__getitems__(keys)
        reference = view.with_format("numpy")[[k % len(view) for k in keys]]
        for name in fast.columns:
            np.testing.assert_array_equal(batch[name], reference[name])
        row = fast[3]
        np.testing.assert_array_equal(row["pixel_values"], view.with_format("numpy")[3]["pixel_values"])
    with pytest.raises(IndexError):
        BatchedLensingDataset(sharded).__getitems__([37])
    with pytest.raises(ValueError, match="not in the dataset"):
        BatchedLensingDataset(sharded, columns=["nope"])


def test_batched_loader_with_workers(sharded):
    loader = batched_loader(sharded, 8, num_workers=2, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    numbers = torch.cat([b["pixel_values"][:, 0, 0, 0] for b in batches]).long()
    assert sorted(numbers.tolist()) == list(range(37))
    labels = torch.cat([b["labels"] for b in batches])
    assert torch.equal(labels, numbers % 2)
