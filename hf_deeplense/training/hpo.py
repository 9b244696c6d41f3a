"""Hyperparameter search for any recipe: `Trainer.hyperparameter_search(backend="optuna")` driven by an `hpo:`
section of the config (the recipe adds [`HPOArguments`] to its arguments):

```yaml
hpo:
  n_trials: 8
  direction: maximize          # or minimize (the default, for eval_loss)
  metric: eval_auc_macro       # a key of Trainer.evaluate()'s metrics; default eval_loss
  seed: 0                      # seeds Optuna's TPE sampler
  search_space:                # name: {type: float | int | categorical, then the arguments of trial.suggest_<type>}
    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
    model.classifier_dropout_prob: {type: float, low: 0.0, high: 0.3}   # a model-config field
```

Keys without a prefix are `TrainingArguments` fields; `model.<field>` keys are model-config overrides for the
recipe's `build_model(overrides)` (without one, every trial starts from a copy of the trainer's initial model).
`OUTPUT_DIR/hpo/` gets `trials.json` and `best_run.json`; [`best_run_arguments`] gives the final run's arguments.
The search runs in one process: under DDP the other ranks would have to follow rank 0's trials in lockstep.

- [0] Optuna, Akiba et al. 2019, https://arxiv.org/abs/1907.10902
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, Trainer, TrainingArguments
from transformers.trainer_utils import BestRun

from .arguments import as_dict, load_config_file

__all__ = ["HPOArguments", "HPOConfig", "best_run_arguments", "run_hyperparameter_search"]

MODEL_PREFIX = "model."


def _check_parameter(name: str, spec: Any) -> None:
    """A parameter is valid when Optuna builds its distribution from it (`FloatDistribution(low, high, log=...)`)."""
    from optuna import distributions

    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if kind not in ("float", "int", "categorical"):
        raise ValueError(
            f"hpo.search_space.{name}: expected {{type: float | int | categorical, ...}}, got {spec!r}"
        )
    try:
        getattr(distributions, f"{kind.capitalize()}Distribution")(**_arguments(spec))
    except (TypeError, ValueError) as error:
        raise ValueError(f"hpo.search_space.{name}: {error}") from None


def _arguments(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of `trial.suggest_<type>` in a parameter's spec."""
    return {key: value for key, value in spec.items() if key != "type"}


@dataclass
class HPOConfig:
    """The `hpo:` section of a recipe config (see the module docstring).

    Args:
        search_space: parameter name -> `{type, **arguments of trial.suggest_<type>}`.
        n_trials: number of trials.
        direction: `minimize` or `maximize` the metric.
        metric: the key of `Trainer.evaluate()`'s metrics that is optimised (`eval_` prefix included).
        seed: seed of Optuna's TPE sampler (same seed, same sequence of trials).
        timeout: stop starting new trials after this many seconds (None: no limit).
    """

    search_space: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_trials: int = 10
    direction: str = "minimize"
    metric: str = "eval_loss"
    seed: int = 0
    timeout: float | None = None

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> HPOConfig:
        if not isinstance(config, Mapping):
            raise ValueError(f"hpo: expected a mapping, got {type(config).__name__}")
        known = {item.name for item in dataclasses.fields(cls)}
        if unknown := set(config) - known:
            raise ValueError(f"hpo: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        parsed = cls(**config)
        if not parsed.search_space:
            raise ValueError("hpo.search_space must name at least one parameter")
        if parsed.n_trials < 1:
            raise ValueError(f"hpo.n_trials must be >= 1, got {parsed.n_trials}")
        if parsed.direction not in ("minimize", "maximize"):
            raise ValueError(f"hpo.direction must be 'minimize' or 'maximize', got {parsed.direction!r}")
        training_fields = {item.name for item in dataclasses.fields(TrainingArguments)}
        for name, spec in parsed.search_space.items():
            if not name.startswith(MODEL_PREFIX) and name not in training_fields:
                raise ValueError(
                    f"hpo.search_space.{name}: not a TrainingArguments field (model-config fields take the "
                    f"'{MODEL_PREFIX}' prefix, e.g. '{MODEL_PREFIX}{name}')"
                )
            _check_parameter(name, spec)
        return parsed

    def suggest(self, trial) -> dict[str, Any]:
        """Every parameter drawn from an `optuna.Trial` (the same values when asked twice within one trial)."""
        return {
            name: getattr(trial, f"suggest_{spec['type']}")(name, **_arguments(spec))
            for name, spec in self.search_space.items()
        }


@dataclass
class HPOArguments:
    """Recipe arguments that switch on a hyperparameter search."""

    hpo: dict | str | None = field(
        default=None,
        metadata={
            "help": "Hyperparameter search with Optuna: an `hpo:` mapping in the config file (n_trials, direction, "
            "metric, seed, search_space; see hf_deeplense.training.hpo), or on the command line a JSON string or "
            "the path of a YAML/JSON file holding that mapping. Unset: no search."
        },
    )

    def __post_init__(self):
        if isinstance(self.hpo, str):
            self.hpo = load_config_file(self.hpo) if os.path.isfile(self.hpo) else as_dict(self.hpo)
        # the parsed `hpo:` section (None: no search), validated before any data or model is built
        self.config = None if self.hpo is None else HPOConfig.from_dict(self.hpo)


def _split(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainingArguments values, model-config overrides) of a trial's parameters."""
    training = {name: value for name, value in params.items() if not name.startswith(MODEL_PREFIX)}
    model = {
        name[len(MODEL_PREFIX) :]: value for name, value in params.items() if name.startswith(MODEL_PREFIX)
    }
    return training, model


def run_hyperparameter_search(
    trainer: Trainer,
    config: HPOConfig | Mapping[str, Any],
    build_model: Callable[[dict[str, Any]], PreTrainedModel] | None = None,
) -> BestRun:
    """Run `trainer.hyperparameter_search(backend="optuna")` over the config's search space.

    Args:
        trainer: a `Trainer` with its model, datasets and `compute_metrics`.
        config: an [`HPOConfig`] or the `hpo:` mapping.
        build_model: `overrides -> model` for `model.<field>` parameters (called with `{}` when the trial
            has none); without it each trial trains a copy of the trainer's initial model.

    Returns:
        The best trial as a `transformers.trainer_utils.BestRun` (`run_id`, `objective`, `hyperparameters`).

    Raises:
        ValueError: with several processes (the search runs in one), or `model.` parameters without
            `build_model`.
    """
    import optuna

    config = config if isinstance(config, HPOConfig) else HPOConfig.from_dict(config)
    if trainer.args.world_size > 1:
        raise ValueError(
            f"hpo: the hyperparameter search runs in one process, not {trainer.args.world_size}: run the search "
            "without `accelerate launch --multi_gpu` (or with --num_processes 1), then train the final model "
            "with the best values (hpo/best_run.json) under DDP without the `hpo` section"
        )
    model_parameters = [name for name in config.search_space if name.startswith(MODEL_PREFIX)]
    if model_parameters and build_model is None:
        raise ValueError(
            f"hpo.search_space has model-config parameters {model_parameters}: pass build_model(overrides)"
        )
    pristine = copy.deepcopy(trainer.model).cpu() if build_model is None else None

    def model_init(trial=None) -> PreTrainedModel:
        # Trainer calls model_init before it applies the trial's TrainingArguments: draw (or re-read) the
        # trial's values here; Optuna returns the same value when a trial is asked for a parameter twice.
        if build_model is None:
            return copy.deepcopy(pristine)
        return build_model(_split(config.suggest(trial))[1] if trial is not None else {})

    def compute_objective(metrics: dict[str, float]) -> float:
        if config.metric not in metrics:
            raise KeyError(
                f"hpo.metric {config.metric!r} is not among the evaluation metrics {sorted(metrics)}"
            )
        return float(metrics[config.metric])

    trainer.model_init = model_init
    storage = optuna.storages.InMemoryStorage()
    best_run = trainer.hyperparameter_search(
        hp_space=lambda trial: _split(config.suggest(trial))[0],
        compute_objective=compute_objective,
        n_trials=config.n_trials,
        direction=config.direction,
        backend="optuna",
        timeout=config.timeout,
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        storage=storage,
        study_name="hpo",
    )
    hpo_dir = Path(trainer.args.output_dir) / "hpo"
    hpo_dir.mkdir(parents=True, exist_ok=True)
    trials = [
        {"number": trial.number, "state": trial.state.name, "value": trial.value, "params": trial.params}
        for trial in optuna.load_study(study_name="hpo", storage=storage).trials
    ]
    (hpo_dir / "trials.json").write_text(json.dumps(trials, indent=2), encoding="utf-8")
    summary = {
        "run_id": best_run.run_id,
        "objective": best_run.objective,
        "hyperparameters": best_run.hyperparameters,
        "metric": config.metric,
        "direction": config.direction,
    }
    (hpo_dir / "best_run.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return best_run


def best_run_arguments(
    args: TrainingArguments, best_run: BestRun
) -> tuple[TrainingArguments, dict[str, Any]]:
    """The `TrainingArguments` of the final run (`args` with the best trial's values, cast to the fields' types,
    as Trainer does for a trial) and the best trial's model-config overrides (for `build_model`)."""
    training, model = _split(best_run.hyperparameters)
    values = {
        name: type(getattr(args, name))(value) if getattr(args, name) is not None else value
        for name, value in training.items()
    }
    return dataclasses.replace(args, **values), model
