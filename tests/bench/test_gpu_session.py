"""bench/gpu_session.sh --smoke: the device session's script on the CPU: study, then benches, packed under OUT in
at most 8 files (the device tool's limit), no weights; a study stopped at its cap still reports its tables."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow  # the quick study's 10 tiny runs and one bench step on the CPU, ~1.5 min
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
    assert study["failed"] == [] and len(study["rows"]) == 12
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
