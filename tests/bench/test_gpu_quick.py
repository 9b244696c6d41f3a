"""bench/gpu_quick.py: its steps cover every GPU row of the benches, the budget decides what runs, and --smoke
runs the steps' real commands tiny on the CPU."""

import json
from pathlib import Path

import pytest
from conftest import load_bench_module


@pytest.fixture(scope="module")
def gpu_quick():
    return load_bench_module("gpu_quick")


def _selected(bench_models, command, preset):
    """The rows bench_models.py runs for `command` (as its main() selects them)."""
    compile_rows = "--compile" in command
    rows = bench_models.make_rows(bench_models.PRESETS[preset], compile_rows=compile_rows)
    patterns = command[command.index("--rows") + 1]
    return {row.name for row in bench_models.select_rows(rows, patterns)}


def test_steps_cover_every_gpu_row_of_the_benches(gpu_quick, tmp_path):
    """Every bench_models row of the GPU sizes (compiled ones too), both bench_recipe cases and the simulator's
    CUDA rows; each compiled row in a step that compiles, each eager row in one that does not."""
    bench_models = gpu_quick.bench_models
    covered = set()
    recipe_cases, simulator = [], []
    for step in gpu_quick.STEPS:
        command = gpu_quick.step_command(step, tmp_path / f"bench_{step.name}.json", smoke=False)
        assert command[command.index("--json") + 1] == str(tmp_path / f"bench_{step.name}.json")
        if step.script == "bench_models.py":
            names = _selected(bench_models, command, "full")
            assert ("--compile" in command) == step.compiled and ("--no-compile" in command) != step.compiled
            if not step.compiled:
                assert not any(name.endswith("compile") for name in names)
            covered |= names
        elif step.script == "bench_recipe.py":
            recipe_cases.append(
                command[command.index("--cases") + 1] + " on-device" * ("--data-on-device" in command)
            )
        else:
            simulator.append(command[command.index("--devices") + 1])
    every_row = {row.name for row in bench_models.make_rows(bench_models.PRESETS["full"], compile_rows=True)}
    assert covered == every_row
    assert sorted(recipe_cases) == ["finetune", "pretrain_mae", "pretrain_mae on-device"] and simulator == [
        "cuda"
    ]
    # the target rows come before the rows without a target
    order = [step.name for step in gpu_quick.STEPS]
    assert order.index("mae_150px_compiled") < order.index("models_eager_other")


def test_the_budget_skips_what_does_not_fit_and_runs_cheaper_steps_after(gpu_quick, tmp_path):
    """With a fake runner whose steps take exactly their estimates: 345 s run the simulator, eager target rows
    and the three recipe steps (290 s), skip the 115 s compiled steps, then fit the 50 s eager rows."""
    now = [0.0]
    ran = []

    def runner(command, log_path, timeout_s):
        step = next(s for s in gpu_quick.STEPS if str(tmp_path / f"bench_{s.name}.json") in command)
        assert timeout_s == pytest.approx(345 - now[0])
        now[0] += step.estimate_s
        ran.append(step.name)
        Path(command[command.index("--json") + 1]).write_text("{}")
        return "ok", step.estimate_s

    records = gpu_quick.run_steps(gpu_quick.STEPS, tmp_path, 345, runner=runner, clock=lambda: now[0])
    assert ran == [
        "simulator",
        "models_eager_targets",
        "recipe_pretrain_mae",
        "recipe_finetune",
        "recipe_pretrain_mae_on_device",
        "models_eager_other",
    ]
    statuses = {record["step"]: record["status"] for record in records}
    assert statuses["mae_64px_b2048_compiled"] == "skipped (estimate 115 s > 55 s left)"
    assert statuses["mae_64px_b512_compiled"] == "skipped (estimate 115 s > 5 s left)"
    assert statuses["simulator"] == "ok"
    assert all(record["json"] for record in records if record["status"] == "ok")


def test_a_step_over_the_budget_is_stopped(gpu_quick, tmp_path):
    status, wall = gpu_quick.run_command(
        [gpu_quick.sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "log", timeout_s=1
    )
    assert status == "stopped at the budget" and wall < 20


@pytest.mark.slow  # 4 bench processes (one accelerate launch) on the CPU, ~1 min
def test_smoke_runs_each_kind_of_step_and_reports(gpu_quick, tmp_path, capsys):
    steps = "simulator,models_eager_targets,recipe_pretrain_mae,mae_150px_compiled"
    out = tmp_path / "out"
    assert gpu_quick.main(["--smoke", "--steps", steps, "--out-dir", str(out)]) == 0
    summary = json.loads((out / "gpu_quick.json").read_text())
    assert [record["step"] for record in summary["steps"]] == steps.split(",")
    assert all(record["status"] == "ok" for record in summary["steps"])
    compiled = json.loads((out / "bench_mae_150px_compiled.json").read_text())
    assert {row["name"].rsplit("/", 1)[-1] for row in compiled["rows"]} == {"hf-sdpa", "ours"}  # uncompiled
    assert json.loads((out / "bench_recipe_pretrain_mae.json").read_text())["rows"][0]["ratio"] > 0
    report = (out / "report.md").read_text()
    assert "### Speed targets" in report and "### Simulator" in report and "### Recipe end-to-end" in report
    assert "=== steps" in capsys.readouterr().out
