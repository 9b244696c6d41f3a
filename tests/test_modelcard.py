"""Model cards (`hf_deeplense.modelcard`) and the push_to_hub round trip of model + processor + card."""

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import ModelCard, constants
from transformers import AutoImageProcessor, AutoModel, AutoModelForImageClassification, pipeline

from hf_deeplense import (
    DeepLenseSimCLRConfig,
    DeepLenseViTConfig,
    DeepLenseViTForImageClassification,
    LensImageProcessor,
)
from hf_deeplense.modelcard import DEFAULT_TAGS, build_model_card, push_model_card
from hf_deeplense.testing_utils import local_hub

LABELS = ["axion", "cdm", "no_sub"]


def _tiny_config(**kwargs) -> DeepLenseViTConfig:
    return DeepLenseViTConfig(
        image_size=16,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        **kwargs,
    )


def _classifier_config() -> DeepLenseViTConfig:
    return _tiny_config(
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={name: index for index, name in enumerate(LABELS)},
    )


def _metadata(card: ModelCard) -> dict:
    return yaml.safe_load(str(card).split("---")[1])


def test_card_metadata_and_body():
    card = build_model_card(
        _classifier_config(),
        repo_id="org/tiny-vit",
        description="Tiny ViT trained on Model II.",
        datasets=["org/model-ii"],
        metrics={"accuracy": 0.875, "roc_auc_macro": np.float32(0.99)},
        training_config={"learning_rate": 3e-4, "image_size": (16, 16), "seed": np.int64(0)},
        plots={"ROC curves": "plots/roc.png", "Confusion matrix": "confusion.png"},
        tags=["vit", "lensing"],
        license="mit",
    )
    metadata = _metadata(card)
    assert metadata["library_name"] == "hf_deeplense"
    assert metadata["license"] == "mit"
    assert metadata["tags"] == DEFAULT_TAGS + ["vit"]  # no duplicates
    assert {"lensing", "dark-matter", "deeplense"} <= set(metadata["tags"])
    assert metadata["datasets"] == ["org/model-ii"]
    assert metadata["pipeline_tag"] == "image-classification"
    results = metadata["model-index"][0]["results"]
    assert len(results) == 1  # one task + dataset, two metrics
    assert [(metric["type"], metric["value"]) for metric in results[0]["metrics"]] == [
        ("accuracy", 0.875),
        ("roc_auc_macro", pytest.approx(0.99)),
    ]
    assert results[0]["dataset"] == {"name": "org/model-ii", "type": "org/model-ii", "split": "test"}
    # the card parses back with huggingface_hub, metadata included
    assert ModelCard(str(card)).data.eval_results[1].metric_value == pytest.approx(0.99)
    body = card.text
    assert "Tiny ViT trained on Model II." in body
    assert 'AutoModelForImageClassification.from_pretrained("org/tiny-vit")' in body
    assert "classes (3): axion, cdm, no_sub" in body
    assert "![ROC curves](plots/roc.png)" in body and "![Confusion matrix](confusion.png)" in body
    assert "learning_rate: 0.0003" in body and "| accuracy | 0.8750 |" in body


def test_regression_card_and_validation():
    card = build_model_card(_tiny_config(num_targets=1), repo_id="org/mass", task="regression")
    assert "hf_deeplense.AutoModelForLensRegression.from_pretrained" in card.text
    assert "pipeline_tag" not in _metadata(card) and "model-index" not in _metadata(card)
    with pytest.raises(ValueError, match="datasets"):
        build_model_card(_classifier_config(), repo_id="org/x", metrics={"accuracy": 0.5})
    with pytest.raises(ValueError, match="relative"):
        build_model_card(_classifier_config(), repo_id="org/x", plots={"roc": "/tmp/roc.png"})
    with pytest.raises(ValueError, match="relative"):
        build_model_card(_classifier_config(), repo_id="org/x", plots={"roc": "../roc.png"})
    with pytest.raises(ValueError, match="task"):
        build_model_card(_classifier_config(), repo_id="org/x", task="detection")


def test_push_to_hub_round_trip_model_processor_card(tmp_path):
    torch.manual_seed(0)
    model = DeepLenseViTForImageClassification(_classifier_config()).eval()
    processor = LensImageProcessor(size=16)
    repo_id = "org/tiny-deeplense-vit"
    card = build_model_card(
        model.config,
        repo_id=repo_id,
        datasets=["org/model-ii"],
        metrics={"accuracy": 0.5},
        plots={"ROC": "plots/roc.png"},
    )
    images = np.random.default_rng(0).random((3, 40, 40)).astype(np.float32)  # 3 grey images
    with local_hub(tmp_path) as hub:
        model.push_to_hub(repo_id)
        processor.push_to_hub(repo_id)
        push_model_card(card, repo_id)
        hub_files = set(hub.list_files(repo_id))
        assert {
            "config.json",
            "model.safetensors",
            "preprocessor_config.json",
            "README.md",
            "configuration_vit.py",
            "modeling_vit.py",
            "image_processing_lens.py",
        } <= hub_files

        assert constants.HF_HUB_OFFLINE  # everything below reads the local cache only
        reloaded = AutoModelForImageClassification.from_pretrained(repo_id).eval()
        reloaded_processor = AutoImageProcessor.from_pretrained(repo_id)
        assert isinstance(reloaded, DeepLenseViTForImageClassification)
        assert isinstance(reloaded_processor, LensImageProcessor)
        with torch.no_grad():
            expected = model(**processor(list(images), return_tensors="pt")).logits
            actual = reloaded(**reloaded_processor(list(images), return_tensors="pt")).logits
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)
        assert reloaded.config.id2label == model.config.id2label

        loaded_card = ModelCard.load(repo_id)
        assert loaded_card.data.library_name == "hf_deeplense"
        assert loaded_card.data.eval_results[0].metric_value == 0.5

        # pipeline by repo id, offline
        classifier = pipeline("image-classification", model=repo_id)
        top = classifier(images[0], top_k=1)[0]
        assert top["label"] == LABELS[int(expected[0].argmax())]
        assert top["score"] == pytest.approx(expected[0].softmax(-1).max().item(), rel=1e-5)

        # pushing the model again keeps our card: transformers reloads README.md from the (local) Hub
        model.push_to_hub(repo_id, commit_message="second push")
        assert ModelCard.load(repo_id).data.eval_results[0].metric_value == 0.5


def _loading_snippet(card: ModelCard) -> str:
    """The python block of the card's "How to use" section."""
    return card.text.split("## How to use")[1].split("```python\n")[1].split("\n```")[0]


def test_simclr_pretraining_card_snippet_loads_the_saved_model(tmp_path):
    """The loading code that a SimCLR pre-training run's card shows runs on the saved directory as written and
    gives back the trained model (the class pretrain_simclr.py builds and saves)."""
    torch.manual_seed(0)
    config = DeepLenseSimCLRConfig(
        backbone_config=_tiny_config(), projection_hidden_size=24, projection_dim=8
    )
    model = AutoModel.from_config(config).eval()  # as recipes/pretrain_simclr.py
    model.save_pretrained(tmp_path)
    LensImageProcessor(size=16).save_pretrained(tmp_path)
    card = build_model_card(model.config, repo_id=str(tmp_path), task="pretraining")
    images = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    namespace = {"images": list(images)}
    exec(_loading_snippet(card), namespace)
    loaded = namespace["model"]
    assert type(loaded) is type(model)
    with torch.no_grad():
        expected = model(**namespace["inputs"]).embeddings
    torch.testing.assert_close(namespace["outputs"].embeddings, expected, rtol=0, atol=0)
