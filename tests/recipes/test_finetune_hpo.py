"""The `hpo:` option of recipes/finetune.py: a tiny Optuna search, then the final run with the best values."""

import json
import subprocess

import pytest
import yaml
from recipe_helpers import CONFIGS, REPO, launch_command, recipe_env, run_recipe

SEARCH = {
    "n_trials": 2,
    "direction": "maximize",
    "metric": "eval_auc_macro",
    "seed": 0,
    "search_space": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
}


@pytest.mark.slow
def test_finetune_hyperparameter_search(tiny_dataset, tmp_path):
    """One process: the study, then the final run with the best values. (The search itself is also tested with a
    plain Trainer in tests/training/test_hpo.py.)"""
    output_dir = tmp_path / "run"
    run_recipe(
        "finetune.py",
        *("--config", str(CONFIGS / "tiny_finetune.yaml"), "--dataset", str(tiny_dataset)),
        *("--output_dir", str(output_dir), "--hpo", json.dumps(SEARCH)),
    )
    trials = json.loads((output_dir / "hpo" / "trials.json").read_text())
    assert [trial["state"] for trial in trials] == ["COMPLETE", "COMPLETE"]
    best = json.loads((output_dir / "hpo" / "best_run.json").read_text())
    assert best["objective"] == max(trial["value"] for trial in trials)
    # the final model was trained with the best trial's learning rate
    run_config = yaml.safe_load((output_dir / "run_config.yaml").read_text())
    assert run_config["learning_rate"] == pytest.approx(best["hyperparameters"]["learning_rate"])
    assert "test_auc_macro" in json.loads((output_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_hyperparameter_search_under_ddp_is_refused(tiny_dataset, tmp_path):
    """Two processes (gloo): the search runs in one process only, and says so before training anything."""
    result = subprocess.run(
        launch_command(
            "finetune.py",
            *("--config", str(CONFIGS / "tiny_finetune.yaml"), "--dataset", str(tiny_dataset)),
            *("--output_dir", str(tmp_path / "run"), "--hpo", json.dumps(SEARCH)),
            num_processes=2,
        ),
        cwd=REPO,
        env=recipe_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "the hyperparameter search runs in one process, not 2" in result.stderr
    assert not (tmp_path / "run" / "hpo" / "trials.json").exists()
