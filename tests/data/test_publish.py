"""Publishing a dataset folder and reading it back by repo id, offline (local_hub)."""

import numpy as np
import pytest

from hf_deeplense.data import (
    lensing_features,
    load_lensing_dataset,
    publish_dataset,
    write_dataset_card,
    write_split,
)
from hf_deeplense.testing_utils import local_hub

FEATURES = lensing_features(["no_sub", "cdm", "axion"], (1, 8, 8), ["log10_m_a"])


def build(out_dir, num_examples, num_shards, offset=0.0):
    def make_shard(i):
        index = np.arange(i, num_examples, num_shards)
        return {
            "pixel_values": np.stack([np.full((1, 8, 8), offset + j, np.float32) for j in index]),
            "label": index % 3,
            "log10_m_a": np.where(index % 3 == 2, -23.0, np.nan).astype(np.float32),
        }

    write_split(out_dir, "train", num_shards, make_shard, FEATURES, progress=False)
    write_split(out_dir, "test", 1, make_shard, FEATURES, progress=False)
    write_dataset_card(out_dir, title="tiny")
    return out_dir


def test_publish_and_reload_offline(tmp_path):
    folder = build(tmp_path / "ds", 9, 3)
    (folder / "data" / ".train-00000-of-00003.parquet.tmp-1").write_bytes(b"junk")
    with local_hub(tmp_path / "hub") as hub:
        publish_dataset(folder, "org/tiny-lenses")
        files = hub.list_files("org/tiny-lenses", "dataset")
        assert files == ["README.md", "data/test-00000-of-00001.parquet"] + [
            f"data/train-0000{i}-of-00003.parquet" for i in range(3)
        ]
        dataset = load_lensing_dataset("org/tiny-lenses")
        assert dataset["train"].num_rows == 9 and dataset["test"].num_rows == 3
        assert dataset["train"].features == FEATURES
        first = dataset["train"].with_format("numpy")[:]["pixel_values"][:, 0, 0, 0]
        assert sorted(first.tolist()) == list(range(9))

        # a re-publish with another shard count leaves no stale shard behind
        build(tmp_path / "ds2", 4, 2, offset=100.0)
        publish_dataset(tmp_path / "ds2", "org/tiny-lenses")
        files = hub.list_files("org/tiny-lenses", "dataset")
        assert [f for f in files if f.startswith("data/train")] == [
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
        ]
        dataset = load_lensing_dataset("org/tiny-lenses")
        assert dataset["train"].num_rows == 4
        assert dataset["train"][0]["pixel_values"][0][0][0] >= 100

        old = hub.commits("org/tiny-lenses", "dataset")[0]
        assert load_lensing_dataset("org/tiny-lenses", revision=old)["train"].num_rows == 9


def test_load_errors(tmp_path):
    (tmp_path / "not_a_dataset").mkdir()
    with pytest.raises(FileNotFoundError, match="not a dataset folder"):
        load_lensing_dataset(tmp_path / "not_a_dataset")
    folder = build(tmp_path / "ds", 3, 1)
    with pytest.raises(ValueError, match="revision"):
        load_lensing_dataset(folder, revision="main")
    with local_hub(tmp_path / "hub"), pytest.raises(Exception, match="(?i)offline|cache|not found"):
        load_lensing_dataset("org/never-published")


def test_publish_refuses_a_folder_without_shards(tmp_path):
    (tmp_path / "README.md").write_text("---\n---\n")
    with pytest.raises(FileNotFoundError, match="data/"):
        publish_dataset(tmp_path, "org/x")


def test_publish_script(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "dataset_scripts" / "publish_dataset.py"
    spec = importlib.util.spec_from_file_location("publish_dataset", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder = build(tmp_path / "ds", 3, 1)
    with local_hub(tmp_path / "hub"):
        assert script.main([str(folder), "org/scripted"]) == 0
        assert "published" in capsys.readouterr().out
        assert load_lensing_dataset("org/scripted")["train"].num_rows == 3
