import json

import numpy as np
import pytest
import yaml
from datasets import load_dataset

from hf_deeplense.data import dataset_statistics, lensing_features, write_dataset_card, write_split

CLASSES = ["no", "sphere", "vort"]
FEATURES = lensing_features(CLASSES, (1, 4, 4), ["subhalo_mass_fraction"])


def write(out_dir, split, labels):
    labels = np.asarray(labels)

    def make_shard(i):
        part = labels[i::2]
        return {
            "pixel_values": np.full((len(part), 1, 4, 4), i, np.float32),
            "label": part,
            "subhalo_mass_fraction": np.zeros(len(part), np.float32),
        }

    write_split(out_dir, split, 2, make_shard, FEATURES, progress=False)


def read_card(path):
    text = path.read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def test_card_counts_features_and_loading(tmp_path):
    write(tmp_path, "test", [0, 1])
    write(tmp_path, "train", [0, 0, 1, 2, 2, 2])
    write(tmp_path, "validation", [1, 2, 0])
    path = write_dataset_card(
        tmp_path,
        title="Common Test I",
        description="Converted.",
        parameters={"seed": 3, "val_frac": 0.1},
        parameters_heading="Conversion parameters",
        summary="skipped 1 file:\n  bad.npy: NaN",
        images=[("images/grid.png", "examples")],
        extra_sections={"Citation": "DeepLense, ML4SCI."},
    )
    header, body = read_card(path)
    assert [s["split"] for s in header["configs"][0]["data_files"]] == ["train", "validation", "test"]
    assert header["configs"][0]["data_files"][0]["path"] == "data/train-*"
    splits = {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}
    assert splits == {"train": 6, "validation": 3, "test": 2}
    names = header["dataset_info"]["features"][1]["dtype"]["class_label"]["names"]
    assert list(names.values()) == CLASSES
    assert "| sphere | 1 | 1 | 1 |" in body and "| vort | 3 | 1 | 0 |" in body
    assert "| **total** | 6 | 3 | 2 |" in body
    parameters = json.loads(body.split("## Conversion parameters")[1].split("```json")[1].split("```")[0])
    assert parameters == {"seed": 3, "val_frac": 0.1}
    assert "bad.npy: NaN" in body and "![examples](images/grid.png)" in body and "## Citation" in body

    dataset = load_dataset(str(tmp_path))  # split sizes in the card are verified by datasets
    assert {k: v.num_rows for k, v in dataset.items()} == splits
    assert dataset["train"].features == FEATURES


def test_statistics(tmp_path):
    write(tmp_path, "train", [2, 2, 1])
    stats = dataset_statistics(tmp_path)
    assert stats["class_names"] == CLASSES
    assert stats["splits"]["train"]["per_class"] == {"no": 0, "sphere": 1, "vort": 2}
    assert stats["splits"]["train"]["num_shards"] == 2


def test_no_shards_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no shard"):
        write_dataset_card(tmp_path, title="x")


def test_mixed_features_are_refused(tmp_path):
    write(tmp_path, "train", [0, 1])
    other = lensing_features(CLASSES, (1, 4, 4))
    write_split(
        tmp_path,
        "test",
        1,
        lambda i: {"pixel_values": np.zeros((1, 1, 4, 4)), "label": [0]},
        other,
        progress=False,
    )
    with pytest.raises(ValueError, match="features"):
        write_dataset_card(tmp_path, title="x")
