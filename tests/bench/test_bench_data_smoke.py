import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_data.py"


def test_bench_data_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_data", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--smoke", "--json", str(tmp_path / "out.json")])
    assert json.loads((tmp_path / "out.json").read_text()) == report
    rates = report["images_per_second"]
    assert set(rates) == {
        "slices numpy", "slices torch", "DataLoader rows numpy", "DataLoader rows torch",
        "batched_loader", "random single rows", "random single rows batched", "LensingAugment",
        "recipe pipeline (stock Trainer)", "recipe pipeline (LensingTrainer)",
    }  # fmt: skip
    assert all(value > 0 for value in rates.values())
    assert report["image_shape"] == [1, 16, 16]
    assert "| slices numpy |" in capsys.readouterr().out
