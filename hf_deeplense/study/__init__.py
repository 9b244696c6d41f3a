"""Runs that combine the training functions of `hf_deeplense.training` with the evaluations of
`hf_deeplense.evaluation`, so sit above both: the benchmark study (`run_study`, whose script is
`recipes/benchmark.py`: every (preset, method, label fraction, seed) row of a study YAML run and summarised) and the
evaluation of a saved pre-trained encoder (`evaluate_pretrained`: kNN, then a linear probe)."""

from .encoder import evaluate_pretrained
from .runner import (
    METHODS,
    TASKS,
    Method,
    device_description,
    load_study_config,
    plan_rows,
    pretrain_recipe_args,
    recipe_sections,
    row_recipe_args,
    run_study,
)

__all__ = [
    "METHODS",
    "TASKS",
    "Method",
    "device_description",
    "evaluate_pretrained",
    "load_study_config",
    "plan_rows",
    "pretrain_recipe_args",
    "recipe_sections",
    "row_recipe_args",
    "run_study",
]
