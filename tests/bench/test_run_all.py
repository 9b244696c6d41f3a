"""bench/run_all.py: every bench in its own process, --smoke passed through, one summary table."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

FAKE_BENCH = """
import json, sys
args = sys.argv[1:]
path = args[args.index("--json") + 1]
rows = [{"name": "mae/x/ours", "group": "mae", "baseline": "mae/x/hf-sdpa", "images_per_second": 50.0, "ratio": 1.25},
        {"name": "mae/x/hf-eager", "group": "mae", "baseline": "mae/x/hf-sdpa", "error": "OutOfMemoryError()"}]
environment = {"device": "CPU fake", "device_type": "cpu", "date": "today", "command": "fake"}
json.dump({"argv": args, "environment": environment, "rows": rows, "summary": [{"name": "extra", "value": 3, "unit": "s"}]}, open(path, "w"))
sys.exit(0 if "--smoke" in args else 2)
"""


@pytest.fixture
def run_all(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("run_all", REPO_ROOT / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    (bench_dir / "bench_models.py").write_text(FAKE_BENCH)
    monkeypatch.setattr(module, "BENCH_DIR", bench_dir)
    return module


def test_smoke_passes_through_and_summarises(run_all, tmp_path, capsys):
    exit_code = run_all.main(["--smoke", "--benches", "models,data", "--out-dir", str(tmp_path / "out")])
    assert exit_code == 0
    written = json.loads((tmp_path / "out" / "bench_models.json").read_text())
    assert written["argv"][0] == "--smoke"
    summary = capsys.readouterr().out.split("=== summary")[1]
    assert "models" in summary and "ok" in summary
    assert "data" in summary and "skipped (not present)" in summary
    assert "mae/x/ours" in summary and "50.0 img/s" in summary and "x1.25 vs hf-sdpa" in summary
    assert "ERROR" in summary and "OutOfMemoryError" in summary
    assert "extra" in summary and "3 s" in summary
    statuses = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [status["bench"] for status in statuses] == ["models", "data"]
    report = (tmp_path / "out" / "report.md").read_text()  # bench/report.py's tables and target checks
    assert "| CPU fake | today | `fake` | mae/x/ours | 50 |" in report and "### Speed targets" in report


def test_failing_bench_fails_the_run(run_all, tmp_path, capsys):
    assert run_all.main(["--benches", "models", "--out-dir", str(tmp_path / "out")]) == 1
    assert "failed (exit 2)" in capsys.readouterr().out


def test_unknown_bench_is_an_error(run_all, tmp_path):
    with pytest.raises(SystemExit):
        run_all.main(["--benches", "nope", "--out-dir", str(tmp_path)])
