"""kNN evaluation of pre-trained encoders: the vote against hand-written and scikit-learn references, embedding
extraction from saved SimCLR and MAE checkpoints, `evaluate_encoder` end to end."""

import matplotlib.image
import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from sklearn.neighbors import KNeighborsClassifier

from hf_deeplense.data import lensing_features
from hf_deeplense.evaluation import embed_dataset, evaluate_encoder, knn_classify, load_encoder
from hf_deeplense.evaluation.metrics import load_metric
from hf_deeplense.image_processing_lens import LensImageProcessor
from hf_deeplense.models.cnn import DeepLenseCNNConfig
from hf_deeplense.models.mae import DeepLenseMAEConfig, DeepLenseMAEForPreTraining
from hf_deeplense.models.simclr import DeepLenseSimCLRConfig, DeepLenseSimCLRModel

CLASS_NAMES = ["no_sub", "cdm", "axion"]


def reference_knn_votes(bank, bank_labels, queries, num_classes, k, temperature):
    """The weighted kNN vote, one query and one neighbour at a time."""
    votes = np.zeros((len(queries), num_classes))
    for row, query in enumerate(queries):
        similarities = [
            float(np.dot(query, item) / (np.linalg.norm(query) * np.linalg.norm(item))) for item in bank
        ]
        for neighbour in np.argsort(similarities)[::-1][:k]:
            votes[row, bank_labels[neighbour]] += np.exp(similarities[neighbour] / temperature)
        votes[row] /= votes[row].sum()
    return votes


def test_knn_classify_matches_a_loop_and_scikit_learn():
    generator = np.random.default_rng(0)
    bank, queries = generator.normal(size=(40, 6)), generator.normal(size=(9, 6))
    bank_labels = generator.integers(0, 3, size=40)
    votes = knn_classify(bank, bank_labels, queries, num_classes=3, k=5, temperature=0.1, chunk_size=4)
    np.testing.assert_allclose(votes, reference_knn_votes(bank, bank_labels, queries, 3, 5, 0.1), rtol=1e-5)
    # scikit-learn's kNN with the same weights (cosine distance d = 1 - similarity)
    sklearn_knn = KNeighborsClassifier(
        n_neighbors=5, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1 - d) / 0.1)
    ).fit(bank, bank_labels)
    np.testing.assert_allclose(votes, sklearn_knn.predict_proba(queries), rtol=1e-5)
    # torch inputs give the same votes; k beyond the bank's size uses the whole bank
    torch_votes = knn_classify(
        torch.from_numpy(bank), torch.from_numpy(bank_labels), torch.from_numpy(queries)
    )
    np.testing.assert_allclose(
        torch_votes, reference_knn_votes(bank, bank_labels, queries, 3, 20, 0.07), rtol=1e-5
    )
    whole = knn_classify(bank[:6], bank_labels[:6], queries, num_classes=3, k=20)
    np.testing.assert_allclose(
        whole, reference_knn_votes(bank[:6], bank_labels[:6], queries, 3, 6, 0.07), rtol=1e-5
    )


def _clusters(generator, per_class, dim=16, spread=0.3):
    centres = generator.normal(size=(3, dim))
    labels = np.repeat(np.arange(3), per_class)
    return centres[labels] + spread * generator.normal(size=(len(labels), dim)), labels


def test_knn_separates_clusters_and_is_at_chance_with_shuffled_labels():
    generator = np.random.default_rng(1)
    bank, bank_labels = _clusters(generator, 100)
    queries, labels = bank[::2] + 0.3 * generator.normal(size=bank[::2].shape), bank_labels[::2]
    metric = load_metric("lensing_classification")
    separable = metric.compute(predictions=knn_classify(bank, bank_labels, queries), references=labels)
    assert separable["accuracy"] > 0.95 and separable["auc_macro"] > 0.99
    shuffled_labels = generator.permutation(bank_labels)
    shuffled = metric.compute(predictions=knn_classify(bank, shuffled_labels, queries), references=labels)
    assert abs(shuffled["accuracy"] - 1 / 3) < 0.12 and abs(shuffled["auc_macro"] - 0.5) < 0.1


def _split(generator, per_class):
    labels = np.repeat(np.arange(3), per_class)
    images = generator.random((len(labels), 1, 16, 16), dtype=np.float32)
    images[:, :, 4:12, 4:12] += labels[:, None, None, None]  # the class sets the brightness of the centre
    features = lensing_features(CLASS_NAMES, image_shape=(1, 16, 16))
    return Dataset.from_dict({"pixel_values": images, "label": labels}, features=features).with_format(
        "numpy"
    )


@pytest.fixture(scope="module")
def splits():
    generator = np.random.default_rng(2)
    return DatasetDict({"train": _split(generator, 10), "test": _split(generator, 4)})


def _tiny_simclr():
    backbone = DeepLenseCNNConfig(image_size=16, model_args={"channels": [8, 8, 16, 16]})
    return DeepLenseSimCLRModel(DeepLenseSimCLRConfig(backbone_config=backbone, projection_hidden_size=16))


def _tiny_mae():
    return DeepLenseMAEForPreTraining(
        DeepLenseMAEConfig(
            image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            decoder_hidden_size=16, decoder_num_attention_heads=2,
        )
    )  # fmt: skip


@pytest.mark.parametrize(
    "make_model, pooled",
    [
        (_tiny_simclr, lambda model, images: model(images).embeddings),
        (
            _tiny_mae,
            lambda model, images: model.vit(images).pooler_output,
        ),  # the encoder, every patch visible
    ],
    ids=["simclr", "mae"],
)
def test_embeddings_of_a_saved_checkpoint(make_model, pooled, splits, tmp_path):
    torch.manual_seed(0)
    model = make_model().eval()
    processor = LensImageProcessor(num_channels=1, size=16, do_resize=True)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)

    encoder, loaded_processor = load_encoder(tmp_path)
    embeddings, labels = embed_dataset(
        encoder, splits["test"], loaded_processor, batch_size=5, progress=False
    )
    rows = splits["test"][:]
    images = processor(torch.from_numpy(rows["pixel_values"]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = pooled(model, images).numpy()
    assert embeddings.shape == expected.shape and embeddings.shape[0] == 12
    np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-5)  # the saved weights, not new ones
    assert labels.tolist() == rows["label"].tolist()
    assert not encoder.training and not any(
        p.requires_grad and p.grad is not None for p in encoder.parameters()
    )


def test_evaluate_encoder_scores_a_checkpoint_and_draws_its_embeddings(splits, tmp_path):
    torch.manual_seed(0)
    _tiny_simclr().save_pretrained(tmp_path / "simclr")
    LensImageProcessor(num_channels=1, size=16, do_resize=True).save_pretrained(tmp_path / "simclr")
    report = evaluate_encoder(
        tmp_path / "simclr", splits, k=5, output_dir=tmp_path / "eval", device="cpu", progress=False
    )
    keys = {
        f"knn_test_{name}"
        for name in ("accuracy", "auc_macro", "auc_micro", *(f"auc_{c}" for c in CLASS_NAMES))
    }
    assert set(report.metrics) == keys
    assert all(0.0 <= value <= 1.0 for value in report.metrics.values())
    # the same figures from the arrays: the checkpoint's embeddings, voted by knn_classify
    encoder, processor = load_encoder(tmp_path / "simclr")
    bank, bank_labels = embed_dataset(encoder, splits["train"], processor, progress=False)
    queries, labels = embed_dataset(encoder, splits["test"], processor, progress=False)
    votes = knn_classify(bank, bank_labels, queries, num_classes=3, k=5)
    assert report.metrics["knn_test_accuracy"] == pytest.approx(float((votes.argmax(1) == labels).mean()))
    image = matplotlib.image.imread(report.plots["embedding_tsne"])
    assert report.plots["embedding_tsne"].endswith("plots/embedding_tsne_test.png") and image.ndim == 3


def test_knn_votes_stay_finite_at_a_small_temperature():
    generator = np.random.default_rng(3)
    bank, queries = generator.normal(size=(30, 4)), generator.normal(size=(5, 4))
    bank_labels = np.arange(30) % 3
    votes = knn_classify(bank, bank_labels, queries, k=10, temperature=1e-3)  # exp(1 / T) overflows float64
    assert np.isfinite(votes).all() and np.allclose(votes.sum(1), 1)
    similarity = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
        bank / np.linalg.norm(bank, axis=1, keepdims=True)
    ).T
    first, second = np.sort(similarity, axis=1)[:, ::-1][:, :2].T
    clear = first - second > 0.02  # the others weigh < exp(-20) each: the vote is the nearest neighbour's
    assert clear.sum() >= 3
    assert (votes.argmax(1) == bank_labels[similarity.argmax(1)])[clear].all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_knn_on_cuda_matches_the_cpu():
    generator = np.random.default_rng(4)
    bank, queries = generator.normal(size=(500, 32)), generator.normal(size=(70, 32))
    bank_labels = generator.integers(0, 3, size=500)
    on_cpu = knn_classify(bank, bank_labels, queries, chunk_size=16)
    np.testing.assert_allclose(knn_classify(bank, bank_labels, queries, device="cuda"), on_cpu, rtol=1e-4)
