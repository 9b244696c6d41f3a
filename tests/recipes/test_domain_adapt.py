"""Smoke test of recipes/domain_adapt.py on the tiny CPU config (source-only, DANN, ADDA)."""

import json
from pathlib import Path

import pytest
from recipe_helpers import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_run_reports_target_auc_per_method(tmp_path):
    recipe = load_recipe("domain_adapt")
    config = ROOT / "recipes" / "configs" / "domain_adapt_tiny.yaml"
    results = recipe.main(["--config", str(config), "--output_dir", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["target_auc"]) == set(results["target_auc"]) == {"source_only", "dann", "adda"}
    assert all(0.0 <= auc <= 1.0 for auc in saved["target_auc"].values())
    assert 0.0 <= saved["source_test_auc"] <= 1.0
    assert saved["class_names"] == ["no_sub", "cdm", "axion"]
    assert [len(saved["history"][method]) for method in ("source_only", "dann", "adda")] == [3, 3, 3]


def test_mismatched_domains_are_refused(tmp_path):
    recipe = load_recipe("domain_adapt")
    config = ROOT / "recipes" / "configs" / "domain_adapt_tiny.yaml"
    with pytest.raises(ValueError, match="image shape"):
        recipe.main(
            [
                "--config",
                str(config),
                "--output_dir",
                str(tmp_path),
                "--target_overrides",
                '{"image_size": 20}',
            ]
        )
