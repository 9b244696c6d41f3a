"""recipes/benchmark.py end to end on the tiny CPU study (every run in-process, resume), plus the
aggregation, target checks and recipe arguments of hf_deeplense.study and hf_deeplense.evaluation.study."""

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from recipe_helpers import load_recipe

from hf_deeplense.evaluation.study import aggregate_rows, check_targets, format_target_lines, results_markdown
from hf_deeplense.simulation import get_preset
from hf_deeplense.study import (
    METHODS,
    load_study_config,
    plan_rows,
    pretrain_recipe_args,
    row_recipe_args,
    run_study,
)
from hf_deeplense.training import (
    AnomalyArguments,
    FinetuneArguments,
    LensingTrainingArguments,
    MAEArguments,
    SSLArguments,
    parse_recipe_args,
)
from hf_deeplense.training.data import DataArguments

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "recipes" / "configs"


@pytest.mark.slow  # 5 training runs on 2 shared cores
def test_tiny_study_end_to_end_and_resume(tmp_path, capsys):
    benchmark = load_recipe("benchmark")
    out = tmp_path / "study"
    summary = benchmark.main(["--config", str(CONFIGS / "study_tiny.yaml"), "--output_dir", str(out)])

    # 1 MAE pre-training (shared by both fractions) + 2 fractions x (vit, mae_linear_probe)
    tasks = sorted(command.split()[0] for command in summary["launched"])
    assert tasks == ["finetune"] * 4 + ["pretrain_mae"]
    study = json.loads((out / "study.json").read_text())
    assert study["failed"] == []
    keys = sorted((row["method"], row["fraction"]) for row in study["rows"])
    assert keys == [
        ("mae_knn", 0.5),
        ("mae_knn", 1.0),
        ("mae_linear_probe", 0.5),
        ("mae_linear_probe", 1.0),
        ("radial_profile", 0.5),
        ("radial_profile", 1.0),
        ("vit", 0.5),
        ("vit", 1.0),
    ]
    for row in study["rows"]:
        assert 0.0 <= row["metrics"]["auc_macro"] <= 1.0
        assert {"auc_no_sub", "auc_cdm", "auc_axion"} <= set(row["metrics"])
        assert row["device"] and row["started_at"] and row["wall_s"] >= 0
        if row["method"] == "mae_knn":  # the frozen encoder's kNN vote, memory bank: the row's labels
            assert (
                row["command"].startswith("evaluate_encoder(")
                and f"label_fraction={row['fraction']}" in row["command"]
            )
            assert 0.0 <= row["validation"]["auc_macro"] <= 1.0
            assert (Path(row["dir"]) / "plots" / "embedding_tsne_test.png").exists()
        elif row["method"] != "radial_profile":
            assert row["command"].startswith("finetune --config")
            args = yaml.safe_load(Path(row["config_file"]).read_text())
            assert args["label_fraction"] == row["fraction"]
            assert ("init_from" in args) == (row["method"] == "mae_linear_probe")
            assert 0.0 <= row["validation"]["auc_macro"] <= 1.0
    [pretraining] = study["pretraining"]
    assert pretraining["command"].startswith("pretrain_mae --config")
    # MAE pre-trains on the unlabelled pool: another seed, no test split
    pool = out / "data" / "model_ii_unlabelled"
    assert f"--dataset {pool} " in pretraining["command"]
    assert "seed=1" in study["datasets"]["model_ii_unlabelled"]["command"]
    assert "n_per_class=30" in study["datasets"]["model_ii_unlabelled"]["command"]
    # the radial-profile baseline fits on the labels the networks of its fraction train on, at their image size
    radial = {row["fraction"]: row for row in study["rows"] if row["method"] == "radial_profile"}
    assert "label_fraction=0.5" in radial[0.5]["command"] and "label_fraction=1.0" in radial[1.0]["command"]
    assert {"auc_macro", "auc_macro_stored_images"} <= set(radial[0.5]["metrics"])
    assert {group["method"] for group in study["table"]} == {
        "vit",
        "mae_linear_probe",
        "mae_knn",
        "radial_profile",
    }
    shortcut, ssl = study["targets"]
    assert shortcut["status"] == ("met" if shortcut["value"] <= 0.75 else "missed")
    assert ssl["reference"] == next(
        g["metrics"]["auc_macro"]["mean"]
        for g in study["table"]
        if (g["method"], g["fraction"]) == ("vit", 0.5)
    )
    assert all(t["status"] in ("met", "missed") for t in study["targets"])

    markdown = (out / "RESULTS_section.md").read_text()
    assert (
        "| model_ii | vit | 50% | 1 |" in markdown
        and "| model_ii | mae_linear_probe | 100% | 1 |" in markdown
    )
    # published DeepLense figures belong to the replica presets, not to the physical model_ii
    assert "CvT" not in markdown and "pretrain mae" in markdown
    assert "![macro AUC against label fraction](auc_vs_label_fraction.png)" in markdown
    assert (out / "auc_vs_label_fraction.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = out / "best" / "model_ii"
    selection = json.loads((best / "study_selection.json").read_text())
    assert selection["method"] in ("vit", "mae_linear_probe") and (best / "model.safetensors").exists()
    assert "Benchmark study selection" in (best / "README.md").read_text()
    assert not list(best.glob("checkpoint-*"))
    printed = capsys.readouterr().out
    assert "radial-profile shortcut stays weak" in printed and ("MET" in printed or "MISSED" in printed)

    # Rerun: every row is finished, so nothing runs again and the results are unchanged.
    summary = benchmark.main(["--config", str(CONFIGS / "study_tiny.yaml"), "--output_dir", str(out)])
    assert summary["launched"] == []
    rerun = json.loads((out / "study.json").read_text())
    assert [row["metrics"] for row in rerun["rows"]] == [row["metrics"] for row in study["rows"]]

    # A study stopped part-way: --finished_only reports the finished rows and runs nothing.
    unfinished = out / "runs" / "model_ii" / "vit" / "frac0.5_seed0"
    (unfinished / "metrics.json").unlink()
    argv = ["--config", str(CONFIGS / "study_tiny.yaml"), "--output_dir", str(out), "--finished_only"]
    summary = benchmark.main(argv)
    assert summary["launched"] == [] and not (unfinished / "metrics.json").exists()
    reported = {
        (row["method"], row["fraction"]) for row in json.loads((out / "study.json").read_text())["rows"]
    }
    assert ("vit", 0.5) not in reported and ("vit", 1.0) in reported and len(reported) == len(keys) - 1
    assert "| model_ii | vit | 50% |" not in (out / "RESULTS_section.md").read_text()


def test_method_sections_and_fraction_sections_merge_in_order():
    config = {
        "models": {"resnet18": {"model_type": "deeplense_cnn"}},
        "recipe_args": {
            "common": {"max_steps": 10, "learning_rate": 0.1},
            "finetune": {"max_steps": 20},
            "method_resnet18": {"max_steps": 30, "eval_steps": 5},
            "fraction_0.01": {"max_steps": 40},
        },
    }
    row = {"preset": "p", "method": "resnet18", "fraction": 0.1, "seed": 2}
    _, args = row_recipe_args(config, row)
    assert (args["max_steps"], args["eval_steps"], args["learning_rate"], args["seed"]) == (30, 5, 0.1, 2)
    _, args = row_recipe_args(config, {**row, "fraction": 0.01})
    assert (args["max_steps"], args["eval_steps"]) == (40, 5)


def _row(method, fraction, seed, **metrics):
    return {"preset": "model_ii", "method": method, "fraction": fraction, "seed": seed, "metrics": metrics}


def test_aggregate_rows_mean_and_sample_std_over_seeds():
    rows = [
        _row("vit", 0.1, 0, auc_macro=0.8, auc_cdm=0.7),
        _row("vit", 0.1, 1, auc_macro=0.9, auc_cdm=math.nan),
        _row("vit", 0.1, 2, auc_macro=1.0, auc_cdm=0.9),
        _row("vit", 1.0, 0, auc_macro=0.95),
        _row("regression", 1.0, 0, mean_absolute_error=0.3),
        {**_row("vit", 0.01, 0), "metrics": {}},  # unfinished: left out
    ]
    table = aggregate_rows(rows)
    assert [(g["method"], g["fraction"]) for g in table] == [("regression", 1.0), ("vit", 0.1), ("vit", 1.0)]
    group = table[1]
    assert group["seeds"] == [0, 1, 2] and group["n"] == 3
    assert group["metrics"]["auc_macro"]["mean"] == pytest.approx(0.9)
    assert group["metrics"]["auc_macro"]["std"] == pytest.approx(0.1)  # sample std (ddof = 1)
    assert group["metrics"]["auc_cdm"] == {
        "mean": pytest.approx(0.8),
        "std": pytest.approx(0.1414213),
        "n": 2,
    }
    assert table[2]["metrics"]["auc_macro"] == {"mean": 0.95, "std": 0.0, "n": 1}


def test_check_targets_value_reference_margin_and_missing():
    table = aggregate_rows(
        [
            _row("vit", 0.01, 0, auc_macro=0.70),
            _row("mae_finetune", 0.01, 0, auc_macro=0.80),
            _row("regression", 1.0, 0, mean_absolute_error=0.25),
        ]
    )
    targets = [
        {
            "name": "regression",
            "preset": "model_ii",
            "method": "regression",
            "metric": "mean_absolute_error",
            "op": "<=",
            "value": 0.221,
        },
        {
            "name": "ssl",
            "preset": "model_ii",
            "method": "mae_finetune",
            "fraction": 0.01,
            "metric": "auc_macro",
            "op": ">",
            "reference_method": "vit",
        },
        {
            "name": "ssl+",
            "preset": "model_ii",
            "method": "mae_finetune",
            "fraction": 0.01,
            "metric": "auc_macro",
            "op": ">=",
            "reference_method": "vit",
            "margin": 0.15,
        },
        {
            "name": "absent",
            "preset": "model_i",
            "method": "vit",
            "metric": "auc_macro",
            "op": ">=",
            "value": 0.9,
        },
    ]
    results = check_targets(table, targets)
    assert [r["status"] for r in results] == ["missed", "met", "missed", "not run"]
    assert results[1]["value"] == pytest.approx(0.8) and results[1]["reference"] == pytest.approx(0.7)
    assert results[2]["reference"] == pytest.approx(0.85)
    lines = format_target_lines(results)
    assert lines[0].startswith("MISSED") and "0.2500 <= 0.2210" in lines[0]
    assert lines[1].startswith("MET") and "0.8000 > 0.7000 (vit)" in lines[1] and "at 1% labels" in lines[1]
    assert lines[3].startswith("NOT RUN")
    with pytest.raises(ValueError, match="exactly one of value"):
        check_targets(table, [{**targets[0], "reference_method": "vit"}])
    with pytest.raises(ValueError, match="op must be one of"):
        check_targets(table, [{**targets[0], "op": "=="}])


def test_markdown_lists_groups_published_figures_and_commands():
    rows = [
        {
            **_row("vit", 1.0, 0, auc_macro=0.9, auc_no_sub=0.95),
            "command": "python recipes/finetune.py --x",
            "device": "H100",
            "started_at": "2026-01-01T00:00:00",
            "wall_s": 12.0,
        },
        {
            **_row("anomaly", 1.0, 0, anomaly_auc=0.93),
            "command": "python recipes/anomaly.py",
            "device": "H100",
            "started_at": "2026-01-01T00:01:00",
            "wall_s": 5.0,
        },
    ]
    text = results_markdown(rows, aggregate_rows(rows), heading="## Study")
    assert text.startswith("## Study")
    # no radial-profile row: no baseline and no margin
    assert "| model_ii | vit | 100% | 1 | 0.900 | — | — | 0.950 | — | — |" in text
    with_baseline = [*rows, _row("radial_profile", 1.0, 0, auc_macro=0.75)]
    text_with_baseline = results_markdown(with_baseline, aggregate_rows(with_baseline))
    assert "| model_ii | vit | 100% | 1 | 0.900 | 0.750 | +0.150 | 0.950 | — | — |" in text_with_baseline
    assert "| model_ii | radial_profile | 100% | 1 | 0.750 | 0.750 | — |" in text_with_baseline
    assert "| model_ii | anomaly | 1 | — | 0.930 |" in text
    assert "0.999 / 0.999 / 1.0" not in text  # physical preset: no published figure beside it
    replica = [{**row, "preset": "deeplense_model_ii"} for row in rows]
    text = results_markdown(replica, aggregate_rows(replica), heading="## Study")
    assert "| deeplense_model_ii | CvT, AUC axion / cdm / no_sub | 0.999 / 0.999 / 1.0 |" in text
    assert "Caveat" in text
    assert "`python recipes/finetune.py --x`" in text and "| H100 | 2026-01-01T00:00:00 | 12 |" in text


def assert_every_recipe_accepts_its_arguments(config, rows, preset, tmp_path):
    """Each recipe of the study's rows (seed 0 of one preset) and pre-trainings parses its arguments (CPU)."""
    dataclasses_of = {
        "finetune": FinetuneArguments,
        "anomaly": AnomalyArguments,
        "pretrain_mae": MAEArguments,
        "pretrain_simclr": SSLArguments,
        "pretrain_ssl": SSLArguments,
    }
    kinds = [kind for kind in ("mae", "simclr", "dino", "byol", "simsiam") if kind in config["models"]]
    invocations = [pretrain_recipe_args(config, kind, 0) for kind in kinds]
    invocations += [
        row_recipe_args(config, row, "ckpt" if METHODS[row["method"]].pretrain else None)
        for row in rows
        if METHODS[row["method"]].recipe not in ("", "knn") and row["seed"] == 0 and row["preset"] == preset
    ]
    assert len(invocations) > 2
    for recipe, args in invocations:
        args = {key: value for key, value in args.items() if key not in ("bf16", "dataloader_num_workers")}
        path = tmp_path / "args.yaml"
        path.write_text(yaml.safe_dump(args))
        parsed = parse_recipe_args(
            (dataclasses_of[recipe], DataArguments, LensingTrainingArguments),
            ["--config", str(path), "--dataset", "unused", "--output_dir", str(tmp_path / "run")],
        )
        assert parsed[2].seed == 0
        if recipe == "finetune":
            assert parsed[0].label_fraction == args["label_fraction"]
            assert parsed[0].label_count == args.get("label_count")


def test_gpu_study_plan_and_every_recipe_accepts_its_arguments(tmp_path):
    config = load_study_config(CONFIGS / "study_gpu.yaml")
    rows = plan_rows(config)
    # per preset: 8 classification methods and the radial-profile baseline x 3 fractions x 3 seeds, regression +
    # anomaly x 3 seeds
    assert len(rows) == 3 * (9 * 3 * 3 + 2 * 3)
    assert set(config["methods"]) <= set(METHODS)
    assert {target["preset"] for target in config["targets"]} == set(config["presets"])
    assert_every_recipe_accepts_its_arguments(config, rows, "deeplense_model_ii", tmp_path)


def test_quick_gpu_study_plan_keeps_the_data_on_the_gpu_and_every_recipe_accepts_its_arguments(tmp_path):
    """One device command: the Model II replica, seed 0, ResNet-18 / ViT / MAE fine-tuned / radial profile at
    three fractions; simulated on the GPU, images kept there, bf16, no DataLoader workers."""
    config = load_study_config(CONFIGS / "study_gpu_quick.yaml")
    rows = plan_rows(config)
    assert {(row["method"], row["fraction"]) for row in rows} == {
        (method, fraction)
        for method in ("resnet18", "vit", "mae_finetune", "radial_profile")
        for fraction in (0.01, 0.1, 1.0)
    }
    assert {row["seed"] for row in rows} == {0} and set(config["presets"]) == {"deeplense_model_ii"}
    assert config["presets"]["deeplense_model_ii"]["device"] == "cuda"
    for row in rows:
        if row["method"] != "radial_profile":
            _, args = row_recipe_args(config, row, "ckpt" if METHODS[row["method"]].pretrain else None)
            assert args["data_on_device"] and args["bf16"]
            assert (args["dataloader_num_workers"], args["dataloader_pin_memory"]) == (0, False)
    _, mae = pretrain_recipe_args(config, "mae", 0)
    assert mae["data_on_device"] and mae["max_steps"] == 1200
    assert {target["method"] for target in config["targets"]} <= set(config["methods"])
    assert_every_recipe_accepts_its_arguments(config, rows, "deeplense_model_ii", tmp_path)


def test_cpu_study_plans_more_seeds_for_few_labels_and_every_recipe_accepts_its_arguments(tmp_path):
    config = load_study_config(CONFIGS / "study_cpu.yaml")
    rows = plan_rows(config)
    main = {"deeplense_model_ii", "deeplense_model_ii_controlled", "model_ii"}
    ablations = {"model_ii_noiseless", "model_ii_fixed_lens", "model_ii_uncompensated"}
    assert set(config["presets"]) == main | ablations | {
        "deeplense_model_ii_ssl",
        "deeplense_model_ii_controlled_64px",
        "deeplense_model_ii_controlled_raw",
        "deeplense_model_ii_controlled_long",
        "deeplense_model_ii_controlled_random_flux",
        "model_ii_long",
        "model_ii_raw",
    }
    # per main preset: 7 classification methods, the MAE's and SimCLR's kNN votes and the radial-profile baseline x
    # (3 seeds at 1% and 10% + 1 at 100%), regression, anomaly; per ablation: ResNet-18, the baseline and the
    # long-schedule hybrid at 100%; the SSL preset: the baseline, the ViT and 15 SSL methods (kNN, linear probe,
    # fine-tune of each) at 10% and 100% with one seed, two regressions; the controlled variant at 64 px and unnormalised (baseline, hybrid, ResNet-18) and
    # with the long schedules (baseline, hybrid, ResNet-18; three seeds), unnormalised with a varying source magnitude
    # (baseline, hybrid, ResNet-18); model_ii with the long schedule, also unnormalised
    assert len(rows) == 3 * (10 * (3 + 3 + 1) + 2) + 3 * 3 + (17 * 2 + 2) + 3 + 3 + 3 * 3 + 3 + 2 + 2
    by_preset = {row["preset"]: row for row in rows if row["method"] == "hybrid" and row["fraction"] == 1.0}
    hybrid = {name: row_recipe_args(config, row)[1] for name, row in by_preset.items()}
    assert hybrid["deeplense_model_ii_controlled_64px"]["image_size"] == 64
    assert hybrid["deeplense_model_ii_controlled_raw"]["normalization"] == "none"
    assert hybrid["model_ii_raw"]["normalization"] == "none"
    assert hybrid["deeplense_model_ii_controlled_random_flux"]["normalization"] == "none"
    random_flux = config["presets"]["deeplense_model_ii_controlled_random_flux"]
    fixed = get_preset(random_flux["preset"]).source_magnitude_range
    varied = get_preset(random_flux["preset"], **random_flux["overrides"]).source_magnitude_range
    assert fixed[0] == fixed[1] and varied[0] < fixed[0] < varied[1]  # spread around the controlled variant's
    assert hybrid["deeplense_model_ii_controlled"]["image_size"] == 32
    assert "normalization" not in hybrid["deeplense_model_ii_controlled"]  # the recipes' default: minmax
    long = {
        "deeplense_model_ii_controlled_long",
        "deeplense_model_ii_controlled_raw",
        "deeplense_model_ii_controlled_random_flux",
        "model_ii_long",
        "model_ii_raw",
        *ablations,
    }
    for name, args in hybrid.items():  # the long schedule: 4x the hybrid's steps, evaluated as often per step
        steps = hybrid["model_ii"]["max_steps"] * (4 if name in long else 1)
        assert (args["max_steps"], args["eval_steps"]) == (steps, steps // 10 if name in long else 300)
    resnet = {
        name: row_recipe_args(config, {**row, "method": "resnet18"})[1]["max_steps"]
        for name, row in by_preset.items()
        if name in ("deeplense_model_ii_controlled", "deeplense_model_ii_controlled_long")
    }
    assert resnet["deeplense_model_ii_controlled_long"] == 4 * resnet["deeplense_model_ii_controlled"]
    assert {(r["method"], r["fraction"]) for r in rows if r["preset"] in ablations} == {
        ("resnet18", 1.0),
        ("radial_profile", 1.0),
        ("hybrid", 1.0),
    }
    vit_seeds = {
        (r["fraction"], r["seed"]) for r in rows if r["method"] == "vit" and r["preset"] == "model_ii"
    }
    assert vit_seeds == {(0.01, 0), (0.01, 1), (0.01, 2), (0.1, 0), (0.1, 1), (0.1, 2), (1.0, 0)}
    assert_every_recipe_accepts_its_arguments(config, rows, "model_ii", tmp_path)
    assert_every_recipe_accepts_its_arguments(config, rows, "deeplense_model_ii_ssl", tmp_path)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**config, "seeds_per_fraction": {0.5: [0, 1]}}))
    with pytest.raises(ValueError, match="seeds_per_fraction"):
        load_study_config(path)


def test_config_errors_name_the_file(tmp_path):
    path = tmp_path / "study.yaml"
    base = yaml.safe_load((CONFIGS / "study_tiny.yaml").read_text())
    path.write_text(yaml.safe_dump({**base, "methods": ["vit", "unknown_method"]}))
    with pytest.raises(ValueError, match="study.yaml: unknown method"):
        load_study_config(path)
    path.write_text(yaml.safe_dump({**base, "methods": ["hybrid"]}))
    with pytest.raises(ValueError, match=r"lacks \['hybrid'\]"):
        load_study_config(path)
    path.write_text(yaml.safe_dump({**base, "fractions": [0.0, 1.0]}))
    with pytest.raises(ValueError, match="label fractions"):
        load_study_config(path)


def test_a_presets_own_recipe_args_update_the_studys_section_by_section(tmp_path):
    config = {
        "models": {"mae": {"model_type": "deeplense_mae"}, "vit": {"model_type": "deeplense_vit"}},
        "presets": {
            "small": None,
            "large": {"recipe_args": {"common": {"image_size": 64}, "method_vit": {"max_steps": 7}}},
        },
        "recipe_args": {
            "common": {"image_size": 32, "max_steps": 10},
            "method_vit": {"max_steps": 20, "eval_steps": 5},
            "pretrain_mae": {"max_steps": 30},
        },
    }
    row = {"preset": "small", "method": "vit", "fraction": 1.0, "seed": 0}
    _, args = row_recipe_args(config, row)
    assert (args["image_size"], args["max_steps"], args["eval_steps"]) == (32, 20, 5)
    _, args = row_recipe_args(config, {**row, "preset": "large"})
    assert (args["image_size"], args["max_steps"], args["eval_steps"]) == (64, 7, 5)
    assert pretrain_recipe_args(config, "mae", 0, "large")[1]["image_size"] == 64
    assert pretrain_recipe_args(config, "mae", 0, "small")[1]["image_size"] == 32
    assert config["recipe_args"]["common"]["image_size"] == 32  # the study's sections are not edited
    # --smoke shrinks a preset's own sections as it does the study's, and renames their label-count sections
    config["presets"]["large"]["label_counts"] = [300]
    config["presets"]["large"]["recipe_args"]["labels_300"] = {"eval_steps": 50}
    smoke = load_recipe("benchmark").smoke_config({**config, "output_dir": str(tmp_path)})
    assert smoke["presets"]["large"]["recipe_args"]["method_vit"]["max_steps"] == 2
    assert row_recipe_args(smoke, {**row, "preset": "large"})[1]["max_steps"] == 2
    assert smoke["presets"]["large"]["label_counts"] == [6]
    assert smoke["presets"]["large"]["recipe_args"]["labels_6"] == {"eval_steps": 1}
    assert "labels_300" not in smoke["presets"]["large"]["recipe_args"]
    path = tmp_path / "study.yaml"
    base = yaml.safe_load((CONFIGS / "study_tiny.yaml").read_text())
    preset = next(iter(base["presets"]))
    base["presets"][preset] = {**(base["presets"][preset] or {}), "recipe_args": {"common": 64}}
    path.write_text(yaml.safe_dump(base))
    with pytest.raises(ValueError, match=f"presets.{preset}.recipe_args"):
        load_study_config(path)


def test_check_targets_against_another_label_fraction():
    """A target across fractions: SSL fine-tuned on 10% of the labels >= supervised ResNet-18 on 100%."""
    table = aggregate_rows(
        [
            _row("resnet18", 1.0, 0, auc_macro=0.90),
            _row("resnet18", 0.1, 0, auc_macro=0.60),
            _row("mae_finetune", 0.1, 0, auc_macro=0.85),
        ]
    )
    target = {
        "name": "ssl 10% vs resnet 100%",
        "preset": "model_ii",
        "method": "mae_finetune",
        "fraction": 0.1,
        "metric": "auc_macro",
        "op": ">=",
        "reference_method": "resnet18",
        "reference_fraction": 1.0,
    }
    (result,) = check_targets(table, [target])
    assert result["status"] == "missed" and result["reference"] == pytest.approx(0.90)
    (same_fraction,) = check_targets(table, [{k: v for k, v in target.items() if k != "reference_fraction"}])
    assert same_fraction["status"] == "met" and same_fraction["reference"] == pytest.approx(0.60)


def test_the_plot_has_a_panel_per_preset_with_several_label_fractions_three_a_row(tmp_path):
    from PIL import Image

    from hf_deeplense.evaluation.study import plot_auc_vs_fraction

    def preset(name, fractions):
        return [
            {**_row(method, f, 0, auc_macro=0.6 + f / 10), "preset": name}
            for f in fractions
            for method in ("vit", "radial_profile")
        ]

    curves = [row for index in range(4) for row in preset(f"curve{index}", (0.01, 0.1, 1.0))]
    single = [row for index in range(3) for row in preset(f"ablation{index}", (1.0,))]
    sizes = []
    for rows in (curves, curves + single, curves[:12]):
        path = plot_auc_vs_fraction(aggregate_rows(rows), tmp_path / f"plot{len(sizes)}.png")
        sizes.append(Image.open(path).size)
    # 4 curves: 2 rows of 3 panels (5 x 4 in each, 120 dpi) and the legend's 2 in; the 100 %-only presets add none;
    # 2 curves: 1 row of 2
    assert sizes == [(2040, 960), (2040, 960), (1440, 480)]
    assert plot_auc_vs_fraction(aggregate_rows(single), tmp_path / "none.png") is None


def test_a_method_has_one_colour_in_every_panel_of_the_plot(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from hf_deeplense.evaluation.study import plot_auc_vs_fraction

    drawn = []
    errorbar = Axes.errorbar

    def record(self, *args, **kwargs):
        drawn.append((kwargs["label"], kwargs["color"]))
        return errorbar(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", record)
    rows = [  # the first panel has a method the second lacks: colours by position in a panel would differ
        {**_row(method, fraction, 0, auc_macro=0.7), "preset": preset}
        for preset, methods in (("a", ("hybrid", "vit")), ("b", ("vit",)))
        for method in methods
        for fraction in (0.1, 1.0)
    ]
    plot_auc_vs_fraction(aggregate_rows(rows), tmp_path / "plot.png")
    vit = {colour for label, colour in drawn if label == "vit"}
    hybrid = {colour for label, colour in drawn if label == "hybrid"}
    assert len(drawn) == 3 and len(vit) == 1 and vit != hybrid


def test_the_plot_has_one_legend_beside_the_panels_naming_every_method_once(tmp_path, monkeypatch):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hf_deeplense.evaluation.study import plot_auc_vs_fraction

    legends = []
    figure_legend = Figure.legend

    def record(self, *args, **kwargs):
        legends.append([(handle.get_label(), handle.get_linestyle()) for handle in kwargs["handles"]])
        return figure_legend(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "legend", record)
    monkeypatch.setattr(Axes, "legend", lambda *args, **kwargs: pytest.fail("a panel drew its own legend"))
    rows = [
        {**_row(method, fraction, 0, auc_macro=0.7), "preset": preset}
        for preset, methods in (("a", ("vit", "radial_profile")), ("b", ("hybrid", "vit")))
        for method in methods
        for fraction in (0.1, 1.0)
    ]
    plot_auc_vs_fraction(aggregate_rows(rows), tmp_path / "plot.png")
    assert legends == [[("hybrid", "-"), ("radial_profile", "--"), ("vit", "-")]]


def test_a_study_hands_the_garbage_collector_back_as_it_found_it(tmp_path):
    """`run_study` keeps the objects alive at its start out of the garbage collector while its rows run, then
    unfreezes what it froze; a caller's own freeze (this test session's, tests/conftest.py) stays."""
    import gc

    config = load_study_config(CONFIGS / "study_tiny.yaml")
    config["output_dir"] = str(tmp_path / "study")
    frozen = gc.get_freeze_count()
    run_study(config, progress=False, finished_only=True)  # runs no row: only the freeze around the loop
    assert frozen > 0 and gc.get_freeze_count() == frozen
    gc.unfreeze()
    try:
        run_study(config, progress=False, finished_only=True)
        assert gc.get_freeze_count() == 0
    finally:
        gc.freeze()


def test_check_targets_against_another_preset():
    """A target across presets: a run of one preset (e.g. a longer schedule) against a row of another."""
    table = aggregate_rows(
        [
            _row("resnet18", 1.0, 0, auc_macro=0.62),
            {**_row("hybrid", 1.0, 0, auc_macro=0.74), "preset": "model_ii_long"},
            {**_row("resnet18", 1.0, 0, auc_macro=0.80), "preset": "model_ii_long"},
        ]
    )
    target = {
        "name": "long hybrid vs resnet",
        "preset": "model_ii_long",
        "method": "hybrid",
        "metric": "auc_macro",
        "op": ">=",
        "reference_method": "resnet18",
        "reference_preset": "model_ii",
    }
    (result,) = check_targets(table, [target])
    assert result["status"] == "met" and result["reference"] == pytest.approx(0.62)
    assert "model_ii resnet18" in format_target_lines([result])[0]
    (own_preset,) = check_targets(table, [{k: v for k, v in target.items() if k != "reference_preset"}])
    assert own_preset["status"] == "missed" and own_preset["reference"] == pytest.approx(0.80)
    (absent,) = check_targets(table, [{**target, "reference_preset": "nowhere"}])
    assert absent["status"] == "not run"


def test_row_records_carry_a_study_to_a_machine_whose_output_dir_is_gone(tmp_path):
    config = yaml.safe_load((CONFIGS / "study_tiny.yaml").read_text())
    config.update(methods=["radial_profile", "vit"], fractions=[1.0], targets=[])
    config["records_dir"] = str(tmp_path / "records")
    config_path = tmp_path / "study.yaml"
    config_path.write_text(yaml.safe_dump(config))
    benchmark = load_recipe("benchmark")
    out = tmp_path / "study"
    argv = ["--config", str(config_path), "--output_dir", str(out)]
    first = benchmark.main(argv)
    assert [command.split()[0] for command in first["launched"]] == ["finetune"]
    record = json.loads((tmp_path / "records" / "model_ii" / "vit" / "frac1_seed0.json").read_text())
    assert record["metrics"] == next(row["metrics"] for row in first["rows"] if row["method"] == "vit")
    assert record["command"].startswith("finetune --config") and record["wall_s"] > 0
    assert sorted(path.name for path in (tmp_path / "records" / "setup").iterdir()) == [
        "dataset_model_ii.json"
    ]

    # Another machine: the output folder is gone, the committed records are not; nothing runs again and the
    # tables (rows, their commands and the dataset build) are the same.
    shutil.rmtree(out)
    for extra in ([], ["--finished_only"]):
        again = benchmark.main(argv + extra)
        assert again["launched"] == [] and not (out / "data").exists()
        assert [row["metrics"] for row in again["rows"]] == [row["metrics"] for row in first["rows"]]
        markdown = (out / "RESULTS_section.md").read_text()
        assert "| model_ii | vit | 100% | 1 |" in markdown and "build_simulated_dataset(" in markdown
    # the best row's weights went with the folder: selected (on validation) but not copied
    assert not (out / "best").exists()

    # --smoke never writes records (its rows are no measurements)
    assert "records_dir" not in benchmark.smoke_config(config)


def test_seeds_option_runs_only_the_rows_of_those_seeds(tmp_path):
    """`--seeds 1`: one process per seed of a long row; the seed-0 rows are neither run nor reported."""
    config = yaml.safe_load((CONFIGS / "study_tiny.yaml").read_text())
    config.update(methods=["radial_profile"], fractions=[0.5, 1.0], seeds=[0, 1], targets=[])
    config_path = tmp_path / "study.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "study"
    argv = ["--config", str(config_path), "--output_dir", str(out)]
    summary = load_recipe("benchmark").main([*argv, "--seeds", "1"])
    assert sorted((row["fraction"], row["seed"]) for row in summary["rows"]) == [(0.5, 1), (1.0, 1)]
    assert not (out / "runs" / "model_ii" / "radial_profile" / "frac1_seed0").exists()
    assert (out / "runs" / "model_ii" / "radial_profile" / "frac1_seed1" / "metrics.json").is_file()
    reported = load_recipe("benchmark").main([*argv, "--finished_only"])["rows"]
    assert [row["seed"] for row in reported] == [1, 1]


LENS_FINDING_LABELLED = [
    "vit",
    "resnet18",
    "dino_knn",
    "dino_linear_probe",
    "dino_finetune",
    "simclr_knn",
    "simclr_linear_probe",
    "simclr_finetune",
    "mae_knn",
    "mae_linear_probe",
    "mae_finetune",
]


def test_lens_finding_study_plans_label_counts_and_every_recipe_accepts_its_arguments(tmp_path):
    """300, 600 and 1,200 labels for every method on the 3-band lens_finding preset; the counts reach `finetune`
    (`label_count`) with their `labels_<count>` schedule; the unlabelled pool keeps the natural lens fraction."""
    config = load_study_config(CONFIGS / "study_lens_finding_cpu.yaml")
    rows = plan_rows(config)
    assert set(config["presets"]) == {"lens_finding"} and config["class_names"] == ["non_lens", "lens"]
    assert {(row["method"], row["label_count"]) for row in rows} == {
        (method, count) for method in ["radial_profile", *LENS_FINDING_LABELLED] for count in (300, 600, 1200)
    }
    assert len(rows) == 12 * 3 and all(row["fraction"] == 1.0 and row["seed"] == 0 for row in rows)
    steps = {}
    for row in rows:
        if METHODS[row["method"]].recipe == "finetune":
            _, args = row_recipe_args(config, row, "ckpt" if METHODS[row["method"]].pretrain else None)
            assert args["label_count"] == row["label_count"] and args["image_size"] == 32
            assert not args.get("load_best_model_at_end")  # no selection on validation labels
            steps[row["label_count"]] = args["max_steps"]
    assert steps == {300: 300, 600: 400, 1200: 500}
    preset = config["presets"]["lens_finding"]
    assert preset["overrides"] == {"lens_fraction": 0.5}
    assert preset["unlabelled_overrides"] == {"lens_fraction": 0.06}
    assert {target.get("label_count") for target in config["targets"]} <= {300, 600, 1200}
    assert_every_recipe_accepts_its_arguments(config, rows, "lens_finding", tmp_path)


def test_label_count_rows_aggregate_report_and_check_targets_apart_from_fractions():
    rows = [
        {**_row("vit", 1.0, 0, auc_macro=0.70, auc_lens=0.70), "label_count": 300},
        {**_row("vit", 1.0, 1, auc_macro=0.72, auc_lens=0.72), "label_count": 300},
        {**_row("vit", 1.0, 0, auc_macro=0.90, auc_lens=0.90), "label_count": 1200},
        {**_row("dino_finetune", 1.0, 0, auc_macro=0.80, auc_lens=0.80), "label_count": 300},
        {**_row("radial_profile", 1.0, 0, auc_macro=0.60, auc_lens=0.60), "label_count": 300},
        _row("vit", 1.0, 0, auc_macro=0.95, auc_lens=0.95),
    ]
    table = aggregate_rows(rows)
    vit = {group.get("label_count"): group for group in table if group["method"] == "vit"}
    assert set(vit) == {300, 1200, None} and vit[300]["n"] == 2
    assert vit[300]["metrics"]["auc_macro"]["mean"] == pytest.approx(0.71)
    target = {"name": "dino", "preset": "model_ii", "method": "dino_finetune", "label_count": 300}
    target |= {"metric": "auc_macro", "op": ">=", "reference_method": "vit"}
    met, missed, unknown = check_targets(
        table, [target, {**target, "reference_label_count": 1200}, {**target, "label_count": 600}]
    )
    assert met["status"] == "met" and met["reference"] == pytest.approx(0.71)
    assert missed["status"] == "missed" and missed["reference"] == pytest.approx(0.90)
    assert unknown["status"] == "not run"
    assert "at 300 labels" in format_target_lines([met])[0]
    markdown = results_markdown(rows, table, class_names=["non_lens", "lens"])
    assert "| model_ii | dino_finetune | 300 | 1 | 0.800 | 0.600 | +0.200 |" in markdown
    assert "| model_ii | vit | 100% | 1 |" in markdown and "AUC lens" in markdown


@pytest.mark.slow  # 24 tiny training runs and 3 pre-trainings on 2 shared cores
def test_lens_finding_study_smoke_runs_its_plan_end_to_end(tmp_path):
    """`--smoke`: the lens-finding study's plan (3-band images, label counts 6, 12, 18 in place of 300, 600,
    1,200) runs every row; each fine-tuning trains on exactly its count; binary AUCs, tables and plot."""
    benchmark = load_recipe("benchmark")
    out = tmp_path / "lens"
    config = CONFIGS / "study_lens_finding_cpu.yaml"
    summary = benchmark.main(["--config", str(config), "--smoke", "--output_dir", str(out)])
    study = json.loads((out / "study.json").read_text())
    assert study["failed"] == []
    assert len(study["rows"]) == len(plan_rows(load_study_config(config))) == 36
    tasks = sorted(command.split()[0] for command in summary["launched"])
    assert tasks == ["finetune"] * 24 + ["pretrain_mae", "pretrain_simclr", "pretrain_ssl"]
    assert {row["label_count"] for row in study["rows"]} == {6, 12, 18}
    unlabelled = study["datasets"]["lens_finding_unlabelled"]["command"]
    assert "'lens_fraction': 0.06" in unlabelled and "seed=1" in unlabelled
    for row in study["rows"]:
        assert 0.0 <= row["metrics"]["auc_macro"] <= 1.0 and "auc_lens" in row["metrics"]
        if METHODS[row["method"]].recipe == "finetune":
            assert yaml.safe_load(Path(row["config_file"]).read_text())["label_count"] == row["label_count"]
            card = (Path(row["dir"]) / "README.md").read_text()
            assert f"with {row['label_count']} labelled images" in card
    assert (out / "auc_vs_label_fraction.png").is_file()
    markdown = (out / "RESULTS_section.md").read_text()
    assert "| lens_finding | dino_finetune | 18 | 1 |" in markdown and "AUC lens" in markdown
    assert {target["status"] for target in study["targets"]} <= {"met", "missed"}
