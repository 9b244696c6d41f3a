"""Gradient accumulation and two processes must train exactly like one process with the whole batch.

Regression (`accepts_loss_kwargs = False`) with plain SGD and no clipping: a loss scaled wrongly under
gradient accumulation (x4) or DDP (x2) would change the weights after the first step.
"""

import json

import pytest
import torch
from recipe_helpers import CONFIGS, load_recipe, run_recipe
from safetensors.torch import load_file


def _run(tiny_dataset, output_dir, *extra_args, num_processes=1):
    """One process: the recipe in this process; two: the recipe under `accelerate launch`."""
    args = ["--config", str(CONFIGS / "tiny_regression.yaml"), "--dataset", str(tiny_dataset)]
    args += ["--output_dir", str(output_dir), *extra_args]
    if num_processes == 1:
        load_recipe("finetune").main(args)
    else:
        run_recipe("finetune.py", *args, num_processes=num_processes)
    return load_file(output_dir / "model.safetensors"), json.loads((output_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_regression_gradient_accumulation_and_two_processes_match_one_big_batch(tiny_dataset, tmp_path):
    # 16 axion training rows: one optimizer step sees all of them in every setting
    reference, metrics = _run(tiny_dataset, tmp_path / "batch16")
    accumulated, _ = _run(
        tiny_dataset,
        tmp_path / "accumulate4",
        *("--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "4"),
    )
    distributed, distributed_metrics = _run(
        tiny_dataset, tmp_path / "ddp2", "--per_device_train_batch_size", "8", num_processes=2
    )
    initial = load_file(tmp_path / "batch16" / "model.safetensors")  # the keys
    assert set(accumulated) == set(distributed) == set(initial)
    for key in reference:
        torch.testing.assert_close(accumulated[key], reference[key], rtol=1e-4, atol=1e-5, msg=key)
        torch.testing.assert_close(distributed[key], reference[key], rtol=1e-4, atol=1e-5, msg=key)
    # regression artifacts: MAE in dex on the test split, scatter plot
    assert metrics["test_mean_absolute_error"] > 0 and "test_r2" in metrics
    assert (tmp_path / "batch16" / "plots" / "scatter_log10_m_a_test.png").is_file()
    assert abs(distributed_metrics["test_mean_absolute_error"] - metrics["test_mean_absolute_error"]) < 1e-4
