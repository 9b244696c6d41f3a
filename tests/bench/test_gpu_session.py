"""bench/gpu_session.sh --smoke: the device session's script on the CPU: study, then benches, packed under OUT in
at most 8 files (the device tool's limit), no weights; a study stopped at its cap still reports its tables."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from hf_deeplense.study import load_study_config, plan_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
QUICK_STUDY = REPO_ROOT / "recipes" / "configs" / "study_gpu_quick.yaml"


def _session(tmp_path, *args, **env):
    environment = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "WORK": str(tmp_path / "work"),
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
        **env,
    }
    return subprocess.run(
        ["bash", str(REPO_ROOT / "bench" / "gpu_session.sh"), *args, "--smoke"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow  # the quick study's 10 tiny runs and one bench step on the CPU, ~1 min
def test_smoke_session_runs_the_study_then_the_benches_and_packs_the_results(tmp_path):
    completed = _session(tmp_path, GPU_QUICK_STEPS="simulator")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    out = tmp_path / "out"
    files = sorted(path.name for path in out.iterdir())
    assert files == [
        "RESULTS_section.md",
        "bench_gpu.tar.gz",
        "bench_report.md",
        "environment.txt",
        "session.log",
        "study_quick.tar.gz",
    ]
    assert all(path.stat().st_size < 16 * 2**20 for path in out.iterdir())
    with tarfile.open(out / "study_quick.tar.gz") as archive:
        names = archive.getnames()
        study = json.load(archive.extractfile("study_quick/study.json"))
    # the quick GPU study's whole plan at tiny sizes: every row finished, data kept on the (CPU) training device,
    # fp32; the config's own sizes are not used
    assert (
        study["failed"] == [] and len(study["rows"]) == len(plan_rows(load_study_config(QUICK_STUDY))) == 12
    )
    built = study["datasets"]["deeplense_model_ii"]["command"]
    assert "n_per_class=24" in built and "image_size=16" in built and "device='cpu'" in built
    assert (
        sorted(row["command"].split()[0] for row in study["rows"] if row["method"] != "radial_profile")
        == ["finetune"] * 9
    )
    assert study["pretraining"][0]["command"].startswith("pretrain_mae ")
    for row in study["rows"]:
        assert 0.0 <= row["metrics"]["auc_macro"] <= 1.0
        if row["method"] != "radial_profile":
            args = yaml.safe_load(Path(row["config_file"]).read_text())
            assert args["data_on_device"] and not args["bf16"] and args["max_steps"] == 2
            assert (args.get("model_config") or {}).get("hidden_size", 32) == 32
    assert study["targets"] and all(target["status"] in ("met", "missed") for target in study["targets"])
    assert not any(name.endswith((".safetensors", ".parquet")) or "checkpoint-" in name for name in names)
    with tarfile.open(out / "bench_gpu.tar.gz") as archive:
        steps = json.load(archive.extractfile("bench_gpu/gpu_quick.json"))["steps"]
    assert [(step["step"], step["status"]) for step in steps] == [("simulator", "ok")]
    log = (out / "session.log").read_text()
    assert log.index("=== study") < log.index("=== benches") < log.index("=== done")
    assert "### Speed targets" in (out / "bench_report.md").read_text()


@pytest.mark.slow  # a study stopped after 10 s, then its tables
def test_a_study_stopped_at_its_cap_still_writes_its_tables(tmp_path):
    completed = _session(tmp_path, "study", STUDY_CAP_S="10")
    assert completed.returncode == 124  # timeout's exit status, passed on
    log = (tmp_path / "out" / "session.log").read_text()
    assert "capped at 10s" in log and "tables of its finished rows" in log and "=== benches" not in log
    assert (tmp_path / "out" / "RESULTS_section.md").is_file()
    assert (tmp_path / "out" / "study_quick.tar.gz").is_file()
