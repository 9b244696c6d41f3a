#!/usr/bin/env python
"""Every GPU row of the benchmarks in one device command, in speed-target order, within a time budget.

Runs bench_simulator.py (CUDA rows), bench_models.py (every row, compiled ones included) and bench_recipe.py
(both cases) as a list of small steps, each its own process writing `OUT_DIR/bench_<step>.json` and
`OUT_DIR/<step>.log`; then bench/report.py's tables and speed-target checks (`OUT_DIR/report.md`, printed last)
and `OUT_DIR/gpu_quick.json` (each step's status, estimate, wall time, command). bench_data.py (CPU read paths)
and bench_app.py (the demo app's latency) have no GPU rows or targets and are not run.

Steps run in the order of `STEPS`: first what decides a speed target cheaply, then the compiled rows (a
`torch.compile` of a ViT-S-sized model, forward + backward, is most of a compiled step's time), then the rows
without a target. A step starts only if its estimate fits in what is left of `--budget-s`, and is stopped when
the budget runs out (a stopped bench writes no JSON: steps are kept small so that little is lost); skipped and
stopped steps are listed, so a later call with `--steps` runs the rest.

SIZING (ESTIMATES for one H200 from FLOP counts and expected rates, not measurements: nothing of this project has
run on an H200 yet; `gpu_quick.json` records the real wall times, which should replace these):
- process start (torch, transformers, timm import; CUDA context): ~15 s a step;
- eager bench_models row: model build + FLOP count ~1 s, 5 + 20 steps of <= 7.3 TFLOP (ViT-S 150 px, batch
  256: 256 x 28.5 GFLOP) at ~150 TFLOP/s = ~1.2 s; ~3 s a row with its share of the start;
- compiled row: ~45 s (dynamo + inductor + Triton for forward and backward of a 12-layer ViT-S, 16 CPU cores);
- bench_recipe case: 2 `accelerate launch` runs (300 and 100 steps) at ~25 s start each + 400 steps of 20-40 ms
  + the bare step: pretrain_mae ~65 s, finetune ~70 s (the first also writes the 16,384-image random dataset);
- simulator: 4 classes x (1 + 5) batches of 256 and 4,096 (98k images) at an assumed >= 20k img/s, plus start:
  ~30 s.
Total ~15 minutes (`STEPS`, or `--list`): more than the 9-minute default budget. A 9-minute call runs the steps
of every target (30 + 60 + 65 + 70 + 65 + 115 + 115 = 520 s; the ViT target then on eager rows only), and
skips, naming them, the ViT and the MAE 64 px / batch 512 compiled rows and the eager rows without a target.

Usage:
    python3 bench/gpu_quick.py --out-dir $OUT/bench                 # on the GPU, 9 minutes at most
    python3 bench/gpu_quick.py --out-dir $OUT/bench --budget-s 240  # what is left of a session
    python3 bench/gpu_quick.py --steps vit_64px_compiled,vit_150px_compiled --out-dir $OUT/bench
    python bench/gpu_quick.py --smoke --out-dir /tmp/gpu_quick      # every step tiny on the CPU (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:  # `python bench/gpu_quick.py`: report.py and bench_models.py are siblings
    sys.path.insert(0, str(BENCH_DIR))
import bench_models  # noqa: E402
import report  # noqa: E402

DEFAULT_BUDGET_S = 540.0  # 9 minutes: under the device tool's 10-minute command limit


@dataclass(frozen=True)
class Step:
    """One bench process: `bench/<script>` with `args`; `rows` (bench_models) are `(group, shape index in the
    preset, variant glob)` triples, resolved to row names of the preset run; `estimate_s` is the sizing above."""

    name: str
    script: str
    estimate_s: float
    decides: str  # the speed target it measures, or what it adds
    args: tuple[str, ...] = ()
    rows: tuple[tuple[str, int, str], ...] = ()
    compiled: bool = False


def _mae(index: int, variants: str = "*") -> tuple[tuple[str, int, str], ...]:
    return tuple(("mae", index, variant) for variant in variants.split(","))


# Estimates (s): 30 + 60 + 65 + 70 + 65 + 4 x 115 + 50 + 115 = 915 s (~15 min); target-deciding steps first.
STEPS: tuple[Step, ...] = (
    Step("simulator", "bench_simulator.py", 30, "simulator >= 150k img/s on the GPU", ("--devices", "cuda")),
    Step(
        "models_eager_targets",
        "bench_models.py",
        60,  # 14 eager rows x ~3 s + start
        "ViT and hybrid targets (eager), our MAE eager rows",
        ("--no-compile",),
        rows=(*_mae(1), *_mae(2), ("vit", 0, "*"), ("vit", 1, "*"), ("hybrid", 0, "*")),
    ),
    Step(
        "recipe_pretrain_mae",
        "bench_recipe.py",
        65,
        "recipe >= 0.9 of the bare step (MAE)",
        ("--cases", "pretrain_mae"),
    ),
    Step(
        "recipe_finetune",
        "bench_recipe.py",
        70,
        "recipe >= 0.9 of the bare step (finetune)",
        ("--cases", "finetune"),
    ),
    Step(
        "recipe_pretrain_mae_on_device",
        "bench_recipe.py",
        65,
        "recipe >= 0.9 of the bare step (MAE) with data_on_device, the quick study's input path",
        ("--cases", "pretrain_mae", "--data-on-device"),
    ),
    Step(
        "mae_64px_b2048_compiled",
        "bench_models.py",
        115,  # 2 compiled rows x 45 s + 1 eager baseline + start
        "MAE >= 1.5x ViTMAE sdpa + compile, 64 px / batch 2048",
        rows=_mae(1, "hf-sdpa-compile,ours-compile"),
        compiled=True,
    ),
    Step(
        "mae_150px_compiled",
        "bench_models.py",
        115,
        "MAE >= 1.5x ViTMAE sdpa + compile, 150 px / batch 256",
        rows=_mae(2, "hf-sdpa-compile,ours-compile"),
        compiled=True,
    ),
    Step(
        "vit_64px_compiled",
        "bench_models.py",
        115,
        "ViT target, compiled side, 64 px",
        rows=(("vit", 0, "*compile"),),
        compiled=True,
    ),
    Step(
        "vit_150px_compiled",
        "bench_models.py",
        115,
        "ViT target, compiled side, 150 px",
        rows=(("vit", 1, "*compile"),),
        compiled=True,
    ),
    Step(
        "models_eager_other",
        "bench_models.py",
        50,  # 11 eager rows x ~3 s + start, no target
        "GPU figures without a target: MAE 64 px / batch 512, ResNet-18",
        ("--no-compile",),
        rows=(*_mae(0), ("cnn", 0, "*"), ("cnn", 1, "*")),
    ),
    Step(
        "mae_64px_b512_compiled",
        "bench_models.py",
        115,
        "compiled MAE, 64 px / batch 512 (no target)",
        rows=_mae(0, "hf-sdpa-compile,ours-compile"),
        compiled=True,
    ),
)


def step_command(step: Step, json_path: Path, smoke: bool) -> list[str]:
    """The step's command line. With `smoke`: the bench's `--smoke` on the CPU, its rows resolved in the smoke
    preset, compiled rows replaced by their uncompiled variants (a CPU compile would take minutes)."""
    args = list(step.args)
    if smoke and step.script == "bench_simulator.py":
        args = ["--devices", "cpu"]
    if step.script == "bench_recipe.py":  # one random dataset for both cases
        args += ["--work-dir", str(json_path.parent / "recipe_work")]
    if step.rows:
        preset = bench_models.PRESETS["smoke" if smoke else "full"]
        shapes = {
            "mae": preset.mae_shapes,
            "vit": preset.vit_shapes,
            "hybrid": preset.hybrid_shapes,
            "cnn": preset.cnn_shapes,
        }
        patterns = []
        for group, index, variant in step.rows:
            shape = shapes[group][min(index, len(shapes[group]) - 1)]
            if smoke and step.compiled:
                variant = variant.removesuffix("compile").removesuffix("-") or "*"
            patterns.append(f"{group}/{shape.label}/{variant}")
        args += ["--rows", ",".join(dict.fromkeys(patterns))]
        if step.compiled and not smoke:
            args.append("--compile")
        if smoke and step.compiled:
            args.append("--no-compile")
    return [
        sys.executable,
        str(BENCH_DIR / step.script),
        *(["--smoke"] if smoke else []),
        *args,
        "--json",
        str(json_path),
    ]


def run_command(command: Sequence[str], log_path: Path, timeout_s: float) -> tuple[str, float]:
    """Run `command` in its own process group, output to `log_path`; stop the group at `timeout_s`.
    Returns the status (`ok`, `failed (exit N)`, `stopped at the budget`) and the wall seconds."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=max(1.0, timeout_s))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "stopped at the budget", time.perf_counter() - start
    return ("ok" if returncode == 0 else f"failed (exit {returncode})"), time.perf_counter() - start


def run_steps(
    steps: Sequence[Step],
    out_dir: Path,
    budget_s: float,
    smoke: bool = False,
    runner: Callable[[Sequence[str], Path, float], tuple[str, float]] = run_command,
    clock: Callable[[], float] = time.perf_counter,
) -> list[dict[str, Any]]:
    """Run the steps in order within `budget_s` seconds; a step whose estimate exceeds what is left is skipped
    (later, cheaper steps may still run). Returns one record per step. `smoke` ignores the budget's estimates
    (CPU sizes) but not the budget."""
    start = clock()
    records = []
    for step in steps:
        left = budget_s - (clock() - start)
        json_path, log_path = out_dir / f"bench_{step.name}.json", out_dir / f"{step.name}.log"
        command = step_command(step, json_path, smoke)
        record = {
            "step": step.name,
            "decides": step.decides,
            "estimate_s": step.estimate_s,
            "command": command,
        }
        if left <= 0 or (not smoke and step.estimate_s > left):
            records.append(
                {
                    **record,
                    "status": f"skipped (estimate {step.estimate_s:.0f} s > {max(left, 0):.0f} s left)",
                    "wall_s": 0.0,
                }
            )
            print(f"--- {step.name}: {records[-1]['status']}", flush=True)
            continue
        json_path.unlink(missing_ok=True)
        print(
            f"--- {step.name} ({step.decides}; estimate {step.estimate_s:.0f} s, {left:.0f} s left)",
            flush=True,
        )
        status, wall = runner(command, log_path, left)
        if status != "ok" and log_path.is_file():  # the end of the failing bench's output
            print(log_path.read_text()[-2000:], flush=True)
        print(f"    {status} in {wall:.0f} s", flush=True)
        records.append(
            {
                **record,
                "status": status,
                "wall_s": wall,
                "json": str(json_path) if json_path.is_file() else None,
            }
        )
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out-dir", type=Path, default=REPO_ROOT / "outputs" / "bench_gpu", help="JSON, logs, report"
    )
    parser.add_argument(
        "--budget-s", type=float, default=DEFAULT_BUDGET_S, help="stop starting and running steps after this"
    )
    parser.add_argument(
        "--steps",
        help=f"comma-separated subset of the steps, in their order ({', '.join(s.name for s in STEPS)})",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="every step tiny on the CPU (compiled rows uncompiled)"
    )
    parser.add_argument("--list", action="store_true", help="print the steps and their commands, run nothing")
    args = parser.parse_args(argv)
    steps = list(STEPS)
    if args.steps:
        names = [name.strip() for name in args.steps.split(",") if name.strip()]
        if unknown := sorted(set(names) - {step.name for step in STEPS}):
            parser.error(f"unknown step(s) {unknown}; choose from {[step.name for step in STEPS]}")
        steps = [step for step in STEPS if step.name in names]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.list:
        for step in steps:
            command = step_command(step, args.out_dir / f"bench_{step.name}.json", args.smoke)
            print(f"{step.name:<26} ~{step.estimate_s:>4.0f} s  {step.decides}\n    {' '.join(command[1:])}")
        print(f"total estimate: {sum(step.estimate_s for step in steps):.0f} s")
        return 0
    records = run_steps(steps, args.out_dir, args.budget_s, smoke=args.smoke)
    jsons = [Path(record["json"]) for record in records if record.get("json")]
    text = report.render(report.load_reports(jsons)) if jsons else "no bench wrote its JSON\n"
    (args.out_dir / "report.md").write_text(text)
    (args.out_dir / "gpu_quick.json").write_text(
        json.dumps({"budget_s": args.budget_s, "smoke": args.smoke, "steps": records}, indent=2)
    )
    lines = ["", "=== steps", f"{'step':<26} {'status':<44} {'wall':>6} {'est.':>6}"]
    lines += [
        f"{r['step']:<26} {r['status']:<44} {r['wall_s']:>5.0f}s {r['estimate_s']:>5.0f}s" for r in records
    ]
    print("\n".join(lines) + "\n\n" + text, flush=True)
    return 0 if all(r["status"] == "ok" or r["status"].startswith("skipped") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
