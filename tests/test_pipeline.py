"""`transformers.pipeline("image-classification")` with a saved DeepLense classifier and `LensImageProcessor`."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, pipeline
from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING

from hf_deeplense import (
    MODEL_REGISTRY,
    DeepLenseViTConfig,
    DeepLenseViTForImageClassification,
    LensImageProcessor,
)

LABELS = ["axion", "cdm", "no_sub"]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = DeepLenseViTConfig(
        image_size=16,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={name: index for index, name in enumerate(LABELS)},
    )
    path = tmp_path_factory.mktemp("classifier")
    DeepLenseViTForImageClassification(config).save_pretrained(path)
    LensImageProcessor(size=16).save_pretrained(path)
    return path


def _expected_scores(model_dir, image) -> dict[str, float]:
    model = DeepLenseViTForImageClassification.from_pretrained(model_dir).eval()
    pixels = LensImageProcessor.from_pretrained(model_dir)(image, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        probabilities = model(pixel_values=pixels).logits.softmax(-1)[0]
    return {LABELS[index]: probabilities[index].item() for index in range(len(LABELS))}


def _scores(result) -> dict[str, float]:
    return {entry["label"]: entry["score"] for entry in result}


def test_every_registered_model_type_resolves_lens_image_processor():
    for registration in MODEL_REGISTRY:
        assert IMAGE_PROCESSOR_MAPPING[registration.config_class]["torchvision"] is LensImageProcessor


def test_pipeline_accepts_arrays_tensors_pil_and_image_files(classifier_dir, tmp_path):
    classifier = pipeline("image-classification", model=str(classifier_dir))
    assert isinstance(classifier.image_processor, LensImageProcessor)
    rng = np.random.default_rng(0)

    image = rng.random((40, 40)).astype(np.float32)
    expected = _expected_scores(classifier_dir, image)
    result = classifier(image)
    assert [entry["label"] for entry in result] == sorted(expected, key=expected.get, reverse=True)
    for scores in (_scores(result), _scores(classifier(torch.from_numpy(image)))):
        assert scores == pytest.approx(expected, rel=1e-5)

    # PNG file and PIL image: the pipeline converts them to RGB; the grey model gets the channel mean back
    grey = (rng.random((40, 40)) * 255).astype(np.uint8)
    expected_grey = _expected_scores(classifier_dir, grey)
    Image.fromarray(grey).save(tmp_path / "lens.png")
    assert _scores(classifier(str(tmp_path / "lens.png"))) == pytest.approx(expected_grey, rel=1e-5)
    assert _scores(classifier(Image.fromarray(grey))) == pytest.approx(expected_grey, rel=1e-5)

    # a list gives one result per image; top_k is the pipeline's own option
    results = classifier([image, grey], top_k=1)
    assert len(results) == 2 and results[1][0]["label"] == max(expected_grey, key=expected_grey.get)


def test_pipeline_raises_for_nan_images(classifier_dir):
    classifier = pipeline("image-classification", model=str(classifier_dir))
    image = np.zeros((16, 16), dtype=np.float32)
    image[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        classifier(image)


def test_auto_image_processor_from_saved_model_dir(classifier_dir):
    processor = AutoImageProcessor.from_pretrained(classifier_dir)
    assert isinstance(processor, LensImageProcessor) and processor.size == 16
