#!/usr/bin/env python
"""Run every benchmark in sequence (what `make bench` runs) and print one summary table.

Each bench is its own process (`python bench/<name>.py [--smoke] --json OUT_DIR/<name>.json`), so one bench's
memory, threads and compile caches do not leak into the next. A bench script that is not there yet is listed
as skipped. The summary shows each bench's status and wall time, then the rows of its JSON: `bench_models`
and `bench_recipe` rows by name, a top-level `"images_per_second": {name: value}` mapping (bench_data), and
any bench's optional top-level `"summary"` list of `{"name", "value", "unit"}` (see BENCHMARKS.md); last, the
markdown tables and the speed-target checks of `bench/report.py` (also written to OUT_DIR/report.md).

Usage:
    python bench/run_all.py                   # full sizes on a GPU (CPU sizes on a CPU)
    python bench/run_all.py --smoke           # tiny sizes, CPU: a check that every bench runs
    python bench/run_all.py --benches models,recipe --out-dir outputs/bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # `python bench/run_all.py`: report.py is a sibling
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BENCHES = ("models", "recipe", "simulator", "data")  # bench/bench_<name>.py, in run order
REPORTED = ("models", "recipe", "simulator")  # benches whose JSON bench/report.py reads


def run_bench(name: str, smoke: bool, out_dir: Path, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run `bench/bench_<name>.py`; returns its status, wall time, JSON path and the JSON (if written)."""
    script = BENCH_DIR / f"bench_{name}.py"
    if not script.is_file():
        return {"bench": name, "status": "skipped (not present)", "seconds": 0.0, "data": None}
    json_path = out_dir / f"bench_{name}.json"
    json_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(script),
        *(["--smoke"] if smoke else []),
        "--json",
        str(json_path),
        *extra_args,
    ]
    print(f"\n=== {' '.join(command)}", flush=True)
    start = time.perf_counter()
    returncode = subprocess.run(command, cwd=REPO_ROOT).returncode
    seconds = time.perf_counter() - start
    data = json.loads(json_path.read_text()) if json_path.is_file() else None
    status = "ok" if returncode == 0 else f"failed (exit {returncode})"
    return {"bench": name, "status": status, "seconds": seconds, "json": str(json_path), "data": data}


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(row, value, note) lines of one bench's JSON for the summary table."""
    data = result.get("data")
    if not data:
        return []
    lines = []
    if result["bench"] == "models":
        for row in data.get("rows", []):
            if "error" in row:
                lines.append((row["name"], "ERROR", row["error"][:60]))
                continue
            ratio = f"x{row['ratio']:.2f} vs {row['baseline'].rsplit('/', 1)[-1]}" if row.get("ratio") else ""
            lines.append((row["name"], f"{row['images_per_second']:.1f} img/s", ratio))
    elif result["bench"] == "recipe":
        for row in data.get("rows", []):
            if "error" in row:
                lines.append((row["name"], "ERROR", row["error"][:60]))
                continue
            lines.append(
                (
                    row["name"],
                    f"{row['recipe_samples_per_second']:.1f} img/s",
                    f"x{row['ratio']:.2f} of bare step",
                )
            )
    else:
        rates = data.get("images_per_second")
        if isinstance(rates, dict):  # bench_data: {"access pattern": images/s}
            lines.extend((name, f"{value:,.0f} img/s", "") for name, value in rates.items())
    for item in data.get("summary", []):
        lines.append((str(item.get("name")), f"{item.get('value')} {item.get('unit', '')}".strip(), ""))
    return lines


def format_summary(results: Sequence[dict[str, Any]]) -> str:
    lines = ["", "=== summary", f"{'bench':<10} {'status':<24} {'wall':>8}"]
    for result in results:
        lines.append(f"{result['bench']:<10} {result['status']:<24} {result['seconds']:>7.0f}s")
        for row, value, note in summary_rows(result):
            lines.append(f"    {row:<40} {value:>16}  {note}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="pass --smoke to every bench (tiny sizes, CPU)")
    parser.add_argument("--benches", default=",".join(BENCHES), help=f"comma-separated subset of {BENCHES}")
    parser.add_argument(
        "--out-dir", type=Path, default=REPO_ROOT / "outputs" / "bench", help="JSON results here"
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.benches.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown bench(es) {unknown}; choose from {BENCHES}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results = [run_bench(name, args.smoke, args.out_dir) for name in names]
    print(format_summary(results), flush=True)
    reported = [Path(r["json"]) for r in results if r["bench"] in REPORTED and r.get("data")]
    if reported:  # the BENCHMARKS.md tables and the speed-target checks (bench/report.py)
        try:
            text = report.render(report.load_reports(reported))
        except (ValueError, KeyError) as error:  # a bench wrote a JSON the report cannot read: say so, go on
            text = f"report.py could not read the bench JSON: {error!r}"
        (args.out_dir / "report.md").write_text(text)
        print("\n" + text, flush=True)
    (args.out_dir / "summary.json").write_text(
        json.dumps([{key: value for key, value in r.items() if key != "data"} for r in results], indent=2)
    )
    return 0 if all(result["status"].startswith(("ok", "skipped")) for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
