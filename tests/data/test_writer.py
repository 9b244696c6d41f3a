import hashlib

import numpy as np
import pytest
from datasets import load_dataset

from hf_deeplense.data import (
    lensing_features,
    list_shards,
    num_shards_for,
    shard_bounds,
    shard_filename,
    write_dataset_card,
    write_split,
)
from hf_deeplense.data import writer as writer_module

CLASSES = ["no_sub", "cdm", "axion"]


def make_rows(num_examples, num_shards, seed=0):
    def make_shard(i):
        start, stop = shard_bounds(num_examples, num_shards, i)
        index = np.arange(start, stop)
        rng = np.random.default_rng([seed, i])
        return {
            "pixel_values": rng.random((stop - start, 1, 6, 5), dtype=np.float32),
            "label": index % 3,
            "log10_m_a": index.astype(np.float32) / 10,
            "source_file": [f"file_{j}.npy" for j in index],
        }

    return make_shard


FEATURES = lensing_features(CLASSES, (1, 6, 5), ["log10_m_a"], with_source_file=True)


def digests(out_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out_dir / "data").iterdir())}


def test_shard_helpers():
    assert shard_filename("train", 3, 12) == "train-00003-of-00012.parquet"
    with pytest.raises(ValueError):
        shard_filename("train", 12, 12)
    assert num_shards_for(0, 10) == 1 and num_shards_for(10, 10) == 1 and num_shards_for(11, 10) == 2
    bounds = [shard_bounds(10, 3, i) for i in range(3)]
    assert bounds == [(0, 4), (4, 7), (7, 10)]


def test_features_validated():
    with pytest.raises(ValueError, match="C, H, W"):
        lensing_features(CLASSES, (6, 5))
    with pytest.raises(ValueError, match="reserved"):
        lensing_features(CLASSES, (1, 6, 5), ["label"])


def test_roundtrip_through_load_dataset(tmp_path):
    paths = write_split(tmp_path, "train", 3, make_rows(10, 3), FEATURES, progress=False)
    write_split(tmp_path, "test", 2, make_rows(4, 2, seed=1), FEATURES, progress=False)
    assert [p.name for p in paths] == [shard_filename("train", i, 3) for i in range(3)]
    write_dataset_card(tmp_path, title="tiny")
    dataset = load_dataset(str(tmp_path))
    assert set(dataset) == {"train", "test"}
    assert dataset["train"].features == FEATURES
    train = dataset["train"].with_format("numpy")[:]
    expected = np.concatenate([make_rows(10, 3)(i)["pixel_values"] for i in range(3)])
    np.testing.assert_array_equal(train["pixel_values"], expected)
    np.testing.assert_array_equal(train["label"], np.arange(10) % 3)
    np.testing.assert_allclose(train["log10_m_a"], np.arange(10) / 10, rtol=1e-6)
    assert list(train["source_file"][:2]) == ["file_0.npy", "file_1.npy"]


def test_same_input_same_bytes(tmp_path):
    write_split(tmp_path / "a", "train", 2, make_rows(7, 2), FEATURES, progress=False)
    write_split(tmp_path / "b", "train", 2, make_rows(7, 2), FEATURES, progress=False)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    write_split(tmp_path / "c", "train", 2, make_rows(7, 2, seed=5), FEATURES, progress=False)
    assert digests(tmp_path / "a") != digests(tmp_path / "c")


def test_resume_after_crash_writes_only_missing_shards(tmp_path):
    calls = []
    good = make_rows(12, 4)

    def crashing(i):
        calls.append(i)
        if i == 2:
            raise KeyboardInterrupt("killed")
        return good(i)

    with pytest.raises(KeyboardInterrupt):
        write_split(tmp_path / "run", "train", 4, crashing, FEATURES, progress=False)
    names = sorted(p.name for p in (tmp_path / "run" / "data").iterdir())
    assert names == [shard_filename("train", 0, 4), shard_filename("train", 1, 4)]  # no partial shard

    calls.clear()

    def counting(i):
        calls.append(i)
        return good(i)

    write_split(tmp_path / "run", "train", 4, counting, FEATURES, progress=False)
    assert calls == [2, 3]
    write_split(tmp_path / "clean", "train", 4, good, FEATURES, progress=False)
    assert digests(tmp_path / "run") == digests(tmp_path / "clean")


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def broken_finalize(self, close_stream=True):
        raise OSError("disk full")

    monkeypatch.setattr(writer_module.ParquetWriter, "finalize", broken_finalize)
    with pytest.raises(OSError, match="disk full"):
        write_split(tmp_path, "train", 1, make_rows(3, 1), FEATURES, progress=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_temporaries_of_a_killed_run_are_removed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    stale = data / f".{shard_filename('train', 0, 2)}.tmp-12345"
    stale.write_bytes(b"PAR1 partial")
    other_split = data / f".{shard_filename('test', 0, 1)}.tmp-12345"
    other_split.write_bytes(b"x")
    write_split(tmp_path, "train", 2, make_rows(4, 2), FEATURES, progress=False)
    assert not stale.exists()
    assert other_split.exists()  # only this split's temporaries are touched
    assert len(list_shards(tmp_path)["train"]) == 2


def test_shards_of_another_run_are_refused_unless_overwrite(tmp_path):
    write_split(tmp_path, "train", 2, make_rows(4, 2), FEATURES, progress=False)
    with pytest.raises(ValueError, match="another run"):
        write_split(tmp_path, "train", 3, make_rows(4, 3), FEATURES, progress=False)
    write_split(tmp_path, "train", 3, make_rows(4, 3), FEATURES, overwrite=True, progress=False)
    assert [p.name for p in list_shards(tmp_path)["train"]] == [
        shard_filename("train", i, 3) for i in range(3)
    ]


def test_bad_rows_name_the_problem(tmp_path):
    good = make_rows(4, 1)(0)
    with pytest.raises(ValueError, match="missing \\['source_file'\\]"):
        write_split(
            tmp_path, "train", 1, lambda i: {k: v for k, v in good.items() if k != "source_file"}, FEATURES
        )
    with pytest.raises(ValueError, match="shape"):
        write_split(
            tmp_path, "train", 1, lambda i: {**good, "pixel_values": np.zeros((4, 1, 5, 5))}, FEATURES
        )
    with pytest.raises(ValueError, match="out of range"):
        write_split(tmp_path, "train", 1, lambda i: {**good, "label": np.array([0, 1, 2, 3])}, FEATURES)
    assert not (tmp_path / "data" / shard_filename("train", 0, 1)).exists()


def test_empty_shard_keeps_schema(tmp_path):
    def make_shard(i):
        rows = make_rows(3, 1)(0)
        return rows if i == 0 else {k: v[:0] for k, v in rows.items()}

    write_split(tmp_path, "train", 2, make_shard, FEATURES, progress=False)
    write_dataset_card(tmp_path, title="t")
    dataset = load_dataset(str(tmp_path))
    assert dataset["train"].num_rows == 3
    assert dataset["train"].features == FEATURES
