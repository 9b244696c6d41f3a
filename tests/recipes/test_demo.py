"""`make demo` end to end at toy size: dataset build, MAE, fine-tuning, evaluation, summary line."""

import json
import re
import subprocess
import sys

import pytest
import torch
from recipe_helpers import CONFIGS, RECIPES, REPO, recipe_env
from transformers import AutoModel, AutoModelForImageClassification


def run_demo(tmp_path, *args):
    return subprocess.run(
        [
            sys.executable,
            str(RECIPES / "demo.py"),
            *("--output_dir", str(tmp_path / "demo"), "--n_per_class", "10", *args),
            *(
                "--mae_config",
                str(CONFIGS / "tiny_mae.yaml"),
                "--finetune_config",
                str(CONFIGS / "tiny_finetune.yaml"),
            ),
        ],
        cwd=REPO,
        env=recipe_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_demo_runs_every_step_and_prints_the_test_auc(tmp_path):
    result = run_demo(tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    match = re.search(r"test macro AUC: (\d\.\d\d)", result.stdout)
    assert match, result.stdout[-2000:]
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text())
    assert f"{summary['metrics']['test_auc_macro']:.2f}" == match.group(1)
    assert set(summary["seconds"]) == {"dataset", "mae_pretraining", "finetuning", "evaluation"}
    assert summary["preset"] == "deeplense_model_ii"
    baseline = summary["radial_profile_baseline"]["model_inputs"]["macro_auc"]
    assert re.search(
        rf"radial-profile baseline, same split: {baseline:.3f} on the model's inputs", result.stdout
    )
    assert "published DeepLense Model II" in result.stdout and "0.999" in result.stdout
    model_dir = tmp_path / "demo" / "model"
    classifier = AutoModelForImageClassification.from_pretrained(model_dir)
    assert classifier.config.num_labels == 3
    # AutoModel gives the fine-tuned encoder itself (the classifier's backbone weights, not a fresh init)
    encoder = AutoModel.from_pretrained(model_dir)
    backbone = getattr(classifier, classifier.base_model_prefix)
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, backbone.state_dict()[name]), name
    assert (model_dir / "README.md").is_file() and (tmp_path / "demo" / "data" / "README.md").is_file()
    assert (tmp_path / "demo" / "evaluation" / "plots" / "cam_test.png").is_file()


@pytest.mark.slow
def test_physical_preset_demo_says_what_it_shows(tmp_path):
    result = run_demo(tmp_path, "--preset", "model_ii")
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert "physical Model II preset" in result.stdout and "published DeepLense" not in result.stdout
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text())
    assert summary["preset"] == "model_ii" and summary["published"] is None
    assert '"preset": "model_ii"' in (tmp_path / "demo" / "data" / "README.md").read_text()
