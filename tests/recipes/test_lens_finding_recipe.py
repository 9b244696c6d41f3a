"""Smoke test of recipes/lens_finding.py on the tiny CPU config (simulated, and on a built dataset), and its
label-leakage guard."""

import gc
import json
from pathlib import Path

import pytest
from recipe_helpers import load_recipe

from hf_deeplense.data import load_lensing_dataset
from hf_deeplense.models.lensfinder import DeepLenseLensFinderConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--config", str(ROOT / "recipes" / "configs" / "lens_finding_tiny.yaml")]


@pytest.fixture
def frozen_heap():
    """accelerate calls gc.collect() around every train/evaluate; freezing the imported modules makes it cheap."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def test_tiny_run_compares_image_and_image_plus_meta(tmp_path, frozen_heap):
    recipe = load_recipe("lens_finding")
    results = recipe.main([*TINY, "--output_dir", str(tmp_path), "--train_size", "64", "--test_size", "48"])
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["variants"].keys() == results["variants"].keys() == {"image", "image+meta"}
    for metrics in saved["variants"].values():
        for key in ("roc_auc", "pr_auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
            assert 0.0 <= metrics[key] <= 1.0
        assert metrics["num_positives"] + metrics["num_negatives"] == 48
    # the rare class weighs more (balanced weights from the training labels)
    weights = saved["class_weights"]
    assert weights[1] > 1.0 > weights[0]
    image_only = DeepLenseLensFinderConfig.from_pretrained(tmp_path / "image" / "model")
    fused = DeepLenseLensFinderConfig.from_pretrained(tmp_path / "image+meta" / "model")
    assert image_only.num_meta_features == 0 and fused.num_meta_features == 6
    assert fused.class_weights == pytest.approx(weights)
    assert set(saved["single_feature_auc"]) == set(fused.meta_feature_names)


def test_simulator_meta_features_are_refused_as_label_leakage(tmp_path):
    recipe = load_recipe("lens_finding")
    with pytest.raises(ValueError, match="n_images"):
        recipe.main(
            [
                *TINY,
                "--output_dir",
                str(tmp_path),
                "--train_size",
                "48",
                "--test_size",
                "16",
                "--meta_features",
                "n_images",
            ]
        )


def test_eval_prevalence_quotes_pr_auc_at_the_deeplense_test_fraction(tmp_path, frozen_heap):
    recipe = load_recipe("lens_finding")
    args = [
        *TINY,
        "--output_dir",
        str(tmp_path),
        "--train_size",
        "64",
        "--test_size",
        "48",
        "--variants",
        "image",
    ]
    results = recipe.main([*args, "--eval_prevalence", "deeplense"])
    metrics = results["variants"]["image"]
    assert metrics["prevalence"] == pytest.approx(195 / 19650)  # not the split's own ~6 %
    assert metrics["num_positives"] / 48 > 0.02
    assert 0.0 <= metrics["pr_auc"] <= 1.0


def test_a_built_lens_finding_dataset_trains_and_tests_on_its_own_splits(tmp_path, frozen_heap):
    """`--dataset_dir`: the splits of a dataset built with the lens_finding preset (`build_sim.py`), not simulated."""
    from hf_deeplense.data.build import build_simulated_dataset

    dataset = build_simulated_dataset(
        tmp_path / "data", "lens_finding", n_per_class=24, image_size=32, lens_fraction=0.5, progress=False
    )
    recipe = load_recipe("lens_finding")
    output_dir = tmp_path / "out"
    results = recipe.main([*TINY, "--output_dir", str(output_dir), "--dataset_dir", str(dataset)])
    test_rows = len(load_lensing_dataset(str(dataset))["test"])
    for metrics in results["variants"].values():
        assert metrics["num_positives"] + metrics["num_negatives"] == test_rows
    assert (output_dir / "image+meta" / "model" / "config.json").is_file()
