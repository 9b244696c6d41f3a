"""Trainer helpers for lensing runs: arguments, callbacks, label-fraction subsets, run artifacts."""

from .arguments import LensingTrainingArguments, load_config_file, make_training_arguments, parse_recipe_args
from .callbacks import EvalHistoryJsonCallback, ImageLoggingCallback, json_safe
from .subset import label_fraction_indices, label_fraction_subset

__all__ = [
    "EvalHistoryJsonCallback",
    "ImageLoggingCallback",
    "LensingTrainingArguments",
    "json_safe",
    "label_fraction_indices",
    "label_fraction_subset",
    "load_config_file",
    "make_training_arguments",
    "parse_recipe_args",
]
