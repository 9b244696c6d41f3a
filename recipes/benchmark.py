"""Run a whole benchmark study: every preset x method x label fraction x seed.

    python recipes/benchmark.py --config recipes/configs/study_tiny.yaml --output_dir /tmp/study
    accelerate launch --multi_gpu --num_processes N recipes/benchmark.py --config recipes/configs/study_gpu.yaml
    python recipes/benchmark.py --config recipes/configs/study_gpu_quick.yaml --smoke   # the same plan, tiny, CPU

Each row runs `hf_deeplense.training.finetune`, `pretrain_mae`, `pretrain_ssl` or `anomaly` in this process
(on every process of a multi-process launch: one DDP group for every run); datasets are built once per preset and
SSL models pre-trained once per preset and seed. Rerunning resumes: rows whose `metrics.json` exists are not run
again, an interrupted row resumes from its last checkpoint. Writes
`study.json`, `RESULTS_section.md` (for RESULTS.md), `auc_vs_label_fraction.png` and `best/<preset>`.
Logic: `hf_deeplense.study`; tables and target checks: `hf_deeplense.evaluation.study`.
"""

from __future__ import annotations

import argparse
import copy
import logging
import shlex
import sys
from typing import Any

from hf_deeplense.study import load_study_config, run_study
from hf_deeplense.training import end_run

# --smoke: the config's plan (presets, methods, fractions, seeds, recipes and their arguments) at sizes a CPU runs
# in seconds: what a study config needs to start on a GPU is checked on a CPU, except the GPU itself.
SMOKE_PRESET = {"n_per_class": 24, "image_size": 16, "device": "cpu", "write_card": False}
SMOKE_MODEL = {
    "patch_size": 4,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "decoder_hidden_size": 16,
    "decoder_num_hidden_layers": 1,
    "decoder_num_attention_heads": 2,
    "decoder_intermediate_size": 32,
}
SMOKE_CNN_ARGS = {"channels": [8, 16, 32, 64]}  # a narrow ResNet (timm `channels`)
# label counts 6, 12, 18, ...: balanced over 2 or 3 classes, within 24 images a class
SMOKE_LABEL_COUNT_STEP = 6
SMOKE_RUN = {
    "max_steps": 2,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    "eval_strategy": "steps",
    "save_strategy": "steps",
    "eval_steps": 1,
    "save_steps": 1,
    "logging_steps": 1,
    "bf16": False,
    "torch_compile": False,
    "dataloader_num_workers": 0,
    "dataloader_pin_memory": False,
}


def _shrink_model(model_config: dict[str, Any], model_type: str | None) -> dict[str, Any]:
    shrunk = {key: SMOKE_MODEL.get(key, value) for key, value in model_config.items()}
    if isinstance(shrunk.get("backbone_config"), dict):  # SimCLR
        backbone = shrunk["backbone_config"]
        shrunk["backbone_config"] = _shrink_model(backbone, backbone.get("model_type"))
    if model_type == "deeplense_cnn" and shrunk.get("architecture", "resnet18") == "resnet18":
        shrunk["model_args"] = {**(shrunk.get("model_args") or {}), **SMOKE_CNN_ARGS}
    return shrunk


def smoke_config(config: dict[str, Any]) -> dict[str, Any]:
    """The study `config` with every preset 24 images a class at 16 px simulated on the CPU (no card), every
    model 32 wide and 2 layers deep (ResNets 8-64 channels), every run 2 steps of 8 images in fp32, evaluated and
    saved at each step, uncompiled, read in the main process; label counts become 6, 12, 18, ... (their
    `labels_<count>` sections and the targets follow); the output folder gets a `_smoke` suffix and no row records
    are written. The plan (rows, recipes, other arguments such as `data_on_device`) is the config's."""
    config = copy.deepcopy(config)
    config["output_dir"] = f"{config['output_dir'].rstrip('/')}_smoke"
    config.pop("records_dir", None)  # a smoke run's rows are no measurements
    for name, spec in config["presets"].items():
        spec = config["presets"][name] = {**(spec or {}), **SMOKE_PRESET}
        if spec.get("unlabelled_per_class"):
            spec["unlabelled_per_class"] = SMOKE_PRESET["n_per_class"]
    for model in config.get("models", {}).values():
        model["model_config"] = _shrink_model(model.get("model_config") or {}, model.get("model_type"))
    sections = config.setdefault("recipe_args", {})
    smoke_counts: dict[int, int] = {}  # label count -> its smoke count
    for spec in [config, *config["presets"].values()]:
        if spec.get("label_counts"):
            for index, count in enumerate(spec["label_counts"]):
                smoke_counts.setdefault(count, SMOKE_LABEL_COUNT_STEP * (index + 1))
            spec["label_counts"] = [smoke_counts[count] for count in spec["label_counts"]]
    groups = [sections, *(spec.get("recipe_args") or {} for spec in config["presets"].values())]
    for group in groups:  # the study's sections and the presets' own
        for count, smoke_count in smoke_counts.items():
            if f"labels_{count}" in group:
                group[f"labels_{smoke_count}"] = group.pop(f"labels_{count}")
    for target in config.get("targets") or []:
        for key in ("label_count", "reference_label_count"):
            if key in target:
                target[key] = smoke_counts.get(target[key], target[key])
    sections["common"] = {**(sections.get("common") or {}), **SMOKE_RUN}
    for group in groups:
        for section in group.values():
            if section and section is not sections["common"]:
                section.update({key: SMOKE_RUN[key] for key in section if key in SMOKE_RUN})
                section.pop("num_train_epochs", None)
    return config


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="study YAML (recipes/configs/study_*.yaml)")
    parser.add_argument("--output_dir", default=None, help="override the config's output_dir")
    parser.add_argument("--fail_fast", action="store_true", help="stop at the first failed row")
    parser.add_argument(
        "--finished_only",
        action="store_true",
        help="run nothing: write the tables of the rows finished so far (a study stopped part-way)",
    )
    parser.add_argument(
        "--presets",
        nargs="+",
        default=None,
        help="run only these presets of the config (e.g. one process per preset; then --finished_only over all)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="run only the rows of these seeds (e.g. one process per seed of a long row; then --finished_only)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the config's plan at tiny sizes on the CPU (seconds): 16 px, 24 images a class, 2-layer models, "
        "2 steps a run, fp32; output in <output_dir>_smoke",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_study_config(args.config)
    if args.smoke:
        config = smoke_config(config)
    if args.output_dir:
        config["output_dir"] = args.output_dir
    config["config_path"] = args.config
    if args.presets:
        if unknown := sorted(set(args.presets) - set(config["presets"])):
            parser.error(f"{args.config} has no preset(s) {unknown}; it has {sorted(config['presets'])}")
        config["presets"] = {name: config["presets"][name] for name in args.presets}
    config["study_command"] = shlex.join(["recipes/benchmark.py", *(sys.argv[1:] if argv is None else argv)])
    summary = run_study(
        config, keep_going=not args.fail_fast, finished_only=args.finished_only, seeds=args.seeds
    )
    end_run()
    if "paths" in summary:  # the main process
        print(
            f"{len(summary['rows'])} rows, {len(summary['failed'])} failed; {len(summary['launched'])} runs launched"
        )
        print(f"study: {summary['paths']['study']}\nRESULTS.md section: {summary['paths']['markdown']}")
    return summary


if __name__ == "__main__":
    main()
