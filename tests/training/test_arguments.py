import json
import re
from dataclasses import dataclass, field

import pytest
import torch
import yaml

from hf_deeplense.training.arguments import (
    LensingTrainingArguments,
    as_dict,
    load_config_file,
    parse_recipe_args,
)


@dataclass
class ModelArguments:
    model_type: str = field(metadata={"help": "which model"})
    hidden_size: int = field(default=32, metadata={"help": "width"})
    channels: list[int] = field(default_factory=lambda: [8, 16], metadata={"help": "widths"})


def test_house_defaults_without_config(tmp_path):
    model_args, training_args = parse_recipe_args(
        (ModelArguments, LensingTrainingArguments), ["--model_type", "vit", "--output_dir", str(tmp_path)]
    )
    assert model_args.model_type == "vit" and model_args.hidden_size == 32
    assert training_args.remove_unused_columns is False
    assert training_args.ddp_find_unused_parameters is False
    assert training_args.bf16 is (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        # on a CPU machine `accelerate launch --num_processes 2` forms a gloo DDP group only with use_cpu
        assert training_args.use_cpu is True


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_then_command_line_overrides(tmp_path, suffix):
    config = {
        "model_type": "cnn",
        "hidden_size": 64,
        "channels": [4, 4, 4],
        "learning_rate": 0.01,
        "output_dir": str(tmp_path / "run"),
        "report_to": ["tensorboard"],
        "remove_unused_columns": True,
    }
    path = tmp_path / f"run{suffix}"
    path.write_text(json.dumps(config) if suffix == ".json" else yaml.safe_dump(config))
    model_args, training_args = parse_recipe_args(
        (ModelArguments, LensingTrainingArguments),
        ["--config", str(path), "--hidden_size", "48", "--learning-rate", "0.5"],
    )
    assert (model_args.model_type, model_args.hidden_size, model_args.channels) == ("cnn", 48, [4, 4, 4])
    assert training_args.learning_rate == 0.5
    assert training_args.output_dir == str(tmp_path / "run")
    assert training_args.report_to == ["tensorboard"]
    assert training_args.remove_unused_columns is True  # the config beats the house default


def test_unknown_config_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model_type: vit\nhiden_size: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*hiden_size"):
        parse_recipe_args((ModelArguments, LensingTrainingArguments), ["--config", str(path)])
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        parse_recipe_args((ModelArguments,), ["--config", str(tmp_path / "missing.yaml")])


def test_lensing_training_arguments(tmp_path):
    args = LensingTrainingArguments(str(tmp_path), learning_rate=0.1)
    assert args.learning_rate == 0.1 and args.remove_unused_columns is False
    with pytest.raises(TypeError, match="learning_rat"):
        LensingTrainingArguments(str(tmp_path), learning_rat=0.1)


@pytest.mark.parametrize(
    ("config", "command_line", "expected"),
    [
        ({}, [], False),  # no workers: nothing to keep alive (and DataLoader refuses the flag)
        ({"dataloader_num_workers": 2}, [], True),
        ({}, ["--dataloader_num_workers", "2"], True),
        ({"dataloader_num_workers": 2, "dataloader_persistent_workers": False}, [], False),
        ({"dataloader_num_workers": 2}, ["--dataloader_persistent_workers", "false"], False),
        ({"dataloader_num_workers": 2}, ["--dataloader-persistent-workers=false"], False),
    ],
)
def test_persistent_workers_whenever_there_are_workers(tmp_path, config, command_line, expected):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"model_type": "vit", "output_dir": str(tmp_path / "run"), **config}))
    _, training_args = parse_recipe_args(
        (ModelArguments, LensingTrainingArguments), ["--config", str(path), *command_line]
    )
    assert training_args.dataloader_persistent_workers is expected


def test_lensing_training_arguments_persistent_workers(tmp_path):
    assert (
        LensingTrainingArguments(str(tmp_path), dataloader_num_workers=2).dataloader_persistent_workers
        is True
    )
    explicit = LensingTrainingArguments(
        str(tmp_path), dataloader_num_workers=2, dataloader_persistent_workers=False
    )
    assert explicit.dataloader_persistent_workers is False
    assert LensingTrainingArguments(str(tmp_path)).dataloader_persistent_workers is False


def test_a_config_file_that_is_not_a_mapping_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config_file(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- learning_rate\n- 0.1\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(listed))}: expected a mapping"):
        load_config_file(listed)
    broken = tmp_path / "broken.json"
    broken.write_text('{"learning_rate": 0.1,}')
    with pytest.raises(ValueError, match=re.escape(str(broken))):
        load_config_file(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n")
    assert load_config_file(empty) == {}


def test_as_dict_reads_mappings_json_and_yaml_text():
    assert as_dict(None) == {} and as_dict({"a": 1}) == {"a": 1}
    assert as_dict('{"hidden_size": 64}') == as_dict("hidden_size: 64") == {"hidden_size": 64}
    with pytest.raises(ValueError, match="expected a mapping"):
        as_dict("[1, 2]")
