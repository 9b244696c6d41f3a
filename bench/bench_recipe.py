#!/usr/bin/env python
"""End-to-end training rate of a real recipe run against the bare train step of the same model and batch.

For each case, this script
1. builds (once, then reuses) a dataset in the hf_deeplense format: random non-negative images, 3 classes,
   written with `hf_deeplense.data.write_split` (or reads `--dataset-dir`);
2. runs `accelerate launch --num_processes 1 recipes/<recipe>.py ...` on it for `--max-steps` steps (and, unless
   `--smoke`, once more for `--short-steps` steps) and reads the Trainer's `train_samples_per_second`;
3. loads the config the recipe saved, builds the same model in this process and times its bare train step
   (forward, backward, fused AdamW; bf16 autocast on CUDA) at the same batch size with bench_models' timer;
4. prints `ratio = recipe images/s / bare images/s` (target >= 0.9 on a GPU).

`train_samples_per_second` divides all the samples by all of `train()`'s time, so start-up (first batches,
CUDA/cuBLAS initialisation, the data-loader workers) counts in it. The steady-state rate removes it: the
samples of the extra steps of the long run over its extra seconds, `(S_long - S_short) * batch /
(runtime_long - runtime_short)` (`steady_ratio`).

Usage:
    python bench/bench_recipe.py                            # pretrain_mae + finetune at GPU sizes on CUDA
    python bench/bench_recipe.py --cases pretrain_mae --json bench_recipe.json
    python bench/bench_recipe.py --smoke                    # tiny sizes, CPU, one short run per case
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for path in (REPO_ROOT, BENCH_DIR):  # runs from a checkout without an install; bench_models is a sibling
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_models  # noqa: E402

CLASS_NAMES = ("no_substructure", "cdm", "axion")


@dataclass(frozen=True)
class Sizes:
    """Model widths (the recipe's model arguments) and run lengths of one preset."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    decoder_hidden_size: int
    decoder_num_hidden_layers: int
    decoder_num_attention_heads: int
    decoder_intermediate_size: int
    image_size: int
    patch_size: int
    batch_size: int
    num_examples: int  # dataset size; the Trainer loops over it as often as max_steps needs
    max_steps: int
    short_steps: int  # 0: one run only (no steady-state rate)
    bare_warmup: int
    bare_steps: int
    num_workers: int


SIZES = {
    "full": Sizes(384, 12, 6, 1536, 256, 4, 8, 1024, 64, 8, 512, 16384, 300, 100, 5, 20, 8),
    "cpu": Sizes(64, 4, 2, 256, 32, 2, 2, 128, 32, 4, 32, 1024, 40, 10, 2, 10, 0),
    "smoke": Sizes(32, 2, 2, 64, 32, 1, 2, 64, 16, 4, 8, 64, 3, 0, 0, 2, 0),
    # the ViT and MAE of recipes/configs/study_cpu.yaml at its batch size (32 px there: `--image-size 32`
    # resizes a larger `--dataset-dir` as the study does)
    "study": Sizes(64, 4, 4, 128, 32, 1, 4, 64, 32, 8, 64, 1024, 300, 100, 3, 20, 0),
}


# ----------------------------------------------------------------------------------------------------------
# Recipes: how each is launched and which model its bare step builds
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    name: str
    script: str  # relative to the repository root
    auto_class: str  # transformers Auto class that builds the saved config's model
    loss_fn: bench_models.LossFn


RECIPES = {
    "pretrain_mae": Recipe(
        "pretrain_mae", "recipes/pretrain_mae.py", "AutoModelForPreTraining", bench_models.output_loss
    ),
    "finetune": Recipe(
        "finetune", "recipes/finetune.py", "AutoModelForImageClassification", bench_models.labelled_loss
    ),
}


def recipe_arguments(
    recipe: Recipe,
    sizes: Sizes,
    dataset_dir: Path,
    output_dir: Path,
    max_steps: int,
    data_on_device: bool = False,
    image_size: int | None = None,
) -> list[str]:
    """The recipe's command line: dataset, model size, and `TrainingArguments` that keep the run pure
    training (no evaluation, no checkpoints, no trackers, one log at the end). `data_on_device`: the images
    processed once and kept on the training device (`--data_on_device`, no workers, no pinning).
    `image_size`: the recipe resizes the dataset's images to it (`--image_size`)."""
    model = {  # image_size and num_channels: the recipe takes them from the dataset
        "patch_size": sizes.patch_size,
        "hidden_size": sizes.hidden_size,
        "num_hidden_layers": sizes.num_hidden_layers,
        "num_attention_heads": sizes.num_attention_heads,
        "intermediate_size": sizes.intermediate_size,
    }
    if recipe.name == "pretrain_mae":
        model |= {
            "decoder_hidden_size": sizes.decoder_hidden_size,
            "decoder_num_hidden_layers": sizes.decoder_num_hidden_layers,
            "decoder_num_attention_heads": sizes.decoder_num_attention_heads,
            "decoder_intermediate_size": sizes.decoder_intermediate_size,
            "mask_ratio": 0.75,
        }
    cuda = torch.cuda.is_available()
    training = {
        "output_dir": output_dir,
        "max_steps": max_steps,
        "per_device_train_batch_size": sizes.batch_size,
        "learning_rate": 1e-4,
        "weight_decay": 0.05,
        "optim": "adamw_torch_fused",
        "bf16": str(cuda).lower(),
        "eval_strategy": "no",
        "save_strategy": "no",
        "logging_strategy": "no",
        "report_to": "none",
        "dataloader_num_workers": 0 if data_on_device else sizes.num_workers,
        "dataloader_pin_memory": str(cuda and not data_on_device).lower(),
        "disable_tqdm": "true",
        "seed": 0,
    }
    arguments = ["--dataset", str(dataset_dir), "--model_config", json.dumps(model)]
    if data_on_device:
        arguments += ["--data_on_device", "true"]
    if image_size:
        arguments += ["--image_size", str(image_size)]
    for key, value in training.items():
        arguments += [f"--{key}", str(value)]
    return arguments


# ----------------------------------------------------------------------------------------------------------
# Dataset, launch, metrics
# ----------------------------------------------------------------------------------------------------------


def ensure_dataset(root: Path, sizes: Sizes, seed: int = 0) -> Path:
    """A train/validation/test dataset of random non-negative images (exponential pixel values, like
    counts), written once per size under `root` and reused (the writer skips finished shards)."""
    from hf_deeplense.data import lensing_features, num_shards_for, shard_bounds, write_split
    from hf_deeplense.data.card import write_dataset_card

    out_dir = root / f"random_{sizes.image_size}px_{sizes.num_examples}"
    shape = (1, sizes.image_size, sizes.image_size)
    features = lensing_features(list(CLASS_NAMES), image_shape=shape)
    counts = {"train": sizes.num_examples, "validation": max(8, sizes.num_examples // 16), "test": 8}
    for split_index, (split, count) in enumerate(counts.items()):
        num_shards = num_shards_for(count, 4096)

        def make_shard(index: int, split_index=split_index, count=count, num_shards=num_shards) -> dict:
            start, stop = shard_bounds(count, num_shards, index)
            rng = np.random.default_rng([seed, split_index, index])
            return {
                "pixel_values": rng.exponential(size=(stop - start, *shape)).astype(np.float32),
                "label": rng.integers(0, len(CLASS_NAMES), stop - start),
            }

        write_split(out_dir, split, num_shards, make_shard, features, progress=False)
    write_dataset_card(out_dir, title="Random images (bench/bench_recipe.py)", description="Throughput only.")
    return out_dir


# `{'train_runtime': 2.5, ...}` or `{'train_runtime': '2.5', ...}` (Trainer's final log; transformers 5 prints
# strings) or `  train_runtime = 2.5` (log_metrics; it prints the runtime as "0:00:02.50": refused)
_NUMBER = r"\s*[:=]\s*['\"]?([0-9][0-9.eE+-]*)(?=['\",}\s]|$)"
_LOGGED_RATE = re.compile(r"train_samples_per_second['\"]?" + _NUMBER)
_LOGGED_RUNTIME = re.compile(r"train_runtime['\"]?" + _NUMBER)


def read_train_metrics(output_dir: Path, log: str) -> dict[str, float]:
    """`train_samples_per_second` and `train_runtime` from the recipe's saved metrics or, failing that, its log."""
    for name in ("train_results.json", "all_results.json"):
        path = output_dir / name
        if path.is_file():
            metrics = json.loads(path.read_text())
            if "train_samples_per_second" in metrics:
                return {key: float(metrics[key]) for key in ("train_samples_per_second", "train_runtime")}
    rates, runtimes = _LOGGED_RATE.findall(log), _LOGGED_RUNTIME.findall(log)
    if not rates or not runtimes:
        raise RuntimeError(
            f"no train_samples_per_second in {output_dir}/train_results.json nor in the recipe's output:\n"
            + log[-3000:]
        )
    return {"train_samples_per_second": float(rates[-1]), "train_runtime": float(runtimes[-1])}


def launch(
    recipe: Recipe, arguments: Sequence[str], output_dir: Path, threads: int | None = None
) -> tuple[dict[str, float], float, list[str]]:
    """`accelerate launch` the recipe (one process, `threads` torch threads if given); returns its train metrics,
    wall seconds and command."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
        "--dynamo_backend", "no", str(REPO_ROOT / recipe.script), *arguments,
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise RuntimeError(f"{recipe.script} exited with {completed.returncode}:\n{log[-4000:]}")
    return read_train_metrics(output_dir, log), seconds, command


def saved_config(output_dir: Path):
    """The model config the recipe saved (the newest `config.json` with a `model_type` under `output_dir`)."""
    from transformers import AutoConfig

    import hf_deeplense  # noqa: F401  (registers the model types)

    candidates = sorted(
        (path for path in output_dir.rglob("config.json") if "model_type" in json.loads(path.read_text())),
        key=lambda path: path.stat().st_mtime,
    )
    if not candidates:
        raise FileNotFoundError(f"the recipe saved no model config.json under {output_dir}")
    return AutoConfig.from_pretrained(candidates[-1].parent)


def bare_step_rate(recipe: Recipe, config, sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """images/s of the bare train step of the model built from `config`, batch `sizes.batch_size`."""
    import transformers

    auto_class = getattr(transformers, recipe.auto_class)
    torch.manual_seed(0)
    model = auto_class.from_config(config).to(device).train()
    shape = bench_models.Shape(config.image_size, getattr(config, "patch_size", 0), sizes.batch_size)
    batches = bench_models.make_batches(shape, device)
    step = bench_models.make_train_step(model, recipe.loss_fn, bench_models.make_optimizer(model), device)
    times, _ = bench_models.time_steps(step, batches, device, sizes.bare_warmup, sizes.bare_steps)
    median = statistics.median(times)
    return {
        "bare_step_times_s": times,
        "bare_median_step_s": median,
        "bare_samples_per_second": sizes.batch_size / median,
    }


def run_case(
    recipe: Recipe,
    sizes: Sizes,
    dataset_dir: Path,
    work_dir: Path,
    device: torch.device,
    threads: int | None,
    data_on_device: bool = False,
    image_size: int | None = None,
) -> dict[str, Any]:
    shape = f"{image_size or sizes.image_size}px-p{sizes.patch_size}-b{sizes.batch_size}"
    record: dict[str, Any] = {
        "name": f"{recipe.name}/{shape}" + ("/data-on-device" if data_on_device else ""),
        "data_on_device": data_on_device,
        "recipe": recipe.script,
        "batch_size": sizes.batch_size,
    }
    runs = {}
    for label, steps in (("long", sizes.max_steps), ("short", sizes.short_steps)):
        if steps <= 0:
            continue
        output_dir = work_dir / f"{recipe.name}_{label}"
        shutil.rmtree(output_dir, ignore_errors=True)
        arguments = recipe_arguments(
            recipe, sizes, dataset_dir, output_dir, steps, data_on_device, image_size=image_size
        )
        metrics, seconds, command = launch(recipe, arguments, output_dir, threads)
        runs[label] = {"max_steps": steps, "wall_seconds": seconds, **metrics}
        if label == "long":
            record["command"] = shlex.join(["accelerate", "launch", *command[3:]])
            config = saved_config(output_dir)
    record["runs"] = runs
    record |= bare_step_rate(recipe, config, sizes, device)
    record["recipe_samples_per_second"] = runs["long"]["train_samples_per_second"]
    record["ratio"] = record["recipe_samples_per_second"] / record["bare_samples_per_second"]
    if "short" in runs:
        extra_steps = runs["long"]["max_steps"] - runs["short"]["max_steps"]
        extra_seconds = runs["long"]["train_runtime"] - runs["short"]["train_runtime"]
        steady = extra_steps * sizes.batch_size / extra_seconds if extra_seconds > 0 else None
        record["steady_samples_per_second"] = steady
        record["steady_ratio"] = steady / record["bare_samples_per_second"] if steady else None
    return record


def format_table(records: Sequence[dict[str, Any]]) -> str:
    header = f"{'case':<32} {'recipe img/s':>12} {'steady img/s':>12} {'bare img/s':>11} {'ratio':>6} {'steady':>7}"
    lines = [header, "-" * len(header)]
    for record in records:
        if "error" in record:
            lines.append(f"{record['name']:<32} ERROR: {record['error'].splitlines()[0][:120]}")
            continue
        steady = record.get("steady_samples_per_second")
        steady_ratio = record.get("steady_ratio")
        lines.append(
            f"{record['name']:<32} {record['recipe_samples_per_second']:>12.1f} "
            f"{(f'{steady:.1f}' if steady else '-'):>12} {record['bare_samples_per_second']:>11.1f} "
            f"{record['ratio']:>6.2f} {(f'{steady_ratio:.2f}' if steady_ratio else '-'):>7}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, CPU, one short run per case")
    parser.add_argument(
        "--preset",
        choices=sorted(SIZES),
        help="full (default on CUDA), cpu (default on CPU), smoke, study (the CPU study's ViT, batch 64)",
    )
    parser.add_argument(
        "--cases", default=",".join(RECIPES), help=f"comma-separated subset of {tuple(RECIPES)}"
    )
    parser.add_argument("--dataset-dir", type=Path, help="a built dataset to read (default: random images)")
    parser.add_argument(
        "--work-dir", type=Path, help="recipe outputs and the random dataset (default: a temp dir)"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help="the recipe's --image_size: resize the dataset's images to this size (default: the dataset's)",
    )
    parser.add_argument("--max-steps", type=int, help="steps of the long run (default: the preset's)")
    parser.add_argument(
        "--num-workers", type=int, help="the recipe's dataloader_num_workers (default: the preset's)"
    )
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads, recipe and bare step alike (smoke: 1)"
    )
    parser.add_argument(
        "--script", action="append", default=[], metavar="CASE=PATH", help="run another script for a case"
    )
    parser.add_argument(
        "--data-on-device",
        action="store_true",
        help="run the recipes with --data_on_device (images kept on the training device, no workers); rows "
        "named <case>/<shape>/data-on-device",
    )
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    recipes = dict(RECIPES)
    for item in args.script:
        case, _, path = item.partition("=")
        if case not in recipes or not path:
            parser.error(f"--script {item!r}: expected CASE=PATH with CASE in {tuple(RECIPES)}")
        recipes[case] = dataclasses.replace(recipes[case], script=path)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    preset = "smoke" if args.smoke else args.preset or ("full" if device.type == "cuda" else "cpu")
    sizes = SIZES[preset]
    if args.max_steps:
        sizes = dataclasses.replace(sizes, max_steps=args.max_steps)
    if args.num_workers is not None:
        sizes = dataclasses.replace(sizes, num_workers=args.num_workers)
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {tuple(RECIPES)}")
    threads = args.threads or (1 if args.smoke else None)
    if threads:
        torch.set_num_threads(threads)

    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="bench_recipe_"))
    dataset_dir = args.dataset_dir or ensure_dataset(work_dir / "data", sizes)
    records = []
    for name in names:
        recipe = recipes[name]
        if not (REPO_ROOT / recipe.script).is_file():
            records.append({"name": name, "error": f"{recipe.script} not found"})
            continue
        print(
            f"# {name}: accelerate launch {recipe.script} ({sizes.max_steps} + {sizes.short_steps} steps)",
            flush=True,
        )
        try:
            records.append(
                run_case(
                    recipe,
                    sizes,
                    dataset_dir,
                    work_dir,
                    device,
                    threads,
                    args.data_on_device,
                    image_size=args.image_size,
                )
            )
        except Exception as error:  # the other cases still run; reflected in the exit code
            records.append({"name": name, "error": f"{type(error).__name__}: {error}"})
    if not args.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(format_table(records), flush=True)
    if args.json:
        environment = {
            "device": bench_models.device_name(device),
            "device_type": device.type,
            "preset": preset,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(["python", "bench/bench_recipe.py", *argv]),
            "torch": torch.__version__,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"environment": environment, "sizes": sizes.__dict__, "rows": records}, indent=2)
        )
    return 1 if any("error" in record for record in records) else 0


if __name__ == "__main__":
    sys.exit(main())
