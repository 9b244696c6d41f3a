"""The benchmark study (`run_study`): plans every (preset, method, label fraction, seed) row of a study YAML, runs
each through the training functions of `hf_deeplense.training` and the evaluations of `hf_deeplense.evaluation`,
and summarises them. It sits above both; `recipes/benchmark.py` is its script."""

from .runner import (
    METHODS,
    TASKS,
    Method,
    device_description,
    load_study_config,
    plan_rows,
    pretrain_recipe_args,
    row_recipe_args,
    run_study,
)

__all__ = [
    "METHODS",
    "TASKS",
    "Method",
    "device_description",
    "load_study_config",
    "plan_rows",
    "pretrain_recipe_args",
    "row_recipe_args",
    "run_study",
]
