"""bench/bench_simulator.py --smoke: runs tiny on the CPU and reports every class against lenstronomy."""

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_simulator.py"


def test_bench_simulator_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_simulator", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--smoke", "--devices", "cpu", "--json", str(tmp_path / "out.json")])
    assert json.loads((tmp_path / "out.json").read_text()) == report
    names = [row["name"] for row in report["rows"]]
    assert names == [f"cpu/{c}/batch8" for c in ("no_sub", "cdm", "axion", "lens_finding")]
    assert all(row["images_per_second"] > 0 for row in report["rows"])
    assert all(row["ratio"] > 0 for row in report["rows"][:3])  # lenstronomy timed in the same run
    assert "| cpu/cdm/batch8 |" in capsys.readouterr().out
