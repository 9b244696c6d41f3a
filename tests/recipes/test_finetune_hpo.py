"""The `hpo:` option of recipes/finetune.py: a tiny Optuna search, then the final run with the best values."""

import json

import pytest
import yaml
from recipe_helpers import CONFIGS, run_recipe

SEARCH = {
    "n_trials": 2,
    "direction": "maximize",
    "metric": "eval_auc_macro",
    "seed": 0,
    "search_space": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
}


@pytest.mark.parametrize(
    "num_processes",
    [
        1,
        # Under DDP on 2 loaded cores rank 1 sometimes aborts ("terminate called without an active exception")
        # right after the last trial, while following rank 0's trials (seen twice in full-suite runs, the
        # second time after 53f37c2 made the recipes destroy their process group at exit: that exit-time abort
        # is a real, separate one). Not yet understood; passes when run alone (34 of 34).
        pytest.param(2, marks=pytest.mark.unstable),
    ],
)
def test_finetune_hyperparameter_search(tiny_dataset, tmp_path, num_processes):
    """One process, and two (gloo): rank 0 runs the study, the other rank follows its trials and gets the best
    run. (The search itself is also tested with a plain Trainer in tests/training/test_hpo.py.)"""
    output_dir = tmp_path / "run"
    run_recipe(
        "finetune.py",
        *("--config", str(CONFIGS / "tiny_finetune.yaml"), "--dataset", str(tiny_dataset)),
        *("--output_dir", str(output_dir), "--hpo", json.dumps(SEARCH)),
        num_processes=num_processes,
    )
    trials = json.loads((output_dir / "hpo" / "trials.json").read_text())
    assert [trial["state"] for trial in trials] == ["COMPLETE", "COMPLETE"]
    best = json.loads((output_dir / "hpo" / "best_run.json").read_text())
    assert best["objective"] == max(trial["value"] for trial in trials)
    # the final model was trained with the best trial's learning rate
    run_config = yaml.safe_load((output_dir / "run_config.yaml").read_text())
    assert run_config["learning_rate"] == pytest.approx(best["hyperparameters"]["learning_rate"])
    assert "test_auc_macro" in json.loads((output_dir / "metrics.json").read_text())
