"""`--knn_eval` at the end of `pretrain_ssl` (SimCLR) / `pretrain_mae`, and `evaluate_pretrained` (kNN + linear probe) on
the saved checkpoint, in-process on the tiny random dataset."""

import json
from pathlib import Path

import pytest

from hf_deeplense.evaluation import evaluate_encoder
from hf_deeplense.study import evaluate_pretrained
from hf_deeplense.training import pretrain_mae, pretrain_ssl

CONFIGS = Path(__file__).resolve().parents[2] / "recipes" / "configs"
KNN_KEYS = {"knn_test_accuracy", "knn_test_auc_macro", "knn_test_auc_micro", "knn_test_auc_cdm"}


@pytest.mark.parametrize(
    "pretrain, config",
    [(pretrain_ssl, "tiny_simclr.yaml"), (pretrain_mae, "tiny_mae.yaml")],
    ids=["simclr", "mae"],
)
@pytest.mark.slow
def test_pretraining_with_knn_eval_writes_knn_metrics_and_the_embedding_map(
    pretrain, config, random_lensing_dataset, tmp_path
):
    output_dir = tmp_path / "run"
    returned = pretrain(
        [
            *("--config", str(CONFIGS / config), "--dataset", str(random_lensing_dataset)),
            *("--output_dir", str(output_dir), "--knn_eval", "true", "--knn_k", "5"),
        ]
    )
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert KNN_KEYS <= set(metrics) and "eval_loss" in metrics
    assert {key: metrics[key] for key in KNN_KEYS} == pytest.approx({key: returned[key] for key in KNN_KEYS})
    assert (output_dir / "plots" / "embedding_tsne_test.png").is_file()
    assert "plots/embedding_tsne_test.png" in (output_dir / "README.md").read_text()  # linked from the card
    # the figures are those of the saved model: the same kNN on the checkpoint folder
    again = evaluate_encoder(
        output_dir, random_lensing_dataset, k=5, plot=False, device="cpu", progress=False
    )
    assert again.metrics == pytest.approx(
        {key: value for key, value in metrics.items() if key.startswith("knn_")}
    )


def test_knn_eval_needs_a_dataset(tmp_path):
    with pytest.raises(ValueError, match="--knn_eval needs --dataset"):
        pretrain_ssl(
            [
                *("--config", str(CONFIGS / "tiny_simclr.yaml"), "--simulate", "model_ii"),
                *("--output_dir", str(tmp_path / "run"), "--knn_eval", "true"),
            ]
        )
    assert not (tmp_path / "run").exists()  # stopped before training


@pytest.mark.slow
def test_evaluate_pretrained_adds_a_linear_probe(random_lensing_dataset, tmp_path):
    checkpoint = tmp_path / "simclr"
    pretrain_ssl(
        [
            *("--config", str(CONFIGS / "tiny_simclr.yaml"), "--dataset", str(random_lensing_dataset)),
            *("--output_dir", str(checkpoint), "--max_steps", "2"),
        ]
    )
    metrics = evaluate_pretrained(
        checkpoint,
        random_lensing_dataset,
        tmp_path / "eval",
        linear_probe_args=["--config", str(CONFIGS / "tiny_finetune.yaml"), "--model_config", "{}"],
        k=5,
        device="cpu",
        progress=False,
    )
    assert KNN_KEYS <= set(metrics) and "linear_probe_test_auc_macro" in metrics
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == pytest.approx(metrics)
    assert (tmp_path / "eval" / "plots" / "embedding_tsne_test.png").is_file()
    probe_config = (tmp_path / "eval" / "linear_probe" / "run_config.yaml").read_text()
    assert "linear_probe: true" in probe_config and f"init_from: {checkpoint}" in probe_config
