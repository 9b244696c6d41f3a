"""Every config of the pre-training, fine-tuning and anomaly recipes parses into its recipe's arguments."""

import runpy

import pytest
from recipe_helpers import CONFIGS, RECIPES

import hf_deeplense.training
from hf_deeplense.training import LensingTrainingArguments, parse_recipe_args
from hf_deeplense.training.data import DataArguments

RECIPE_OF_PREFIX = {
    "tiny_mae": ("pretrain_mae.py", "MAEArguments"),
    "mae_": ("pretrain_mae.py", "MAEArguments"),
    "demo_mae": ("pretrain_mae.py", "MAEArguments"),
    "tiny_simclr": ("pretrain_simclr.py", "SSLArguments"),
    "simclr_": ("pretrain_simclr.py", "SSLArguments"),
    "tiny_dino": ("pretrain_ssl.py", "SSLArguments"),
    "dino_": ("pretrain_ssl.py", "SSLArguments"),
    "tiny_byol": ("pretrain_ssl.py", "SSLArguments"),
    "byol_": ("pretrain_ssl.py", "SSLArguments"),
    "tiny_simsiam": ("pretrain_ssl.py", "SSLArguments"),
    "simsiam_": ("pretrain_ssl.py", "SSLArguments"),
    "tiny_finetune": ("finetune.py", "FinetuneArguments"),
    "tiny_regression": ("finetune.py", "FinetuneArguments"),
    "finetune_": ("finetune.py", "FinetuneArguments"),
    "regression_": ("finetune.py", "FinetuneArguments"),
    "demo_finetune": ("finetune.py", "FinetuneArguments"),
    "tiny_anomaly": ("anomaly.py", "AnomalyArguments"),
    "anomaly_": ("anomaly.py", "AnomalyArguments"),
}
CASES = [
    (path, *recipe)
    for path in sorted(CONFIGS.glob("*.yaml"))
    for prefix, recipe in RECIPE_OF_PREFIX.items()
    if path.name.startswith(prefix)
]


def test_every_model_preset_has_configs():
    names = {path.name for path, *_ in CASES}
    for model in ("model_i", "model_ii", "model_iii"):
        assert {f"mae_{model}.yaml", f"finetune_{model}.yaml"} <= names


@pytest.mark.parametrize(("path", "script", "arguments_class"), CASES, ids=[case[0].name for case in CASES])
def test_config_parses(path, script, arguments_class, tmp_path):
    runpy.run_path(str(RECIPES / script), run_name="config_check")  # the script imports
    recipe_args, data_args, training_args = parse_recipe_args(
        (getattr(hf_deeplense.training, arguments_class), DataArguments, LensingTrainingArguments),
        ["--config", str(path), "--dataset", "org/data", "--output_dir", str(tmp_path)],
    )
    assert data_args.dataset == "org/data" and training_args.remove_unused_columns is False
    if training_args.load_best_model_at_end:
        assert training_args.metric_for_best_model in (
            "auc_macro",
            "mean_absolute_error",
            "eval_auc_macro",
            "eval_mean_absolute_error",
        )
