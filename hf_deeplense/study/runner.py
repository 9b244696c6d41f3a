"""A benchmark study: every (preset, method, label fraction, seed) row run through the training functions and
evaluated (kNN of frozen encoders, the radial-profile baseline, the summaries of ``hf_deeplense.evaluation.study``).
It uses ``training/`` and ``evaluation/`` both, so it sits above them; ``recipes/benchmark.py`` is its script.

The study YAML (``recipes/configs/study_*.yaml``) names the presets, methods, fractions and seeds, the
model sizes and the runs' arguments. :func:`run_study`:

1. builds each preset's dataset once (``build_simulated_dataset``; skipped when built);
2. pre-trains each SSL model (MAE, SimCLR) once per preset and seed, reused by every fraction;
3. runs each row in this process: ``finetune``, ``pretrain_mae``, ``pretrain_ssl`` or ``anomaly`` of
   ``hf_deeplense.training`` with the arguments of a generated ``study_args.yaml`` in the row's folder (the
   recorded command: the function and its arguments, the same as the recipe script's); an interrupted run
   resumes from its last checkpoint. Launched with ``accelerate launch --multi_gpu``, every process runs every
   row together (DDP); the main process alone builds datasets and writes files;
4. collects each run's ``metrics.json`` (a row whose ``metrics.json`` exists is not run again) and, when the
   config names a ``records_dir``, writes each finished row there as one small JSON file (metrics, validation
   metrics, command, device, date, wall time). A row with a record is not run again either: committed to the
   repository, the records carry a long study across machines whose ``output_dir`` is gone;
5. writes ``study.json`` (rows, aggregated table, target checks), ``RESULTS_section.md``, the
   AUC-against-label-fraction plot, and copies the best model per preset (chosen on the validation
   split, never the test split) with its card to ``best/<preset>``.

Label amounts: ``fractions`` of the training split (stratified), or ``label_counts``: exactly that many labelled
images, the same number of each class (``data.selection.label_count_indices``; e.g. 300, 600 and 1,200 lens /
non-lens cut-outs), drawn from the whole training split (such rows keep ``fraction`` 1.0 and add ``label_count``).

Methods (``METHODS``): supervised ``resnet18``, ``efficientnet_b2`` (the DeepLense baselines), ``vit``,
``hybrid``; ``mae_finetune``, ``mae_linear_probe``, ``mae_knn`` and, for each of ``simclr``, ``dino``, ``byol``,
``simsiam``, ``<ssl>_finetune``, ``<ssl>_linear_probe`` and ``<ssl>_knn`` (DINO's kNN vote on frozen embeddings);
``regression`` (log10 m_a of the axion images, mean absolute error in dex; ``vit_regression`` and
``dino_regression``: the ViT from scratch and from DINO), ``anomaly`` (MAE trained on no_sub) and
``radial_profile`` (logistic regression on radial profiles: how much a shortcut explains).
"""

from __future__ import annotations

import datetime
import gc
import json
import logging
import os
import platform
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import PartialState
from tqdm.auto import tqdm

from ..evaluation.study import (
    aggregate_rows,
    check_targets,
    format_target_lines,
    label_amount,
    plot_auc_vs_fraction,
    results_markdown,
)
from ..training import anomaly, finetune, pretrain_mae, pretrain_ssl

__all__ = [
    "METHODS",
    "TASKS",
    "Method",
    "device_description",
    "load_study_config",
    "plan_rows",
    "pretrain_recipe_args",
    "recipe_sections",
    "row_recipe_args",
    "run_study",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    """How one method runs: its task (a key of ``TASKS``), model (a key of the study's ``models``), SSL
    pre-training."""

    recipe: (
        str  # finetune, anomaly, knn (frozen embeddings of the SSL model) or "" (the radial-profile baseline)
    )
    model: str | None = None
    pretrain: str | None = None  # mae or simclr
    linear_probe: bool = False
    task: str = "classification"
    uses_fraction: bool = True


METHODS: dict[str, Method] = {
    "resnet18": Method("finetune", model="resnet18"),
    "efficientnet_b2": Method("finetune", model="efficientnet_b2"),
    "vit": Method("finetune", model="vit"),
    "hybrid": Method("finetune", model="hybrid"),
    "mae_finetune": Method("finetune", pretrain="mae"),
    "mae_linear_probe": Method("finetune", pretrain="mae", linear_probe=True),
    **{
        f"{kind}_{name}": Method(recipe, pretrain=kind, linear_probe=name == "linear_probe")
        for kind in ("simclr", "dino", "byol", "simsiam")
        for name, recipe in (("finetune", "finetune"), ("linear_probe", "finetune"), ("knn", "knn"))
    },
    "mae_knn": Method("knn", pretrain="mae"),
    "regression": Method("finetune", model="regression", task="regression", uses_fraction=False),
    "vit_regression": Method("finetune", model="vit", task="regression", uses_fraction=False),
    "dino_regression": Method("finetune", pretrain="dino", task="regression", uses_fraction=False),
    "anomaly": Method("anomaly", model="mae", task="anomaly", uses_fraction=False),
    "radial_profile": Method("", task="baseline"),
}
PRETRAIN_RECIPES = {
    "mae": "pretrain_mae",
    "simclr": "pretrain_simclr",
    "dino": "pretrain_ssl",
    "byol": "pretrain_ssl",
    "simsiam": "pretrain_ssl",
}
# What a row runs: the training function of the task, called with the row's command-line arguments.
TASKS: dict[str, Callable[[list[str]], dict[str, float]]] = {
    "finetune": finetune,
    "pretrain_mae": pretrain_mae,
    "pretrain_simclr": pretrain_ssl,  # with SimCLR, the default model_type
    "pretrain_ssl": pretrain_ssl,
    "anomaly": anomaly,
}


def load_study_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a study YAML (unknown methods, missing models and empty lists raise, naming the file)."""
    path = Path(path)
    config = yaml.safe_load(path.read_text()) or {}
    for key in ("output_dir", "presets", "methods", "seeds"):
        if not config.get(key):
            raise ValueError(f"{path}: `{key}` is missing or empty")
    if not config.get("fractions") and not config.get("label_counts"):
        raise ValueError(f"{path}: give `fractions` or `label_counts`")
    config.setdefault("fractions", [1.0])
    counts = [c for spec in config["presets"].values() for c in (spec or {}).get("label_counts") or []]
    if bad := [
        c for c in [*(config.get("label_counts") or []), *counts] if not (isinstance(c, int) and c > 0)
    ]:
        raise ValueError(f"{path}: label counts must be positive integers, got {bad}")
    for name, spec in config["presets"].items():
        own = (spec or {}).get("recipe_args")
        if own is not None and not (
            isinstance(own, dict) and all(isinstance(v, dict) or v is None for v in own.values())
        ):
            raise ValueError(
                f"{path}: presets.{name}.recipe_args must map section names to mappings, got {own!r}"
            )
    preset_methods = [name for spec in config["presets"].values() for name in (spec or {}).get("methods", [])]
    unknown = [name for name in [*config["methods"], *preset_methods] if name not in METHODS]
    if unknown:
        raise ValueError(f"{path}: unknown method(s) {unknown}; known: {sorted(METHODS)}")
    models = config.get("models", {})
    needed = {METHODS[name].model or METHODS[name].pretrain for name in config["methods"] + preset_methods}
    needed -= {None}
    if missing := sorted(needed - set(models)):
        raise ValueError(f"{path}: `models` lacks {missing} (needed by the methods listed)")
    bad = [f for f in config["fractions"] if not 0 < float(f) <= 1]
    if bad:
        raise ValueError(f"{path}: label fractions must lie in (0, 1], got {bad}")
    per_fraction = config.get("seeds_per_fraction") or {}
    stray = sorted(float(f) for f in per_fraction if float(f) not in {float(g) for g in config["fractions"]})
    if stray or not all(per_fraction.values()):
        raise ValueError(
            f"{path}: `seeds_per_fraction` must map listed fractions {config['fractions']} to non-empty seed "
            f"lists (unlisted fractions: {stray})"
        )
    return config


def plan_rows(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of the study: ``{preset, method, fraction, seed}`` (fraction-free methods at 1.0).
    ``seeds_per_fraction`` (``{0.01: [0, 1, 2]}``) replaces ``seeds`` for the fractions it names; a preset's
    own ``methods``, ``fractions``, ``seeds`` and ``seeds_per_fraction`` (e.g. an ablation that runs two rows)
    replace the study's. With ``label_counts`` (the study's or the preset's) the methods that use labels get one
    row per count instead of per fraction: ``{..., fraction: 1.0, label_count: 300, seed}``."""
    rows = []
    for preset, preset_spec in config["presets"].items():
        preset_spec = preset_spec or {}
        per_fraction = preset_spec.get("seeds_per_fraction", config.get("seeds_per_fraction")) or {}
        per_fraction = {float(f): seeds for f, seeds in per_fraction.items()}
        label_counts = preset_spec.get("label_counts", config.get("label_counts"))
        for method in preset_spec.get("methods", config["methods"]):
            spec = METHODS[method]
            if spec.uses_fraction and label_counts:
                seeds = preset_spec.get("seeds", config["seeds"])
                rows += [
                    {
                        "preset": preset,
                        "method": method,
                        "fraction": 1.0,
                        "label_count": int(count),
                        "seed": int(seed),
                    }
                    for count in label_counts
                    for seed in seeds
                ]
                continue
            fractions = preset_spec.get("fractions", config["fractions"]) if spec.uses_fraction else [1.0]
            for fraction in map(float, fractions):
                seeds = per_fraction.get(fraction, preset_spec.get("seeds", config["seeds"]))
                rows += [
                    {"preset": preset, "method": method, "fraction": fraction, "seed": int(seed)}
                    for seed in seeds
                ]
    return rows


def device_description() -> str:
    """The accelerator (CUDA device name and count) or the CPU architecture and core count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"{platform.processor() or platform.machine()} CPU ({len(os.sched_getaffinity(0))} cores)"


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _record(command: str, device: str, started_at: str, start: float, **extra: Any) -> dict[str, Any]:
    """What `study_run.json` (and the study's tables) record of one step."""
    return {
        "command": command,
        **extra,
        "device": device,
        "started_at": started_at,
        "wall_s": time.perf_counter() - start,
    }


def recipe_sections(config: dict[str, Any], preset: str | None = None) -> dict[str, dict[str, Any]]:
    """The study's ``recipe_args`` sections, each updated by the same section of the preset's own ``recipe_args``
    (e.g. ``{common: {image_size: 64}}``: one preset's runs at another image size)."""
    sections = {name: dict(values or {}) for name, values in (config.get("recipe_args") or {}).items()}
    own = ((config.get("presets") or {}).get(preset) or {}).get("recipe_args") if preset else None
    for name, values in (own or {}).items():
        sections[name] = {**sections.get(name, {}), **(values or {})}
    return sections


def _merged_args(
    config: dict[str, Any], *sections: str, preset: str | None = None, **fixed: Any
) -> dict[str, Any]:
    recipe_args = recipe_sections(config, preset)
    merged: dict[str, Any] = {}
    for section in ("common", *sections):
        merged.update(recipe_args.get(section) or {})
    merged.update({key: value for key, value in fixed.items() if value is not None})
    return merged


def pretrain_recipe_args(
    config: dict[str, Any], kind: str, seed: int, preset: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The task (``pretrain_mae`` / ``pretrain_simclr``, a key of ``TASKS``) and its arguments for one SSL
    pre-training (of ``preset``'s pool: its own ``recipe_args`` apply)."""
    model = config["models"][kind]
    return PRETRAIN_RECIPES[kind], _merged_args(
        config,
        f"pretrain_{kind}",
        preset=preset,
        model_type=model.get("model_type"),
        model_config=model.get("model_config"),
        seed=seed,
    )


def row_recipe_args(
    config: dict[str, Any], row: dict[str, Any], init_from: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The recipe and its arguments (study_args.yaml) for one row; `init_from` is the row's SSL checkpoint.

    Sections of ``recipe_args`` merge in order: ``common``, the recipe's (``finetune`` / ``anomaly``), then
    ``linear_probe``, ``regression``, ``method_<name>`` (e.g. a shorter schedule for a slower network) and
    ``fraction_<f>`` or ``labels_<count>`` where they apply; a preset's own ``recipe_args`` update the study's
    section by section (:func:`recipe_sections`).
    """
    spec = METHODS[row["method"]]
    if spec.recipe == "anomaly":
        model = config["models"][spec.model]
        return "anomaly", _merged_args(
            config,
            "anomaly",
            f"method_{row['method']}",
            preset=row["preset"],
            model_type=model.get("model_type"),
            model_config=model.get("model_config"),
            seed=row["seed"],
        )
    sections = ["finetune"] + (["linear_probe"] if spec.linear_probe else [])
    sections += ["regression"] if spec.task == "regression" else []
    label_count = row.get("label_count")
    sections += [f"method_{row['method']}"]
    sections += [f"labels_{label_count}" if label_count else f"fraction_{row['fraction']:g}"]
    model = {} if spec.pretrain else config["models"][spec.model]
    return "finetune", _merged_args(
        config,
        *sections,
        preset=row["preset"],
        task=spec.task,
        model_type=model.get("model_type"),
        model_config=model.get("model_config"),
        init_from=init_from,
        linear_probe=spec.linear_probe or None,
        label_fraction=row["fraction"],
        label_count=label_count,
        seed=row["seed"],
    )


class _StudyRunner:
    def __init__(self, config: dict[str, Any], device: str):
        self.config = config
        self.device = device
        self.out = Path(config["output_dir"])
        self.state = (
            PartialState()
        )  # several processes under `accelerate launch`: one DDP group for every run
        self.launched: list[str] = []
        self.datasets: dict[str, tuple[Path, dict[str, Any]]] = {}  # folder under data/ -> (path, record)
        self.pretrain_records: dict[str, dict[str, Any]] = {}
        self.records = Path(config["records_dir"]) if config.get("records_dir") else None

    def _write(self, path: Path, text: str) -> None:
        if self.state.is_main_process:
            path.write_text(text)

    def _run(self, task: str, run_dir: Path, args: dict[str, Any], dataset: Path) -> dict[str, Any]:
        """Run one task in this process unless `run_dir/metrics.json` exists; returns the run record."""
        record_path = run_dir / "study_run.json"
        if (run_dir / "metrics.json").exists():
            if record_path.exists():
                return json.loads(record_path.read_text())
            return {"command": None, "device": None, "started_at": None, "wall_s": float("nan")}
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / "study_args.yaml"
        self._write(config_path, yaml.safe_dump(args, sort_keys=True))
        self.state.wait_for_everyone()
        argv = ["--config", str(config_path), "--dataset", str(dataset), "--output_dir", str(run_dir)]
        checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        if checkpoints:  # an interrupted run resumes from its last checkpoint
            argv += ["--resume_from_checkpoint", str(checkpoints[-1])]
        command = shlex.join([task, *argv])
        started_at, start = _now(), time.perf_counter()
        self.launched.append(command)
        TASKS[task](argv)
        gc.collect()  # the run's Trainer, model and optimizer: freed before the next run of this process
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.state.wait_for_everyone()
        if not (run_dir / "metrics.json").exists():
            raise RuntimeError(f"{task} wrote no metrics.json in {run_dir}; command: {command}")
        record = _record(command, self.device, started_at, start, config_file=str(config_path))
        self._write(record_path, json.dumps(record, indent=2))
        return record

    # ---- data and pre-training -----------------------------------------------------------------------
    def build_dataset(self, name: str, unlabelled: bool = False) -> tuple[Path, dict[str, Any]]:
        """The preset's labelled pool, or (``unlabelled``) its pool for SSL pre-training: a preset's
        ``unlabelled_per_class`` images per class made with another seed (``unlabelled_seed``, default
        ``seed + 1``), so that no image of the labelled pool's splits is among them; 95% train, 5%
        validation, no test split; ``unlabelled_overrides`` (e.g. the natural lens fraction of a survey's
        cut-outs) update the preset's ``overrides`` for it. Without ``unlabelled_per_class`` pre-training uses
        the labelled pool."""
        with self.state.main_process_first():  # the main process builds; the others then find it built
            return self._build_dataset(name, unlabelled)

    def _build_dataset(self, name: str, unlabelled: bool) -> tuple[Path, dict[str, Any]]:
        from ..data.build import build_simulated_dataset

        spec = {"preset": name, **(self.config["presets"][name] or {})}
        unlabelled = unlabelled and bool(spec.get("unlabelled_per_class"))
        if unlabelled:
            seed = int(spec.get("unlabelled_seed", int(spec.get("seed", 0)) + 1))
            spec.update(
                n_per_class=spec["unlabelled_per_class"], split_fractions=(0.95, 0.05, 0.0), seed=seed
            )
            if spec.get("unlabelled_overrides"):
                spec["overrides"] = {**(spec.get("overrides") or {}), **spec["unlabelled_overrides"]}
        folder = f"{name}_unlabelled" if unlabelled else name
        if folder in self.datasets:
            return self.datasets[folder]
        data_dir = self.out / "data" / folder
        marker = data_dir / "study_built.json"
        if marker.exists():
            self.datasets[folder] = data_dir, json.loads(marker.read_text())
            return self.datasets[folder]
        kwargs = {
            "preset": spec["preset"],
            "n_per_class": int(spec.get("n_per_class", 1000)),
            "split_fractions": tuple(spec.get("split_fractions", (0.8, 0.1, 0.1))),
            "seed": int(spec.get("seed", 0)),
            "image_size": spec.get("image_size"),
            "overrides": spec.get("overrides"),
            "write_card": bool(spec.get("write_card", True)),
            "device": spec.get("device", "cpu"),
        }
        started_at, start = _now(), time.perf_counter()
        build_simulated_dataset(data_dir, **kwargs)
        arguments = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        record = _record(
            f"build_simulated_dataset({str(data_dir)!r}, {arguments})", self.device, started_at, start
        )
        marker.write_text(json.dumps(record, indent=2))
        self.write_setup_record(f"dataset_{folder}", {"dataset": folder, "dir": str(data_dir), **record})
        self.datasets[folder] = data_dir, record
        return data_dir, record

    def pretrain(self, kind: str, preset: str, seed: int, dataset: Path) -> Path:
        run_dir = self.out / "pretrain" / preset / f"{kind}_seed{seed}"
        recipe, args = pretrain_recipe_args(self.config, kind, seed, preset)
        fresh = not (run_dir / "metrics.json").exists()
        record = self._run(recipe, run_dir, args, dataset)
        record = {"preset": preset, "kind": kind, "seed": seed, "dir": str(run_dir), **record}
        if fresh:
            self.write_setup_record(f"pretrain_{preset}_{kind}_seed{seed}", record)
        self.pretrain_records[str(run_dir)] = record
        return run_dir

    # ---- rows ------------------------------------------------------------------------------------------
    @staticmethod
    def row_name(row: dict[str, Any]) -> str:
        """``frac0.1_seed0``, or ``labels300_seed0`` for a row of a label count."""
        amount = f"labels{row['label_count']}" if row.get("label_count") else f"frac{row['fraction']:g}"
        return f"{amount}_seed{row['seed']}"

    def row_dir(self, row: dict[str, Any]) -> Path:
        return self.out / "runs" / row["preset"] / row["method"] / self.row_name(row)

    def record_path(self, row: dict[str, Any]) -> Path | None:
        """Where the row's record lies under ``records_dir`` (None without one)."""
        if self.records is None:
            return None
        return self.records / row["preset"] / row["method"] / f"{self.row_name(row)}.json"

    def recorded_row(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The row as recorded under ``records_dir`` by an earlier run, or None."""
        path = self.record_path(row)
        if path is None or not path.exists():
            return None
        return {**json.loads(path.read_text()), "recorded": str(path)}

    def write_setup_record(self, name: str, record: dict[str, Any]) -> None:
        """A dataset build's or pre-training's record under ``records_dir/setup`` (the runs table lists them)."""
        if self.records is not None and self.state.is_main_process:
            (self.records / "setup").mkdir(parents=True, exist_ok=True)
            (self.records / "setup" / f"{name}.json").write_text(
                json.dumps(record, indent=2, default=str) + "\n"
            )

    def recorded_setup(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Dataset builds and pre-trainings recorded under ``records_dir/setup`` by earlier runs."""
        datasets, pretraining = {}, {}
        for path in sorted(self.records.glob("setup/*.json")) if self.records is not None else []:
            record = json.loads(path.read_text())
            if "dataset" in record:
                datasets[record.pop("dataset")] = record
            else:
                pretraining[record["dir"]] = record
        return datasets, pretraining

    def write_record(self, result: dict[str, Any]) -> None:
        path = self.record_path(result)
        if path is None or not self.state.is_main_process:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")

    def run_row(self, row: dict[str, Any], dataset: Path) -> dict[str, Any]:
        spec = METHODS[row["method"]]
        run_dir = self.row_dir(row)
        if spec.task == "baseline":
            record, metrics, validation = self._radial_profile(run_dir, dataset, row)
        else:
            init_from = None
            if spec.pretrain:
                pool, _ = self.build_dataset(row["preset"], unlabelled=True)
                init_from = str(self.pretrain(spec.pretrain, row["preset"], row["seed"], pool))
            if spec.recipe == "knn":
                record = self._knn(run_dir, dataset, row, init_from)
            else:
                recipe, args = row_recipe_args(self.config, row, init_from)
                record = self._run(recipe, run_dir, args, dataset)
            saved = json.loads((run_dir / "metrics.json").read_text())
            metrics = {
                key.removeprefix("test_"): value for key, value in saved.items() if key.startswith("test_")
            }
            validation = {
                key.removeprefix("eval_"): value for key, value in saved.items() if key.startswith("eval_")
            }
        return {**row, "dir": str(run_dir), "metrics": metrics, "validation": validation, **record}

    def _radial_profile(self, run_dir: Path, dataset: Path, row: dict[str, Any]):
        with self.state.main_process_first():  # the main process fits it; the others then read its files
            return self._fit_radial_profile(run_dir, dataset, row)

    def _fit_radial_profile(self, run_dir: Path, dataset: Path, row: dict[str, Any]):
        """The radial-profile baseline on the networks' inputs (the runs' image size and normalisation) with
        the labels a network of the same fraction and seed trains on; also on the stored images."""
        from ..data import load_lensing_dataset
        from ..evaluation.baselines import radial_profile_baseline_on_dataset
        from ..image_processing_lens import LensImageProcessor

        record_path = run_dir / "study_run.json"
        if (run_dir / "metrics.json").exists() and record_path.exists():
            return json.loads(record_path.read_text()), json.loads((run_dir / "metrics.json").read_text()), {}
        started_at, start = _now(), time.perf_counter()
        common = recipe_sections(self.config, row["preset"]).get("common") or {}
        selection = {
            "label_fraction": row["fraction"],
            "label_count": row.get("label_count"),
            "seed": row["seed"],
        }
        stored = radial_profile_baseline_on_dataset(dataset, **selection)
        size = common.get("image_size")
        inputs = stored
        if size:
            train_split = load_lensing_dataset(str(dataset))["train"]
            processor = LensImageProcessor(
                size=size,
                do_resize=True,
                normalization=common.get("normalization", "minmax"),
                num_channels=train_split.features["pixel_values"].shape[0],  # 3 for g/r/i cut-outs
            )
            inputs = radial_profile_baseline_on_dataset(dataset, image_processor=processor, **selection)
        metrics = {("auc_macro" if key == "macro_auc" else key): value for key, value in inputs.items()}
        metrics["auc_macro_stored_images"] = stored["macro_auc"]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        command = (
            f"radial_profile_baseline_on_dataset({str(dataset)!r}, label_fraction={row['fraction']}, "
            + (f"label_count={row['label_count']}, " if row.get("label_count") else "")
            + f"seed={row['seed']}) (16 radial bins, logistic regression) on "
            + (f"the networks' {size} px inputs and on the stored images" if size else "the stored images")
        )
        record = _record(command, self.device, started_at, start)
        record_path.write_text(json.dumps(record, indent=2))
        return record, metrics, {}

    def _knn(self, run_dir: Path, dataset: Path, row: dict[str, Any], checkpoint: str) -> dict[str, Any]:
        with self.state.main_process_first():  # the main process scores it; the others then read its files
            return self._score_knn(run_dir, dataset, row, checkpoint)

    def _score_knn(
        self, run_dir: Path, dataset: Path, row: dict[str, Any], checkpoint: str
    ) -> dict[str, Any]:
        """DINO's kNN protocol on the frozen SSL encoder: the row's labelled fraction of the training split is the
        memory bank; validation and test are scored (saved as ``eval_*`` / ``test_*``, as a fine-tuning's)."""
        from ..data import load_lensing_dataset
        from ..data.selection import labelled_subset
        from ..evaluation.encoder import evaluate_encoder

        record_path = run_dir / "study_run.json"
        if (run_dir / "metrics.json").exists() and record_path.exists():
            return json.loads(record_path.read_text())
        started_at, start = _now(), time.perf_counter()
        splits = dict(load_lensing_dataset(str(dataset)).with_format("numpy"))
        splits["train"] = labelled_subset(
            splits["train"], row["fraction"], row["seed"], row.get("label_count")
        )
        metrics = {}
        for split, prefix in (("validation", "eval"), ("test", "test")):
            report = evaluate_encoder(
                checkpoint, splits, eval_split=split, output_dir=run_dir, plot=split == "test", progress=False
            )
            metrics |= {
                f"{prefix}_{key.removeprefix(f'knn_{split}_')}": v for key, v in report.metrics.items()
            }
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        command = (
            f"evaluate_encoder({checkpoint!r}, {str(dataset)!r}) with the train split's label_fraction="
            f"{row['fraction']}, "
            + (f"label_count={row['label_count']}, " if row.get("label_count") else "")
            + f"seed={row['seed']} as memory bank (k=20, T=0.07)"
        )
        record = _record(command, self.device, started_at, start)
        record_path.write_text(json.dumps(record, indent=2))
        return record

    # ---- best model ----------------------------------------------------------------------------------
    def copy_best(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Per preset: the classification method with the highest mean *validation* macro AUC at 100 %
        labels (the largest label count in a study of counts), and its seed with the highest validation macro
        AUC, copied with its card (a row known only from its record, whose folder is gone, is selected but not
        copied: rerun it to get its weights)."""
        chosen = {}
        for preset in self.config["presets"]:
            candidates = [
                row
                for row in rows
                if row["preset"] == preset
                and row["fraction"] == 1.0
                and METHODS[row["method"]].task == "classification"
                and "auc_macro" in row.get("validation", {})
            ]
            if not candidates:
                continue
            most_labels = max(row.get("label_count") or float("inf") for row in candidates)
            candidates = [
                row for row in candidates if (row.get("label_count") or float("inf")) == most_labels
            ]
            by_method: dict[str, list[dict[str, Any]]] = {}
            for row in candidates:
                by_method.setdefault(row["method"], []).append(row)
            method = max(
                by_method,
                key=lambda m: sum(r["validation"]["auc_macro"] for r in by_method[m]) / len(by_method[m]),
            )
            best = max(by_method[method], key=lambda r: r["validation"]["auc_macro"])
            selection = {
                "preset": preset,
                "method": method,
                "seed": best["seed"],
                "source": best["dir"],
                "validation_auc_macro": best["validation"]["auc_macro"],
                "test_metrics": best["metrics"],
                "rule": f"highest mean validation macro AUC over seeds at {label_amount(best)} labels, then its "
                "best seed on validation (the test split is never used for selection)",
            }
            chosen[preset] = selection
            if not Path(best["dir"], "model.safetensors").exists():
                logger.warning(
                    "best %s row of %s has no weights in %s: not copied", method, preset, best["dir"]
                )
                continue
            target = self.out / "best" / preset
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(best["dir"], target, ignore=shutil.ignore_patterns("checkpoint-*"))
            (target / "study_selection.json").write_text(json.dumps(selection, indent=2))
            with open(target / "README.md", "a") as card:
                card.write(
                    f"\n## Benchmark study selection\n\nBest model of the `{preset}` study: `{method}` (seed "
                    f"{best['seed']}), chosen by validation macro AUC; test macro AUC "
                    f"{best['metrics'].get('auc_macro', float('nan')):.4f}. Push with "
                    "`hf_deeplense.training.artifacts.push_run_to_hub(folder, repo_id)`.\n"
                )
        return chosen


def run_study(
    config: dict[str, Any],
    *,
    keep_going: bool = True,
    progress: bool = True,
    finished_only: bool = False,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a study and write its summary files under ``config["output_dir"]``.

    Args:
        config: a study config (:func:`load_study_config`).
        keep_going: a failed row is logged and recorded in ``failed``; otherwise the error is raised.
        progress: a tqdm bar over rows.
        finished_only: run nothing; write the summary files of the rows that have finished so far (a study
            stopped part-way, e.g. at the end of a session, reports what it measured).
        seeds: only the rows of these seeds (e.g. one process per seed of a long row: rows of different seeds
            never share a folder); `None`: every planned row.

    Returns:
        The ``study.json`` content plus ``launched`` (the runs started in this call; empty on a rerun of a
        finished study) and ``paths`` of the written files; on the other processes of a multi-process launch,
        only ``rows``, ``failed`` and ``launched``.
    """
    runner = _StudyRunner(config, device_description())
    runner.out.mkdir(parents=True, exist_ok=True)
    planned = [row for row in plan_rows(config) if seeds is None or row["seed"] in seeds]
    rows, failed = [], []
    # The objects alive now (the imported libraries, ~600k) outlive every run: kept out of the collector, the full
    # collections after each run (this runner's and accelerate's `free_memory`) take microseconds instead of ~0.3 s.
    # A caller's own freeze (a test session's) already covers them and is left as it was.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        for row in tqdm(planned, desc="study", disable=not progress):
            if (recorded := runner.recorded_row(row)) is not None:
                rows.append(recorded)
                continue
            if finished_only and not (runner.row_dir(row) / "metrics.json").exists():
                continue  # not finished: nothing to report, nothing launched
            try:
                rows.append(result := runner.run_row(row, runner.build_dataset(row["preset"])[0]))
                runner.write_record(result)
            except Exception as error:  # noqa: BLE001 - recorded and reported; the other rows still run
                if not keep_going:
                    raise
                logger.error("row %s failed: %s", row, error)
                failed.append({**row, "error": str(error)[-2000:]})
    finally:
        if freeze:
            gc.unfreeze()
    runner.state.wait_for_everyone()
    if not runner.state.is_main_process:
        return {"rows": rows, "failed": failed, "launched": runner.launched}

    recorded_datasets, recorded_pretraining = runner.recorded_setup()
    datasets = {name: (Path(record["dir"]), record) for name, record in recorded_datasets.items()}
    datasets |= runner.datasets
    pretraining = recorded_pretraining | runner.pretrain_records
    presets_in_rows = {row["preset"] for row in rows}
    datasets = {
        name: value for name, value in datasets.items() if name.removesuffix("_unlabelled") in presets_in_rows
    }
    pretraining = {key: record for key, record in pretraining.items() if record["preset"] in presets_in_rows}
    table = aggregate_rows(rows)
    targets = check_targets(table, config.get("targets", []))
    plot = plot_auc_vs_fraction(table, runner.out / "auc_vs_label_fraction.png")
    best = runner.copy_best(rows)
    study_command = config.get("study_command", "")
    preamble = (
        f"Device: {runner.device}. Finished {_now()}."
        + (f" Study command: `{study_command}`." if study_command else "")
        + f" Config: `{config.get('config_path', '')}`."
    )
    markdown = results_markdown(
        rows,
        table,
        class_names=config.get("class_names", ("no_sub", "cdm", "axion")),
        target_results=targets,
        plot_path=plot.name if plot else None,
        setup_runs=[
            {**record, "preset": name, "step": "build dataset", "seed": None}
            for name, (_, record) in datasets.items()
        ]
        + [{**record, "step": f"pretrain {record['kind']}"} for record in pretraining.values()],
        heading=config.get("results_heading", "## Benchmark study"),
        preamble=preamble,
    )
    markdown_path = runner.out / "RESULTS_section.md"
    markdown_path.write_text(markdown)
    summary = {
        "config": {key: value for key, value in config.items() if key != "targets"},
        "device": runner.device,
        "datasets": {name: {**record, "dir": str(path)} for name, (path, record) in datasets.items()},
        "pretraining": list(pretraining.values()),
        "rows": rows,
        "failed": failed,
        "table": table,
        "targets": targets,
        "best": best,
    }
    study_path = runner.out / "study.json"
    study_path.write_text(json.dumps(summary, indent=2, default=str))
    for line in format_target_lines(targets):
        print(line)
    return {
        **summary,
        "launched": runner.launched,
        "paths": {"study": study_path, "markdown": markdown_path, "plot": plot},
    }
