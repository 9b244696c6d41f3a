"""The recipes' data loading and configuration: bad input fails with an error naming the file or field.

The fine-tuning recipe's `main` runs in-process on tiny hand-written datasets (16 px, 12 training rows)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from reliability_helpers import load_recipe, write_split_arrays

# One optimizer step, no checkpoints: the data errors show up before or during the first evaluation.
QUICK = (
    *("--max_steps", "1", "--save_strategy", "no", "--eval_strategy", "no"),
    *("--load_best_model_at_end", "false", "--report_to", "none"),
)


@pytest.fixture(scope="module")
def finetune():
    return load_recipe("finetune").main


@pytest.fixture(scope="module")
def tiny_config():
    return str(load_recipe("finetune").__file__).replace("finetune.py", "configs/tiny_finetune.yaml")


def run(finetune, tiny_config, tmp_path, *args):
    return finetune(["--config", tiny_config, *QUICK, "--output_dir", str(tmp_path / "run"), *args])


def test_empty_folder_is_named(finetune, tiny_config, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        run(finetune, tiny_config, tmp_path, "--dataset", str(empty))


def test_missing_folder_is_named(finetune, tiny_config, tmp_path):
    """A path that does not exist is read as a Hub repo id; the error (HFValidationError) still names it."""
    missing = tmp_path / "no_such_dataset"
    with pytest.raises(ValueError, match=re.escape(str(missing))):
        run(finetune, tiny_config, tmp_path, "--dataset", str(missing))


def test_dataset_folder_without_parquet_is_named(finetune, tiny_config, tmp_path):
    folder = tmp_path / "no_parquet"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# empty\n")
    with pytest.raises(Exception, match=re.escape(str(folder))) as error:
        run(finetune, tiny_config, tmp_path, "--dataset", str(folder))
    assert "data files" in str(error.value)


def test_unknown_config_field_names_the_file_and_the_field(finetune, tmp_path, make_dataset):
    config = tmp_path / "run.yaml"
    config.write_text("task: classification\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(config))}.*learning_rat"):
        finetune(["--config", str(config), "--output_dir", str(tmp_path / "run"), "--dataset", "unused"])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--task", "clasification"), "task"),
        (("--normalization", "bogus"), "normalization"),
        (("--model_config", '{"patch_size": 5}'), "patch_size"),  # 16 px images, 5 px patches
        (("--classes", "no_sub", "vortex"), "vortex"),
    ],
)
def test_invalid_field_value_is_named(finetune, tiny_config, tmp_path, make_dataset, args, field):
    dataset = make_dataset("good")
    with pytest.raises(ValueError, match=field):
        run(finetune, tiny_config, tmp_path, "--dataset", str(dataset), *args)


def test_invalid_field_in_config_file_is_named(finetune, tmp_path, make_dataset):
    dataset = make_dataset("good")
    config = tmp_path / "run.yaml"
    config.write_text("task: classification\nmodel_type: deeplense_vit\nmodel_config:\n  patch_size: 5\n")
    with pytest.raises(ValueError, match="patch_size"):
        finetune(
            [
                "--config",
                str(config),
                *QUICK,
                "--output_dir",
                str(tmp_path / "run"),
                "--dataset",
                str(dataset),
            ]
        )


def test_nan_pixels_name_the_dataset(finetune, tiny_config, tmp_path, make_dataset):
    dataset = make_dataset("nan_pixels", nan_row=1)
    with pytest.raises(ValueError, match=re.escape(str(dataset))):
        run(finetune, tiny_config, tmp_path, "--dataset", str(dataset))


def test_nan_pixels_never_train_silently(finetune, tiny_config, tmp_path, make_dataset):
    """What holds today: a NaN pixel stops the run with a NaN/inf error instead of a NaN loss."""
    dataset = make_dataset("nan_pixels", nan_row=1)
    with pytest.raises(ValueError, match="NaN"):
        run(finetune, tiny_config, tmp_path, "--dataset", str(dataset))
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_mismatched_image_size_names_the_shard(finetune, tiny_config, tmp_path, make_dataset):
    dataset = make_dataset("mixed_sizes")
    write_split_arrays(dataset, "validation", np.zeros((6, 1, 20, 20), np.float32), overwrite=True)
    with pytest.raises(ValueError, match=r"validation.*(16, 16)|(16, 16).*validation"):
        run(finetune, tiny_config, tmp_path, "--dataset", str(dataset))


def test_mismatched_image_size_fails(finetune, tiny_config, tmp_path, make_dataset):
    """What holds today: the run fails rather than training or evaluating on reshaped garbage."""
    dataset = make_dataset("mixed_sizes")
    write_split_arrays(dataset, "validation", np.zeros((6, 1, 20, 20), np.float32), overwrite=True)
    with pytest.raises(ValueError):
        run(finetune, tiny_config, tmp_path, "--dataset", str(dataset))
    assert not (tmp_path / "run" / "metrics.json").exists()


CONFIG_RECIPES = [
    "finetune",
    "pretrain_mae",
    "pretrain_simclr",
    "anomaly",
    "evaluate",
    "lens_finding",
    "domain_adapt",
]
DATASET_RECIPES = ["finetune", "pretrain_mae", "pretrain_simclr", "anomaly"]


@pytest.mark.parametrize("recipe", CONFIG_RECIPES)
def test_every_recipe_names_an_unknown_config_key(recipe, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("seed: 0\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(config))}.*learning_rat"):
        load_recipe(recipe).main(["--config", str(config), "--output_dir", str(tmp_path / "run")])


@pytest.mark.parametrize("recipe", DATASET_RECIPES)
def test_every_dataset_recipe_names_an_empty_folder(recipe, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        load_recipe(recipe).main([*QUICK, "--dataset", str(empty), "--output_dir", str(tmp_path / "run")])
