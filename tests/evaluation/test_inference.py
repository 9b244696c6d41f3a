import numpy as np
import torch

from hf_deeplense.data import LensingCollator
from hf_deeplense.evaluation.inference import anomaly_scores, predict_dataset
from hf_deeplense.models.mae import DeepLenseMAEConfig, DeepLenseMAEForPreTraining
from hf_deeplense.models.vit import DeepLenseViTConfig, DeepLenseViTForImageClassification

TINY = {
    "image_size": 16,
    "patch_size": 4,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
}


def _rows(count=7):
    generator = np.random.default_rng(0)
    return [
        {"pixel_values": generator.random((1, 16, 16), dtype=np.float32), "label": index % 3}
        for index in range(count)
    ]


def test_predict_dataset_matches_one_big_batch():
    torch.manual_seed(0)
    model = DeepLenseViTForImageClassification(DeepLenseViTConfig(**TINY)).eval()
    rows = _rows()
    logits, labels = predict_dataset(model, rows, LensingCollator(), batch_size=3, progress=False)
    expected = model(pixel_values=torch.from_numpy(np.stack([row["pixel_values"] for row in rows]))).logits
    np.testing.assert_allclose(logits, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_anomaly_scores_do_not_depend_on_batching():
    torch.manual_seed(0)
    model = DeepLenseMAEForPreTraining(
        DeepLenseMAEConfig(**TINY, decoder_hidden_size=16, decoder_num_attention_heads=2)
    )
    rows = _rows()
    small, labels = anomaly_scores(model, rows, LensingCollator(), batch_size=2, progress=False)
    large, _ = anomaly_scores(model, rows, LensingCollator(), batch_size=7, progress=False)
    np.testing.assert_allclose(small, large, rtol=1e-5)
    assert small.shape == (7,) and (small > 0).all() and labels.shape == (7,)
