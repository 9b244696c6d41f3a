"""Smoke test of recipes/domain_adapt.py on the tiny CPU config (source-only, DANN, ADDA)."""

import json
from pathlib import Path

import pytest
from recipe_helpers import load_recipe, run_recipe

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


def test_two_processes_train_every_method_with_ddp(tmp_path):
    config = ROOT / "recipes" / "configs" / "domain_adapt_tiny.yaml"
    output = run_recipe(
        "domain_adapt.py", "--config", str(config), "--output_dir", str(tmp_path), num_processes=2
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["target_auc"]) == {"source_only", "dann", "adda"}
    assert [len(saved["history"][method]) for method in ("source_only", "dann", "adda")] == [3, 3, 3]
    # 48 source rows, 24 per process in batches of 16: 2 batches an epoch, 1.5 epochs in 3 steps (1.0 in one process)
    assert saved["history"]["source_only"][-1]["epoch"] == 1.5
    assert output.count("adda on the target test set") == 1  # printed by the main process only


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


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """A Model A-like source and a blurrier, noisier Model B-like target, written to disk."""
    from hf_deeplense.data.build import build_simulated_dataset

    root = tmp_path_factory.mktemp("domains")
    common = {"n_per_class": 20, "split_fractions": (0.6, 0.0, 0.4), "image_size": 24, "write_card": False}
    source = build_simulated_dataset(root / "model_a", "model_ab", progress=False, **common)
    target = build_simulated_dataset(
        root / "model_b",
        "model_ab",
        seed=1,
        overrides={"psf_fwhm": (0.3,), "exposure_time": (100.0,)},
        progress=False,
        **common,
    )
    return source, target


@pytest.mark.parametrize(
    ("model_type", "model_config"),
    [
        ("deeplense_cnn", '{"architecture": "resnet18", "model_args": {"channels": [4, 8, 8, 16]}}'),
        (
            "deeplense_vit",
            '{"patch_size": 6, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, '
            '"intermediate_size": 24}',
        ),
    ],
)
def test_source_and_target_datasets_on_disk_with_cnn_and_vit(
    tmp_path, two_datasets, model_type, model_config
):
    source, target = two_datasets
    recipe = load_recipe("domain_adapt")
    config = ROOT / "recipes" / "configs" / "domain_adapt_tiny.yaml"
    results = recipe.main(
        ["--config", str(config), "--output_dir", str(tmp_path)]
        + ["--source_dataset", str(source), "--target_dataset", str(target)]
        + ["--model_type", model_type, "--model_config", model_config]
    )
    assert results["class_names"] == ["no_sub", "sphere", "vortex"]  # from the datasets, not a preset
    assert set(results["target_auc"]) == {"source_only", "dann", "adda"}
    assert all(0.0 <= auc <= 1.0 for auc in results["target_auc"].values())
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["arguments"]["source_dataset"] == str(source)


def test_load_domain_reads_the_labelled_split_and_standardises(two_datasets):
    from hf_deeplense.data.domains import load_domain

    source, _ = two_datasets
    images, labels, names = load_domain(str(source), "test", size=5)
    assert images.shape == (5, 1, 24, 24) and labels.shape == (5,) and names == ["no_sub", "sphere", "vortex"]
    assert images.mean(dim=(1, 2, 3)).abs().max() < 1e-5
    assert (images.std(dim=(1, 2, 3)) - 1).abs().max() < 1e-4
    with pytest.raises(ValueError, match="no 'validation' split"):
        load_domain(str(source), "validation")
