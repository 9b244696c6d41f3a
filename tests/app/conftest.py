"""Fixtures of the demo-app tests: the app module and a tiny saved classifier."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from hf_deeplense.models.equivariant import (
    DeepLenseEquivariantConfig,
    DeepLenseEquivariantForImageClassification,
)

APP_PATH = Path(__file__).resolve().parents[2] / "app" / "app.py"
CLASS_NAMES = ["no_sub", "cdm", "axion"]


@pytest.fixture(scope="session")
def demo_app():
    spec = importlib.util.spec_from_file_location("deeplense_demo_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """An untrained 3-class C4 equivariant classifier (32 px input) saved with save_pretrained."""
    config = DeepLenseEquivariantConfig(
        group="C4",
        image_size=32,
        stage_channels=[4, 8],
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        id2label=dict(enumerate(CLASS_NAMES)),
        label2id={name: index for index, name in enumerate(CLASS_NAMES)},
    )
    torch.manual_seed(0)
    model_dir = tmp_path_factory.mktemp("tiny_model")
    DeepLenseEquivariantForImageClassification(config).save_pretrained(model_dir)
    return model_dir
