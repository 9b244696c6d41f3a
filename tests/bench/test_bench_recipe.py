"""bench/bench_recipe.py: metrics parsing, the random dataset, and a --smoke run of the real recipe."""

import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_recipe(load_bench):
    return load_bench("bench_recipe")


def test_read_train_metrics_prefers_saved_metrics(bench_recipe, tmp_path):
    (tmp_path / "train_results.json").write_text(
        json.dumps({"train_samples_per_second": 123.5, "train_runtime": 4.0, "epoch": 1.0})
    )
    log = "{'train_runtime': 9.0, 'train_samples_per_second': 1.0}"
    assert bench_recipe.read_train_metrics(tmp_path, log) == {
        "train_samples_per_second": 123.5,
        "train_runtime": 4.0,
    }


def test_read_train_metrics_from_the_log(bench_recipe, tmp_path):
    # Trainer prints the final metrics dict; log_metrics prints "key = value" lines: the last one wins
    log = (
        "{'loss': 1.0}\n{'train_runtime': 2.5, 'train_samples_per_second': 51.2, 'train_steps_per_second': 3.2}\n"
        "***** train metrics *****\n  train_runtime            = 0:00:02.50\n"
        "  train_samples_per_second =     52.0\n"
    )
    metrics = bench_recipe.read_train_metrics(tmp_path, log)
    assert metrics["train_samples_per_second"] == 52.0
    assert metrics["train_runtime"] == 2.5  # "0:00:02.50" is not a number: the dict's value is kept
    # transformers 5's PrinterCallback prints the values as strings
    quoted = "{'train_runtime': '0.0709', 'train_samples_per_second': '338.6', 'train_loss': '0.949'}"
    assert bench_recipe.read_train_metrics(tmp_path, quoted) == {
        "train_samples_per_second": 338.6,
        "train_runtime": 0.0709,
    }
    with pytest.raises(RuntimeError, match="no train_samples_per_second"):
        bench_recipe.read_train_metrics(tmp_path, "nothing logged")


def test_random_dataset_loads_in_the_project_format(bench_recipe, tmp_path):
    from hf_deeplense.data import load_lensing_dataset

    sizes = bench_recipe.SIZES["smoke"]
    path = bench_recipe.ensure_dataset(tmp_path, sizes)
    dataset = load_lensing_dataset(str(path), cache_dir=str(tmp_path / "cache"))
    assert dataset["train"].num_rows == sizes.num_examples
    row = dataset["train"].with_format("numpy")[0]
    assert row["pixel_values"].shape == (1, sizes.image_size, sizes.image_size)
    assert row["pixel_values"].min() >= 0 and row["pixel_values"].std() > 0
    assert bench_recipe.ensure_dataset(tmp_path, sizes) == path  # reused


@pytest.mark.skipif(
    not (REPO_ROOT / "recipes" / "pretrain_mae.py").is_file(),
    reason="recipes/pretrain_mae.py is not in the tree yet: nothing to launch",
)
@pytest.mark.slow
@pytest.mark.parametrize("data_on_device", [False, True])
def test_smoke_launches_the_mae_recipe(bench_recipe, tmp_path, data_on_device):
    path = tmp_path / "recipe.json"
    exit_code = bench_recipe.main(
        ["--smoke", "--cases", "pretrain_mae", "--work-dir", str(tmp_path / "work"), "--json", str(path)]
        + ["--data-on-device"] * data_on_device
    )
    (row,) = json.loads(path.read_text())["rows"]
    assert row["name"].endswith("/data-on-device") == data_on_device
    assert ("--data_on_device true" in row["command"]) == data_on_device
    assert exit_code == 0, row.get("error")
    assert row["recipe_samples_per_second"] > 0 and row["bare_samples_per_second"] > 0
    assert row["ratio"] == pytest.approx(row["recipe_samples_per_second"] / row["bare_samples_per_second"])
    assert row["runs"]["long"]["max_steps"] == bench_recipe.SIZES["smoke"].max_steps
    assert "recipes/pretrain_mae.py" in row["command"]


def test_study_sizes_and_resize_reach_the_recipe_command(bench_recipe, tmp_path):
    recipe, sizes = bench_recipe.RECIPES["finetune"], bench_recipe.SIZES["study"]
    arguments = bench_recipe.recipe_arguments(
        recipe, sizes, tmp_path / "data", tmp_path / "out", 10, data_on_device=True, image_size=32
    )
    values = dict(zip(arguments[::2], arguments[1::2]))
    assert json.loads(values["--model_config"]) == {  # the study's ViT (recipes/configs/study_cpu.yaml)
        "patch_size": 8,
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 128,
    }
    assert values["--image_size"] == "32" and values["--per_device_train_batch_size"] == "64"
    assert values["--data_on_device"] == "true" and values["--dataloader_num_workers"] == "0"
    default = bench_recipe.recipe_arguments(recipe, sizes, tmp_path / "data", tmp_path / "out", 10)
    assert "--image_size" not in default and "--data_on_device" not in default


@pytest.mark.skipif(
    not (REPO_ROOT / "recipes" / "finetune.py").is_file(),
    reason="recipes/finetune.py is not in the tree yet: nothing to launch",
)
@pytest.mark.slow
def test_smoke_launches_the_finetune_recipe_with_a_resize(bench_recipe, tmp_path):
    """`--image-size 8`: the recipe resizes the 16 px random images; the bare step times the saved 8 px model."""
    path = tmp_path / "recipe.json"
    exit_code = bench_recipe.main(
        ["--smoke", "--cases", "finetune", "--image-size", "8", "--work-dir", str(tmp_path / "work")]
        + ["--json", str(path)]
    )
    (row,) = json.loads(path.read_text())["rows"]
    assert exit_code == 0, row.get("error")
    assert row["name"] == "finetune/8px-p4-b8"
    assert "--image_size 8" in row["command"]
    assert row["recipe_samples_per_second"] > 0 and row["bare_samples_per_second"] > 0
