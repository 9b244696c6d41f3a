"""`recipes/evaluate.py --task knn`: the kNN evaluation of a saved pre-trained checkpoint."""

import json

import torch
from recipe_helpers import load_recipe

from hf_deeplense.image_processing_lens import LensImageProcessor
from hf_deeplense.models.mae import DeepLenseMAEConfig, DeepLenseMAEForPreTraining


def test_evaluate_knn_of_an_mae_checkpoint(tiny_dataset, tmp_path):
    torch.manual_seed(0)
    config = DeepLenseMAEConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        decoder_hidden_size=16, decoder_num_attention_heads=2,
    )  # fmt: skip
    DeepLenseMAEForPreTraining(config).save_pretrained(tmp_path / "mae")
    LensImageProcessor(num_channels=1, size=16, do_resize=True).save_pretrained(tmp_path / "mae")
    metrics = load_recipe("evaluate").main(
        [
            *("--model", str(tmp_path / "mae"), "--task", "knn", "--knn_k", "5"),
            *("--dataset", str(tiny_dataset), "--output_dir", str(tmp_path / "eval"), "--device", "cpu"),
        ]
    )
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["task"] == "knn" and saved["metrics"] == metrics
    assert {"knn_test_accuracy", "knn_test_auc_macro", "knn_test_auc_axion"} <= set(metrics)
    assert (tmp_path / "eval" / "plots" / "embedding_tsne_test.png").is_file()
