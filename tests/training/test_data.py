import dataclasses

import numpy as np
import pytest
import torch

from hf_deeplense.data import LensingAugment, LensingCollator, with_row_index
from hf_deeplense.data.selection import class_names_of, finite_target_rows, target_statistics
from hf_deeplense.training.data import (
    DataArguments,
    load_splits,
    make_image_processor,
    pretraining_data,
)


def test_data_arguments_need_one_source():
    with pytest.raises(ValueError, match="exactly one data source"):
        DataArguments()
    with pytest.raises(ValueError, match="exactly one data source"):
        DataArguments(dataset="x", simulate="model_ii")
    assert DataArguments(
        simulate="model_ii", simulation_overrides='{"image_size": 32}'
    ).simulation_overrides == {"image_size": 32}


def test_load_splits_filters_and_truncates(random_lensing_dataset):
    splits = load_splits(
        DataArguments(dataset=str(random_lensing_dataset), max_train_samples=9, classes=["cdm", "axion"])
    )
    train = splits["train"]
    assert len(train) == 9 and set(splits) == {"train", "validation", "test"}
    assert sorted(np.unique(train["label"]).tolist()) == [1, 2]  # ids in the full class list
    assert class_names_of(train) == ["no_sub", "cdm", "axion"]
    assert isinstance(train[0]["pixel_values"], np.ndarray)
    regression = finite_target_rows(splits["validation"], "log10_m_a")
    assert len(regression) == 4 and np.isfinite(regression["log10_m_a"]).all()
    mean, std = target_statistics(regression, "log10_m_a")
    assert -24 < mean < -22 and std > 0
    with pytest.raises(ValueError, match="unknown class"):
        load_splits(DataArguments(dataset=str(random_lensing_dataset), classes=["vortex"]))


def test_recipe_collator_processes_then_augments(random_lensing_dataset):
    splits = load_splits(DataArguments(dataset=str(random_lensing_dataset)))
    processor = make_image_processor(DataArguments(dataset="x", image_size=8), num_channels=1, image_size=16)
    rows = [splits["train"][i] for i in range(6)]
    batch = LensingCollator(processor)(rows)
    assert batch["pixel_values"].shape == (6, 1, 8, 8) and batch["labels"].dtype == torch.int64
    assert batch["pixel_values"].min() >= 0 and batch["pixel_values"].max() <= 1
    two = LensingCollator(processor, label_column=None, augment=LensingAugment(), two_views=True)(rows)
    assert set(two) == {"pixel_values", "pixel_values_2"}
    regression = LensingCollator(processor, label_column="log10_m_a")(
        [splits["train"][i] for i in range(20, 26)]
    )
    assert regression["labels"].dtype == torch.float32 and regression["labels"].shape == (6,)


def test_simulated_pretraining_data_evaluates_on_the_chosen_classes():
    args = DataArguments(
        simulate="model_ii", simulation_overrides={"image_size": 16}, num_simulated_eval=6, classes=["no_sub"]
    )
    data = pretraining_data(args)
    assert len(data.eval_set) == 6 and all(row["label"] == 0 for row in data.eval_set)
    every_class = pretraining_data(dataclasses.replace(args, classes=None)).eval_set
    assert {row["label"] for row in every_class} == {0, 1, 2}
    assert next(iter(data.train))["pixel_values"].shape == (1, 16, 16)


def test_pretraining_data_from_a_dataset_or_simulated(random_lensing_dataset):
    data = pretraining_data(DataArguments(dataset=str(random_lensing_dataset)))
    assert len(data.train) == 30 and len(data.eval_set) == 12  # the train and validation splits
    assert (data.num_channels, data.image_size) == (1, 16)
    assert data.source == f"`{random_lensing_dataset}`"
    simulated = pretraining_data(
        DataArguments(simulate="model_ii", simulation_overrides={"image_size": 12}, num_simulated_eval=3)
    )
    assert (simulated.num_channels, simulated.image_size) == (1, 12) and len(simulated.eval_set) == 3
    assert next(iter(simulated.train))["pixel_values"].shape == (1, 12, 12)
    assert "simulated on the fly (preset `model_ii`)" in simulated.source


def test_seeded_augmentation_depends_on_the_batch_rows_only(random_lensing_dataset):

    train = with_row_index(load_splits(DataArguments(dataset=str(random_lensing_dataset)))["train"])
    processor = make_image_processor(DataArguments(dataset="x"), num_channels=1, image_size=16)
    collator = LensingCollator(processor, augment=LensingAugment(noise_std=0.1), seed=0)
    rows = [train[i] for i in (3, 7, 11)]
    torch.manual_seed(1)
    first = collator(rows)["pixel_values"]
    torch.manual_seed(2)  # the global RNG does not matter
    torch.testing.assert_close(collator(rows)["pixel_values"], first)
    assert not torch.equal(collator(rows[::-1])["pixel_values"], first.flip(0))  # another batch, another draw
    other_seed = LensingCollator(processor, augment=LensingAugment(noise_std=0.1), seed=1)(rows)[
        "pixel_values"
    ]
    assert not torch.equal(other_seed, first)
