"""A fine-tuning run killed with SIGKILL mid-epoch resumes from its last checkpoint and ends exactly as an
uninterrupted run: same weights, same metrics (CPU, full determinism, augmentation on)."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch
from recipe_helpers import CONFIGS, REPO, launch_command, recipe_env, run_recipe
from safetensors.torch import load_file

# 48 training rows, batch 16: 3 steps per epoch, so checkpoints at steps 4, 8, ... fall mid-epoch.
ARGS = (
    *("--config", str(CONFIGS / "tiny_finetune.yaml")),
    *("--max_steps", "16", "--save_steps", "4", "--eval_steps", "4", "--save_total_limit", "100"),
    *("--full_determinism", "--learning_rate", "3e-3"),
)
TIMINGS = ("runtime", "per_second")


def _complete_checkpoints(output_dir):
    """Checkpoints whose trainer_state.json (written last) exists, by step."""
    done = [path.parent for path in output_dir.glob("checkpoint-*/trainer_state.json")]
    return sorted(done, key=lambda path: int(path.name.split("-")[1]))


def _metrics(output_dir):
    metrics = json.loads((output_dir / "metrics.json").read_text())
    return {key: value for key, value in metrics.items() if not key.endswith(TIMINGS)}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tiny_dataset, tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    run_recipe("finetune.py", *ARGS, "--dataset", str(tiny_dataset), "--output_dir", str(reference_dir))

    process = subprocess.Popen(
        launch_command("finetune.py", *ARGS, "--dataset", str(tiny_dataset), "--output_dir", str(killed_dir)),
        cwd=REPO,
        env=recipe_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the launcher and its worker in one process group
    )
    try:
        deadline = time.monotonic() + 240
        while not _complete_checkpoints(killed_dir):
            assert process.poll() is None, "the run ended before it saved a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (killed_dir / "model.safetensors").exists(), "killed too late: the run had finished"
    last = _complete_checkpoints(killed_dir)[-1]
    step = int(last.name.split("-")[1])
    assert step % 3 != 0 and step < 16  # mid-epoch, before the end

    run_recipe(
        "finetune.py",
        *ARGS,
        *(
            "--dataset",
            str(tiny_dataset),
            "--output_dir",
            str(killed_dir),
            "--resume_from_checkpoint",
            str(last),
        ),
    )
    reference, resumed = (
        load_file(reference_dir / "model.safetensors"),
        load_file(killed_dir / "model.safetensors"),
    )
    assert reference.keys() == resumed.keys()
    for key in reference:
        torch.testing.assert_close(resumed[key], reference[key], rtol=1e-5, atol=1e-6, msg=key)
    reference_metrics, resumed_metrics = _metrics(reference_dir), _metrics(killed_dir)
    assert reference_metrics.keys() == resumed_metrics.keys()
    for key, value in reference_metrics.items():
        assert abs(resumed_metrics[key] - value) < 1e-5, key
    # the evaluations before the kill were restored from the checkpoint, the later ones redone alike
    history = [json.loads((path / "eval_history.json").read_text()) for path in (reference_dir, killed_dir)]
    assert [entry["step"] for entry in history[0]] == [entry["step"] for entry in history[1]]
    for before, after in zip(*history):
        assert abs(before["eval_loss"] - after["eval_loss"]) < 1e-5
