"""Hyperparameter search for any recipe: `Trainer.hyperparameter_search(backend="optuna")` driven by the config.

A recipe adds [`HPOArguments`] to its argument dataclasses; a config file then turns the search on with an
`hpo:` section:

```yaml
hpo:
  n_trials: 8
  direction: maximize          # or minimize (the default, for eval_loss)
  metric: eval_roc_auc_macro   # a key of Trainer.evaluate()'s metrics; default eval_loss
  seed: 0                      # seeds Optuna's TPE sampler
  search_space:
    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
    weight_decay: {type: float, low: 0.0, high: 0.1}
    per_device_train_batch_size: {type: categorical, choices: [32, 64]}
    model.classifier_dropout_prob: {type: float, low: 0.0, high: 0.3}   # a model-config field
```

Keys without a prefix are `TrainingArguments` fields (Trainer sets them per trial); `model.<field>` keys are
model-config overrides passed to the recipe's `build_model(overrides)`. Without `build_model`, every trial
starts from a copy of the trainer's initial model (same weights: a fair comparison of training settings).
After the search, `OUTPUT_DIR/hpo/` holds `trials.json` (every trial: number, state, value, params) and
`best_run.json`; [`apply_best_run`] sets the best values so that `trainer.train()` trains the final model.

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

import torch
import yaml
from transformers import PreTrainedModel, Trainer, TrainingArguments
from transformers.trainer_utils import BestRun

__all__ = [
    "HPOArguments",
    "HPOConfig",
    "ParameterSpec",
    "apply_best_run",
    "optuna_hp_space",
    "run_hyperparameter_search",
]

MODEL_PREFIX = "model."
PARAMETER_TYPES = ("float", "int", "categorical")


@dataclass
class ParameterSpec:
    """One dimension of the search space.

    Args:
        type: `float`, `int` or `categorical`.
        low: lower bound (`float`, `int`).
        high: upper bound, inclusive (`float`, `int`).
        log: sample on a log scale (`float`, `int`; needs `low > 0`).
        step: grid step (`float`, `int`; not with `log`).
        choices: the values (`categorical`).
    """

    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @classmethod
    def from_dict(cls, name: str, spec: Mapping[str, Any]) -> ParameterSpec:
        if not isinstance(spec, Mapping):
            raise ValueError(f"hpo.search_space.{name}: expected a mapping, got {spec!r}")
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(
                f"hpo.search_space.{name}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        parameter = cls(**spec)
        if parameter.type not in PARAMETER_TYPES:
            raise ValueError(
                f"hpo.search_space.{name}: type must be one of {PARAMETER_TYPES}, got {parameter.type!r}"
            )
        if parameter.type == "categorical":
            if not parameter.choices:
                raise ValueError(
                    f"hpo.search_space.{name}: a categorical parameter needs non-empty `choices`"
                )
            return parameter
        if parameter.low is None or parameter.high is None or not parameter.low < parameter.high:
            raise ValueError(
                f"hpo.search_space.{name}: needs low < high, got low={parameter.low}, high={parameter.high}"
            )
        if parameter.log and parameter.low <= 0:
            raise ValueError(f"hpo.search_space.{name}: log scale needs low > 0, got {parameter.low}")
        if parameter.log and parameter.step is not None:
            raise ValueError(f"hpo.search_space.{name}: `step` and `log` cannot be combined")
        return parameter

    def suggest(self, trial, name: str) -> Any:
        """Draw this parameter from an `optuna.Trial` (the same value when asked twice within one trial)."""
        if self.type == "categorical":
            return trial.suggest_categorical(name, self.choices)
        if self.type == "int":
            return trial.suggest_int(
                name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(name, float(self.low), float(self.high), step=self.step, log=self.log)


@dataclass
class HPOConfig:
    """The `hpo:` section of a recipe config (see the module docstring).

    Args:
        search_space: parameter name -> [`ParameterSpec`] (or its dict form).
        n_trials: number of trials.
        direction: `minimize` or `maximize` the metric.
        metric: the key of `Trainer.evaluate()`'s metrics that is optimised (`eval_` prefix included).
        seed: seed of Optuna's TPE sampler (same seed, same sequence of trials).
        timeout: stop starting new trials after this many seconds (None: no limit; one process only).
    """

    search_space: dict[str, ParameterSpec] = field(default_factory=dict)
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
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"hpo: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        values = dict(config)
        space = values.pop("search_space", None)
        if not space:
            raise ValueError("hpo.search_space must name at least one parameter")
        parsed = cls(
            search_space={name: ParameterSpec.from_dict(name, spec) for name, spec in space.items()}, **values
        )
        if parsed.n_trials < 1:
            raise ValueError(f"hpo.n_trials must be >= 1, got {parsed.n_trials}")
        if parsed.direction not in ("minimize", "maximize"):
            raise ValueError(f"hpo.direction must be 'minimize' or 'maximize', got {parsed.direction!r}")
        training_fields = {item.name for item in dataclasses.fields(TrainingArguments)}
        for name in parsed.search_space:
            if not name.startswith(MODEL_PREFIX) and name not in training_fields:
                raise ValueError(
                    f"hpo.search_space.{name}: not a TrainingArguments field (model-config fields take the "
                    f"'{MODEL_PREFIX}' prefix, e.g. '{MODEL_PREFIX}{name}')"
                )
        return parsed

    @property
    def model_parameters(self) -> list[str]:
        return [name for name in self.search_space if name.startswith(MODEL_PREFIX)]


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
            text = Path(self.hpo).read_text(encoding="utf-8") if os.path.isfile(self.hpo) else self.hpo
            self.hpo = yaml.safe_load(text)  # JSON is YAML
        if self.hpo is not None:
            HPOConfig.from_dict(self.hpo)  # validate early, before any data or model is built

    @property
    def config(self) -> HPOConfig | None:
        return None if self.hpo is None else HPOConfig.from_dict(self.hpo)


def optuna_hp_space(config: HPOConfig, include_model: bool = False) -> Callable[[Any], dict[str, Any]]:
    """The `hp_space` for `Trainer.hyperparameter_search`: draws every parameter of the search space and returns
    the `TrainingArguments` ones (and the `model.` ones too when `include_model`)."""

    def hp_space(trial) -> dict[str, Any]:
        params = {name: spec.suggest(trial, name) for name, spec in config.search_space.items()}
        return {
            name: value
            for name, value in params.items()
            if include_model or not name.startswith(MODEL_PREFIX)
        }

    return hp_space


def _model_overrides(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name[len(MODEL_PREFIX) :]: value for name, value in params.items() if name.startswith(MODEL_PREFIX)
    }


def _make_model_init(
    trainer: Trainer, config: HPOConfig, build_model: Callable[[dict[str, Any]], PreTrainedModel] | None
) -> Callable[[Any], PreTrainedModel]:
    if config.model_parameters and build_model is None:
        raise ValueError(
            f"hpo.search_space has model-config parameters {config.model_parameters}: the recipe must pass "
            "build_model(overrides) to run_hyperparameter_search"
        )
    if trainer.model is None:
        raise ValueError("the trainer has no model to copy: build it with `model=` or pass build_model")
    pristine = copy.deepcopy(trainer.model).cpu() if build_model is None else None
    hp_space = optuna_hp_space(config, include_model=True)

    def model_init(trial=None) -> PreTrainedModel:
        # Trainer calls model_init before it applies the trial's TrainingArguments: draw (or re-read) the
        # trial's values here; Optuna returns the same value when a trial is asked for a parameter twice.
        overrides = _model_overrides(hp_space(trial)) if trial is not None else {}
        if build_model is None:
            return copy.deepcopy(pristine)
        return build_model(overrides)

    return model_init


def run_hyperparameter_search(
    trainer: Trainer,
    config: HPOConfig | Mapping[str, Any],
    build_model: Callable[[dict[str, Any]], PreTrainedModel] | None = None,
    output_dir: str | os.PathLike | None = None,
) -> BestRun:
    """Run `trainer.hyperparameter_search(backend="optuna")` over the config's search space.

    Args:
        trainer: a `Trainer` with its model (or `model_init`), datasets and `compute_metrics`.
        config: an [`HPOConfig`] or the `hpo:` mapping.
        build_model: `overrides -> model` for `model.<field>` parameters (called with `{}` when the trial
            has none); without it each trial trains a copy of the trainer's initial model.
        output_dir: where `hpo/trials.json` and `hpo/best_run.json` go; default `trainer.args.output_dir`.

    Returns:
        The best trial as a `transformers.trainer_utils.BestRun` (`run_id`, `objective`, `hyperparameters`).
    """
    import optuna

    config = config if isinstance(config, HPOConfig) else HPOConfig.from_dict(config)
    hpo_dir = Path(output_dir or trainer.args.output_dir) / "hpo"
    hpo_dir.mkdir(parents=True, exist_ok=True)
    if trainer.model_init is None or build_model is not None:
        trainer.model_init = _make_model_init(trainer, config, build_model)
    elif config.model_parameters:
        raise ValueError(
            f"hpo.search_space has model-config parameters {config.model_parameters}: pass build_model(overrides)"
        )

    def compute_objective(metrics: dict[str, float]) -> float:
        if config.metric not in metrics:
            raise KeyError(
                f"hpo.metric {config.metric!r} is not among the evaluation metrics {sorted(metrics)}"
            )
        return float(metrics[config.metric])

    distributed = trainer.args.world_size > 1
    if distributed and config.timeout is not None:
        # rank 0 would stop early while the other ranks wait for all n_trials trials
        raise ValueError("hpo.timeout is not supported with several processes: bound the search by n_trials")
    main_process = trainer.is_world_process_zero()
    study_kwargs = {}
    if main_process:  # under DDP only rank 0 runs the Optuna study; the other ranks follow its trials
        # Only rank 0 opens the journal: another rank opening it would replay the file while rank 0 deletes
        # or writes it (transformers passes these arguments to Optuna on rank 0 only).
        journal = hpo_dir / "journal.log"
        journal.unlink(missing_ok=True)  # a fresh study per run
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
        study_kwargs = {
            "sampler": optuna.samplers.TPESampler(seed=config.seed),
            "storage": storage,
            "study_name": "hpo",
        }
        if distributed:  # the other ranks train every trial to the end: a trial pruned on rank 0 desyncs them
            study_kwargs["pruner"] = optuna.pruners.NopPruner()
    best_run = trainer.hyperparameter_search(
        hp_space=optuna_hp_space(config),
        compute_objective=compute_objective,
        n_trials=config.n_trials,
        direction=config.direction,
        backend="optuna",
        timeout=config.timeout,
        **study_kwargs,
    )
    if distributed and torch.distributed.is_initialized():
        shared = [best_run]  # only rank 0 knows the best run (transformers returns None on the others)
        torch.distributed.broadcast_object_list(shared, src=0)
        best_run = shared[0]
    if not main_process:
        return best_run
    study = optuna.load_study(study_name="hpo", storage=storage)
    trials = [
        {"number": trial.number, "state": trial.state.name, "value": trial.value, "params": trial.params}
        for trial in study.trials
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


def apply_best_run(
    trainer: Trainer,
    best_run: BestRun,
    build_model: Callable[[dict[str, Any]], PreTrainedModel] | None = None,
) -> None:
    """Set the best trial's `TrainingArguments` values on `trainer.args` and, for `model.` parameters, a
    `model_init` that builds the model with them: the next `trainer.train()` trains the final model."""
    overrides = _model_overrides(best_run.hyperparameters)
    for name, value in best_run.hyperparameters.items():
        if not name.startswith(MODEL_PREFIX):
            old = getattr(trainer.args, name)
            setattr(trainer.args, name, type(old)(value) if old is not None else value)
    if overrides:
        if build_model is None:
            raise ValueError(f"the best run sets model-config fields {sorted(overrides)}: pass build_model")
        trainer.model_init = lambda: build_model(overrides)
    trainer._train_batch_size = trainer.args.train_batch_size
