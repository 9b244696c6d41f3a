"""`hf_deeplense.training.pretrain_mae` in-process on the tiny random dataset."""

import json
from pathlib import Path

from hf_deeplense.training import pretrain_mae

TINY_MAE = Path(__file__).resolve().parents[2] / "recipes" / "configs" / "tiny_mae.yaml"


def test_pretrain_mae_with_an_empty_evaluation_split(random_lensing_dataset, tmp_path):
    """An evaluation split without rows: no reconstruction figure, no evaluation during training; the run ends
    with its model and metrics (the figure's batch was drawn from an empty split: a NameError)."""
    output_dir = tmp_path / "mae"
    pretrain_mae(
        [
            *("--config", str(TINY_MAE), "--dataset", str(random_lensing_dataset)),
            *("--max_eval_samples", "0", "--eval_strategy", "no", "--output_dir", str(output_dir)),
        ]
    )
    assert (output_dir / "model.safetensors").exists()
    assert not (output_dir / "plots" / "mae_reconstructions.png").exists()
    assert isinstance(json.loads((output_dir / "metrics.json").read_text()), dict)
