"""Tests of the config-driven Optuna hyperparameter search (`hf_deeplense.training.hpo`)."""

import gc
import json

import pytest
import torch
from transformers import Trainer, TrainerCallback

from hf_deeplense.models.equivariant import (
    DeepLenseEquivariantConfig,
    DeepLenseEquivariantForImageClassification,
)
from hf_deeplense.training import LensingTrainingArguments, parse_recipe_args
from hf_deeplense.training.hpo import HPOArguments, HPOConfig, best_run_arguments, run_hyperparameter_search

SEARCH = {
    "n_trials": 2,
    "direction": "minimize",
    "metric": "eval_loss",
    "seed": 3,
    "search_space": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model.classifier_dropout_prob": {"type": "categorical", "choices": [0.0, 0.25]},
    },
}


class TinyLensSet(torch.utils.data.Dataset):
    """Bright centre = class 1, dim centre = class 0 (learnable in a few steps)."""

    def __init__(self, size: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (size,), generator=generator)
        self.images = torch.randn(size, 1, 16, 16, generator=generator) * 0.1
        self.images[:, :, 6:10, 6:10] += self.labels[:, None, None, None].float()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"pixel_values": self.images[index], "labels": self.labels[index]}


class RecordArgs(TrainerCallback):
    def __init__(self):
        self.learning_rates = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.learning_rates.append((args.learning_rate, model.config.classifier_dropout_prob))


def build_model(overrides):
    config = DeepLenseEquivariantConfig(
        group="C4",
        stage_channels=[2],
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=8,
        num_labels=2,
        stem_kernel_size=3,
        **overrides,
    )
    return DeepLenseEquivariantForImageClassification(config)


@pytest.fixture
def frozen_heap():
    """accelerate runs gc.collect() several times per trial; freezing the (large) heap of imported modules
    makes each collection cheap (~0.8 s -> a few ms here)."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def test_tiny_search_runs_trials_and_applies_best(tmp_path, frozen_heap):
    recorder = RecordArgs()
    args = LensingTrainingArguments(
        str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(
        model=build_model({}),
        args=args,
        train_dataset=TinyLensSet(32, 0),
        eval_dataset=TinyLensSet(16, 1),
        callbacks=[recorder],
    )
    best = run_hyperparameter_search(trainer, SEARCH, build_model=build_model)

    trials = json.loads((tmp_path / "hpo" / "trials.json").read_text())
    assert [trial["state"] for trial in trials] == ["COMPLETE", "COMPLETE"]
    # each trial trained with its own sampled values (TrainingArguments and model config)
    assert [(t["params"]["learning_rate"], t["params"]["model.classifier_dropout_prob"]) for t in trials] == [
        pytest.approx(recorded) for recorded in recorder.learning_rates
    ]
    assert trials[0]["params"]["learning_rate"] != trials[1]["params"]["learning_rate"]
    assert best.objective == min(trial["value"] for trial in trials)
    saved = json.loads((tmp_path / "hpo" / "best_run.json").read_text())
    assert saved["objective"] == best.objective and saved["hyperparameters"] == best.hyperparameters

    final_args, overrides = best_run_arguments(trainer.args, best)
    trainer = Trainer(
        model=build_model(overrides),
        args=final_args,
        train_dataset=TinyLensSet(32, 0),
        eval_dataset=TinyLensSet(16, 1),
    )
    trainer.train()
    assert trainer.args.learning_rate == pytest.approx(best.hyperparameters["learning_rate"])
    assert (
        trainer.model.config.classifier_dropout_prob == best.hyperparameters["model.classifier_dropout_prob"]
    )


def test_model_parameters_need_build_model(tmp_path):
    args = LensingTrainingArguments(str(tmp_path), max_steps=1)
    trainer = Trainer(model=build_model({}), args=args, train_dataset=TinyLensSet(8, 0))
    with pytest.raises(ValueError, match="build_model"):
        run_hyperparameter_search(trainer, SEARCH)


def test_search_refused_with_several_processes(tmp_path, monkeypatch):
    """The search runs in one process: under DDP the other ranks would follow rank 0's trials in lockstep."""
    args = LensingTrainingArguments(str(tmp_path), max_steps=1)
    trainer = Trainer(model=build_model({}), args=args, train_dataset=TinyLensSet(8, 0))
    monkeypatch.setattr(type(args), "world_size", property(lambda self: 2))
    with pytest.raises(ValueError, match="runs in one process, not 2"):
        run_hyperparameter_search(trainer, SEARCH, build_model=build_model)


def test_hpo_section_parsed_from_config_file(tmp_path):
    import yaml

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"hpo": SEARCH}))
    (parsed,) = parse_recipe_args([HPOArguments], ["--config", str(path)])
    assert parsed.config.n_trials == 2 and set(parsed.config.search_space) == set(SEARCH["search_space"])
    (from_cli,) = parse_recipe_args([HPOArguments], ["--hpo", json.dumps(SEARCH)])
    assert from_cli.hpo == SEARCH
    (unset,) = parse_recipe_args([HPOArguments], [])
    assert unset.config is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"search_space": {"learning_rte": {"type": "float", "low": 1e-4, "high": 1e-2}}}, "learning_rte"),
        (
            {"search_space": {"learning_rate": {"type": "float", "low": 0.0, "high": 1e-2, "log": True}}},
            "log",
        ),
        ({"search_space": {"seed": {"type": "categorical", "choices": []}}}, "choices"),
        ({"direction": "up"}, "direction"),
        ({"n_trial": 3}, "n_trial"),
    ],
)
def test_invalid_hpo_config_names_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        HPOConfig.from_dict({**SEARCH, **change})
