"""bench/report.py: markdown tables from bench JSON files and the speed-target checks."""

import json
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def report(load_bench):
    return load_bench("report")


def _environment(device_type: str) -> dict:
    device = "NVIDIA H100 80GB HBM3" if device_type == "cuda" else "CPU AMD EPYC"
    return {
        "device": device,
        "device_type": device_type,
        "date": "2026-11-23 14:00 UTC",
        "command": "python x",
    }


def _model_row(name: str, rate: float, baseline: str | None = None) -> dict:
    group = name.split("/")[0]
    return {"name": name, "group": group, "baseline": baseline, "images_per_second": rate, "ratio": None}


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def _models_json(tmp_path: Path, device_type: str, name: str = "models.json") -> Path:
    rows = [
        # 64 px / 2048: ours-compile is the best of ours, 1.6x the compiled stock model -> MET
        _model_row("mae/64px-p8-b2048/hf-sdpa-compile", 40_000.0),
        _model_row("mae/64px-p8-b2048/ours", 50_000.0, "mae/64px-p8-b2048/hf-sdpa"),
        _model_row("mae/64px-p8-b2048/ours-compile", 64_000.0, "mae/64px-p8-b2048/hf-sdpa-compile"),
        # 150 px: 1.4x -> MISSED
        _model_row("mae/150px-p10-b256/hf-sdpa-compile", 8_000.0),
        _model_row("mae/150px-p10-b256/ours-compile", 11_200.0, "mae/150px-p10-b256/hf-sdpa-compile"),
        # ViT 64 px: ours eager 1.3x timm eager but only 1.0x compiled timm: best vs best -> MISSED
        _model_row("vit/64px-p8-b512/timm", 15_000.0),
        _model_row("vit/64px-p8-b512/timm-compile", 19_500.0),
        _model_row("vit/64px-p8-b512/ours", 19_500.0, "vit/64px-p8-b512/timm"),
        # hybrid: 1.35x -> MET; ViT 150 px: not in this file -> NOT MEASURED
        _model_row("hybrid/64px-p8-b512/timm-vit", 10_000.0),
        _model_row("hybrid/64px-p8-b512/ours", 13_500.0, "hybrid/64px-p8-b512/timm-vit"),
    ]
    return _write(tmp_path / name, {"environment": _environment(device_type), "rows": rows})


def _recipe_json(tmp_path: Path) -> Path:
    row = {
        "name": "pretrain_mae/64px-p8-b512",
        "command": "accelerate launch recipes/pretrain_mae.py ...",
        "recipe_samples_per_second": 30_000.0,
        "bare_samples_per_second": 35_000.0,
        "ratio": 30_000 / 35_000,
        "steady_samples_per_second": 33_000.0,
        "steady_ratio": 33_000 / 35_000,
    }
    return _write(tmp_path / "recipe.json", {"environment": _environment("cuda"), "rows": [row]})


def _simulator_json(tmp_path: Path, threads: int) -> Path:
    rows = [
        {"name": "cpu/cdm/batch256", "device": "cpu", "class": "cdm", "images_per_second": 3_000.0},
        {"name": "cuda/cdm/batch4096", "device": "cuda", "class": "cdm", "images_per_second": 120_000.0},
        {
            "name": "cuda/no_sub/batch4096",
            "device": "cuda",
            "class": "no_sub",
            "images_per_second": 900_000.0,
        },
    ]
    data = {"bench": "simulator", "date": "2026-11-23T14:00:00+00:00", "command": "bench_simulator.py"}
    return _write(tmp_path / "sim.json", {**data, "cpu": "AMD EPYC", "torch_threads": threads, "rows": rows})


def _statuses(targets) -> dict[str, str]:
    return {target.name: target.status for target in targets}


def test_targets_from_gpu_runs(report, tmp_path):
    paths = [_models_json(tmp_path, "cuda"), _recipe_json(tmp_path), _simulator_json(tmp_path, threads=1)]
    reports = report.load_reports(paths)
    statuses = _statuses(report.check_targets(reports))
    assert statuses == {
        "MAE step >= 1.5x ViTMAE sdpa + compile, 64px-p8-b2048": "MET",
        "MAE step >= 1.5x ViTMAE sdpa + compile, 150px-p10-b256": "MISSED",
        "ViT step >= 1.3x timm vit_small, 64px-p8-b512": "MISSED",
        "ViT step >= 1.3x timm vit_small, 150px-p10-b256": "NOT MEASURED",
        "hybrid step >= 1.3x timm vit_small (same tokens), 64px-p8-b512": "MET",
        "recipe >= 0.9 of the bare step, pretrain_mae/64px-p8-b512": "MET",  # steady 0.94; overall 0.86
        "simulator >= 150,000 img/s on the GPU, 64 px, 25 subhalos": "MISSED",  # no_sub rows do not count
        "simulator >= 1,500 img/s per CPU core, 64 px, 25 subhalos": "MET",
    }
    mae = next(t for t in report.check_targets(reports) if t.name.endswith("64px-p8-b2048"))
    assert mae.basis == "mae/64px-p8-b2048/ours-compile vs mae/64px-p8-b2048/hf-sdpa-compile"
    assert mae.value.startswith("x1.60")
    text = report.render(reports)
    assert (
        "| NVIDIA H100 80GB HBM3 | 2026-11-23 14:00 UTC | `python x` | mae/64px-p8-b2048/ours-compile |"
        in text
    )
    assert "| MISSED |" in text and "### Recipe end-to-end" in text and "### Simulator" in text


def test_cpu_runs_do_not_count_for_gpu_targets(report, tmp_path):
    reports = report.load_reports([_models_json(tmp_path, "cpu"), _simulator_json(tmp_path, threads=2)])
    statuses = _statuses(report.check_targets(reports))
    assert set(statuses.values()) == {"NOT MEASURED", "MISSED"}
    assert (
        statuses["simulator >= 1,500 img/s per CPU core, 64 px, 25 subhalos"] == "NOT MEASURED"
    )  # 2 threads
    assert statuses["recipe >= 0.9 of the bare step"] == "NOT MEASURED"
    assert all(
        status == "NOT MEASURED" for name, status in statuses.items() if name.startswith(("MAE", "ViT"))
    )


def test_real_smoke_json_and_cli(report, load_bench, tmp_path, capsys):
    models_json = tmp_path / "bench_models.json"
    assert load_bench("bench_models").main(["--smoke", "--rows", "mae/*", "--json", str(models_json)]) == 0
    bad = _write(tmp_path / "bad.json", {"rows": [{"x": 1}]})
    with pytest.raises(SystemExit):
        report.main([str(models_json), str(bad)])
    assert "bad.json: not a bench_models" in capsys.readouterr().err
    out = tmp_path / "report.md"
    assert report.main([str(models_json), "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "mae/16px-p4-b4/ours | " in text and "NOT MEASURED" in text
    assert text in capsys.readouterr().out
