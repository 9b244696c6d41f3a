"""recipes/finetune.py --init_from: the checkpoint's architecture wins; `model_config` may only change
fine-tuning fields (dropouts, the head) and names the field when it tries to change the architecture."""

import runpy

import pytest
import torch
import yaml
from recipe_helpers import CONFIGS, RECIPES
from transformers import AutoModelForImageClassification

from hf_deeplense import DeepLenseViTConfig, DeepLenseViTForImageClassification

FINETUNE = runpy.run_path(str(RECIPES / "finetune.py"), run_name="finetune")


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny 16 px ViT classifier: tiny_finetune.yaml's model_config but with ONE layer (the file asks for two)."""
    torch.manual_seed(0)
    architecture = yaml.safe_load((CONFIGS / "tiny_finetune.yaml").read_text())["model_config"]
    assert architecture["num_hidden_layers"] == 2
    config = DeepLenseViTConfig(image_size=16, **{**architecture, "num_hidden_layers": 1}, num_labels=2)
    DeepLenseViTForImageClassification(config).save_pretrained(tmp_path / "checkpoint")
    return tmp_path / "checkpoint"


def finetune_args(tiny_dataset, checkpoint, output_dir, *extra):
    return [
        *("--config", str(CONFIGS / "tiny_finetune.yaml"), "--dataset", str(tiny_dataset)),
        *("--init_from", str(checkpoint), "--output_dir", str(output_dir)),
        *extra,
    ]


def test_config_file_architecture_differing_from_the_checkpoint_raises(tiny_dataset, checkpoint, tmp_path):
    args = finetune_args(tiny_dataset, checkpoint, tmp_path / "run")
    with pytest.raises(ValueError, match="num_hidden_layers=2, but checkpoint .* has num_hidden_layers=1"):
        FINETUNE["main"](args)


def test_fine_tuning_fields_override_the_checkpoint(tiny_dataset, checkpoint, tmp_path):
    model_config = '{"classifier_dropout_prob": 0.2, "hidden_size": 32}'  # hidden_size: the checkpoint's
    args = finetune_args(
        tiny_dataset, checkpoint, tmp_path / "run", "--model_config", model_config, "--max_steps", "1"
    )
    args += ["--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]
    FINETUNE["main"](args)
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "run")
    assert model.config.classifier_dropout_prob == 0.2
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (1, 32)
    assert model.config.id2label == {0: "no_sub", 1: "cdm", 2: "axion"}
