"""Recipe arguments: dataclasses from a YAML/JSON config with command-line overrides, and
`TrainingArguments` with the defaults every lensing run needs.

Precedence, lowest to highest: dataclass defaults, `house_training_defaults()` (bf16 where a GPU
supports it, fp32 on CPU; `remove_unused_columns=False`; `ddp_find_unused_parameters=False`), the
config file (`--config run.yaml`), then the command line (`--learning_rate 1e-3`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments

__all__ = [
    "house_training_defaults",
    "load_config_file",
    "make_training_arguments",
    "parse_recipe_args",
    "with_persistent_workers",
]


def _bf16_available() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _cpu_only() -> bool:
    return not torch.cuda.is_available() and not torch.backends.mps.is_available()


def house_training_defaults() -> dict[str, Any]:
    """`TrainingArguments` values that differ from transformers' defaults for every lensing run.

    - `bf16`: on where a CUDA device supports it, off (fp32) on CPU.
    - `remove_unused_columns=False`: the `LensingCollator` builds the model inputs itself.
    - `ddp_find_unused_parameters=False`: no unused parameters in our models; faster DDP.
    - `report_to="none"`: trackers are opt-in (tensorboard, wandb, trackio in the config).
    - `dataloader_pin_memory`: only with a CUDA device.
    - `use_cpu` on machines without an accelerator: without it, `accelerate launch --multi_gpu
      --num_processes 2` on a CPU machine starts two ranks that each train alone (accelerate's state is
      `DistributedType.NO`, every rank believes it is the main process); with it they form one
      gloo DDP group (`DistributedType.MULTI_CPU`).

    Not a plain default, because it depends on another field: `dataloader_persistent_workers` is switched on
    whenever `dataloader_num_workers > 0` and it was not set explicitly (`with_persistent_workers`).
    """
    return {
        "bf16": _bf16_available(),
        "remove_unused_columns": False,
        "ddp_find_unused_parameters": False,
        "report_to": "none",
        "dataloader_pin_memory": torch.cuda.is_available(),
        "use_cpu": _cpu_only(),
    }


def _training_defaults_for(fields: set[str]) -> dict[str, Any]:
    return {key: value for key, value in house_training_defaults().items() if key in fields}


PERSISTENT_WORKERS = "dataloader_persistent_workers"


def with_persistent_workers(training_args: TrainingArguments, explicit: bool) -> TrainingArguments:
    """Keep DataLoader workers alive between epochs and evaluations when there are workers, unless
    `dataloader_persistent_workers` was set `explicit`ly. Without it every epoch and every evaluation starts
    its workers again: measured on a tiny CPU run (30 epochs of 64 images, 2 workers), 14.9 s of training
    instead of 1.0 s; a 1%-label run (a few steps an epoch, hundreds of epochs) spends most of its time there."""
    if not explicit and training_args.dataloader_num_workers > 0:
        training_args.dataloader_persistent_workers = True
    return training_args


def make_training_arguments(output_dir: str, **overrides: Any) -> TrainingArguments:
    """`TrainingArguments(output_dir, **house_training_defaults(), **overrides)`, then `with_persistent_workers`."""
    fields = {field.name for field in dataclasses.fields(TrainingArguments)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown TrainingArguments field(s): {sorted(unknown)}")
    training_args = TrainingArguments(
        output_dir=output_dir, **{**_training_defaults_for(fields), **overrides}
    )
    return with_persistent_workers(training_args, explicit=PERSISTENT_WORKERS in overrides)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A flat mapping of argument names to values from a `.yaml`/`.yml` or `.json` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(
            f"{path}: a config must be a mapping of argument names to values, got {type(config).__name__}"
        )
    return config


def parse_recipe_args(
    dataclass_types: Sequence[type], args: Sequence[str] | None = None, config_flag: str = "--config"
) -> tuple[Any, ...]:
    """Parse recipe arguments from an optional config file plus command-line overrides.

    Args:
        dataclass_types: the argument dataclasses (e.g. `(ModelArguments, DataArguments, TrainingArguments)`).
        args: command-line arguments; default `sys.argv[1:]`.
        config_flag: the flag naming the YAML/JSON config file.

    Returns:
        One instance per dataclass type, in order.

    Raises:
        ValueError: a config key that no dataclass has (named with the file).
    """
    args = list(sys.argv[1:] if args is None else args)
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument(config_flag, default=None)
    known, remaining = pre_parser.parse_known_args(args)
    config_path = getattr(known, config_flag.lstrip("-").replace("-", "_"))

    parser = HfArgumentParser(dataclass_types)
    fields = {field.name for dtype in dataclass_types for field in dataclasses.fields(dtype) if field.init}
    defaults = (
        _training_defaults_for(fields)
        if any(issubclass(t, TrainingArguments) for t in dataclass_types)
        else {}
    )
    config = load_config_file(config_path) if config_path else {}
    unknown = set(config) - fields
    if unknown:
        raise ValueError(f"{config_path}: unknown argument(s) {sorted(unknown)}")
    defaults.update(config)
    for action in parser._actions:
        if action.dest in defaults:
            action.required = False
    parser.set_defaults(**defaults)
    parsed = tuple(parser.parse_args_into_dataclasses(args=remaining))
    explicit = PERSISTENT_WORKERS in config or any(
        arg.startswith("--") and arg[2:].split("=")[0].replace("-", "_") == PERSISTENT_WORKERS
        for arg in remaining
    )
    for value in parsed:
        if isinstance(value, TrainingArguments):
            with_persistent_workers(value, explicit)
    return parsed
