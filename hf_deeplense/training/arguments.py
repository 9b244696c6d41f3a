"""Recipe arguments: dataclasses filled from a YAML/JSON config, then the command line.

Precedence, lowest to highest: the dataclass defaults, the config file (`--config run.yaml`), the command line
(`--learning_rate 1e-3`). `LensingTrainingArguments` is `TrainingArguments` with the defaults every lensing run
needs (its docstring lists them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments

__all__ = ["LensingTrainingArguments", "as_dict", "load_config_file", "parse_recipe_args"]


@dataclass
class LensingTrainingArguments(TrainingArguments):
    """`TrainingArguments` whose defaults differ from transformers' where every lensing run needs it.

    - `bf16`: on where a CUDA device supports it, off (fp32) on CPU.
    - `remove_unused_columns=False`: the `LensingCollator` builds the model inputs itself.
    - `ddp_find_unused_parameters=False`: no unused parameters in our models; faster DDP.
    - `dataloader_pin_memory`: only with a CUDA device.
    - `use_cpu` on machines without an accelerator: without it, `accelerate launch --multi_gpu
      --num_processes 2` on a CPU machine starts two ranks that each train alone (accelerate's state is
      `DistributedType.NO`, every rank believes it is the main process); with it they form one gloo DDP group.
    - `dataloader_persistent_workers`: unset, it is on whenever `dataloader_num_workers > 0`. Without it every
      epoch and every evaluation starts its workers again: on a tiny CPU run (30 epochs of 64 images, 2
      workers), 14.9 s of training instead of 1.0 s.
    """

    # None: decided in `__post_init__` (HfArgumentParser does not call a boolean field's default_factory)
    bf16: bool | None = field(
        default=None, metadata={"help": "bf16 mixed precision; default: where supported."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Drop columns the model does not take."}
    )
    ddp_find_unused_parameters: bool = field(
        default=False, metadata={"help": "DDP's find_unused_parameters."}
    )
    dataloader_pin_memory: bool | None = field(
        default=None, metadata={"help": "Pin DataLoader memory; default: with a CUDA device."}
    )
    use_cpu: bool | None = field(
        default=None, metadata={"help": "Train on the CPU; default: without accelerator."}
    )
    dataloader_persistent_workers: bool | None = field(
        default=None, metadata={"help": "Keep DataLoader workers alive; default: when there are workers."}
    )

    def __post_init__(self):
        defaults = {
            "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
            "dataloader_pin_memory": torch.cuda.is_available(),
            "use_cpu": not torch.cuda.is_available() and not torch.backends.mps.is_available(),
            "dataloader_persistent_workers": self.dataloader_num_workers > 0,
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        super().__post_init__()


def as_dict(value: dict | str | None) -> dict[str, Any]:
    """A dict from a config mapping, JSON or YAML text (command line) or None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:  # YAML (its 1.1 floats need a dot: 1.0e-4, not 1e-4)
            value = yaml.safe_load(value)
    if not isinstance(value, dict | None):
        raise ValueError(f"expected a mapping (JSON object), got {value!r}")
    return dict(value or {})


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A flat mapping of argument names to values from a `.yaml`/`.yml` or `.json` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        return as_dict(json.loads(text) if path.suffix == ".json" else yaml.safe_load(text))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _as_command_line(config: dict[str, Any]) -> list[str]:
    """`{"learning_rate": 0.1, "classes": ["a", "b"], "model_config": {...}}` as `--learning_rate 0.1 --classes a
    b --model_config '{...}'`: placed before the real command line, whose flags then win (argparse keeps the
    last value)."""
    tokens = []
    for name, value in config.items():
        if value is None:
            continue
        tokens.append(f"--{name}")
        if isinstance(value, list):
            tokens += [json.dumps(item) if isinstance(item, dict) else str(item) for item in value]
        else:
            tokens.append(json.dumps(value) if isinstance(value, dict) else str(value))
    return tokens


def parse_recipe_args(dataclass_types: Sequence[type], args: Sequence[str] | None = None) -> tuple[Any, ...]:
    """Parse recipe arguments from an optional `--config` file plus command-line overrides.

    Args:
        dataclass_types: the argument dataclasses (e.g. `(FinetuneArguments, DataArguments,
            LensingTrainingArguments)`).
        args: command-line arguments; default `sys.argv[1:]`.

    Returns:
        One instance per dataclass type, in order.

    Raises:
        ValueError: a config key that no dataclass has (named with the file).
    """
    pre_parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre_parser.add_argument("--config", default=None)
    known, args = pre_parser.parse_known_args(sys.argv[1:] if args is None else args)
    config_path = known.config
    config = load_config_file(config_path) if config_path else {}
    fields = {item.name for dtype in dataclass_types for item in dataclasses.fields(dtype) if item.init}
    if unknown := set(config) - fields:
        raise ValueError(f"{config_path}: unknown argument(s) {sorted(unknown)}")
    parser = HfArgumentParser(dataclass_types)
    return tuple(parser.parse_args_into_dataclasses(args=[*_as_command_line(config), *args]))
