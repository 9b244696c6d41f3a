"""A recipe run keeps weights as safetensors, and resuming never unpickles a planted checkpoint file.

The Trainer's own checkpoint state (optimizer.pt, scheduler.pt, rng_state.pth) is torch-pickled; transformers
5.23 reads it back with `torch.load(weights_only=True)`, which refuses a payload."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from reliability_helpers import RECIPES, SPLIT_SIZES, load_recipe, write_split_arrays

from hf_deeplense.data.card import write_dataset_card

CONFIG = str(RECIPES / "configs" / "tiny_finetune.yaml")

TRAINER_STATE = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"}


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def finetune_run(tmp_path_factory):
    """Two steps of the tiny fine-tuning recipe, a checkpoint after each."""
    root = tmp_path_factory.mktemp("checkpoint_safety")
    dataset = _dataset(root)
    output_dir = root / "run"
    load_recipe("finetune").main(
        [
            *("--config", CONFIG),
            *("--dataset", str(dataset), "--output_dir", str(output_dir)),
            *("--max_steps", "2", "--save_steps", "1", "--eval_steps", "1", "--save_total_limit", "5"),
        ]
    )
    return dataset, output_dir


def _dataset(root):
    rng = np.random.default_rng(0)
    for split, num_rows in SPLIT_SIZES.items():
        write_split_arrays(root / "data_set", split, rng.random((num_rows, 1, 16, 16), dtype=np.float32))
    write_dataset_card(root / "data_set", title="tiny")
    return root / "data_set"


def test_run_writes_weights_only_as_safetensors(finetune_run):
    _, output_dir = finetune_run
    for folder in (output_dir, output_dir / "checkpoint-1", output_dir / "checkpoint-2"):
        files = set(os.listdir(folder))
        assert "model.safetensors" in files, folder
        pickled = {name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))}
        assert pickled <= TRAINER_STATE, f"{folder}: {pickled - TRAINER_STATE}"


def test_resume_never_unpickles_a_planted_checkpoint(finetune_run, tmp_path):
    dataset, output_dir = finetune_run
    checkpoint = output_dir / "checkpoint-1"
    marker = tmp_path / "pwned"
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"state": Payload(marker)}, checkpoint / name)
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        load_recipe("finetune").main(
            [
                *("--config", CONFIG),
                *("--dataset", str(dataset), "--output_dir", str(tmp_path / "resumed")),
                *("--max_steps", "2", "--save_steps", "1", "--eval_steps", "1"),
                *("--resume_from_checkpoint", str(checkpoint)),
            ]
        )
    assert not marker.exists()
    torch.load(checkpoint / "optimizer.pt", weights_only=False)  # control: the payload is live
    assert marker.exists()
