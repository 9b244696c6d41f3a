#!/usr/bin/env python
"""Turn bench JSON files into the BENCHMARKS.md tables and check them against the speed targets.

Reads any mix of `bench_models.py`, `bench_recipe.py` and `bench_simulator.py` JSON files (each bench's
`--json`; `run_all.py` writes them to `--out-dir`) and prints, in markdown:

1. one table per bench kind, a row per measured row with the device, date and exact command from the JSON;
2. the speed targets, each `MET`, `MISSED` or `NOT MEASURED`, with the rows it was computed from.

Targets (the GPU ones count only for rows measured on a CUDA device):

- MAE pre-training step >= 1.5x transformers `ViTMAEForPreTraining` with sdpa + `torch.compile`, same config and
  batch, at 64 px / batch 2048 and 150 px / batch 256: our best row (eager or compiled) over `hf-sdpa-compile`;
- supervised ViT >= 1.3x timm `vit_small` (each shape) and hybrid >= 1.3x the timm ViT with as many tokens: our
  best row over timm's best row (eager or compiled), so compiling only one side cannot decide it;
- the end-to-end recipe run >= 0.9 of its bare train step (steady-state ratio when measured, else the overall);
- simulator >= 150k images/s on the GPU at 64 px with 25 subhalos (`cdm`, best batch size), and >= 1.5k
  images/s per CPU core (`cdm`, a run with one torch thread).

Usage:
    python bench/report.py outputs/bench/*.json
    python bench/report.py $OUT/bench_models_eager.json $OUT/bench_recipe.json --markdown bench_report.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAE_RATIO, VIT_RATIO, RECIPE_RATIO = 1.5, 1.3, 0.9
SIMULATOR_GPU_RATE, SIMULATOR_CPU_CORE_RATE = 150_000.0, 1_500.0
MAE_SHAPES = ("64px-p8-b2048", "150px-p10-b256")
VIT_SHAPES = ("64px-p8-b512", "150px-p10-b256")
HYBRID_SHAPES = ("64px-p8-b512",)


@dataclass
class Target:
    name: str
    status: str  # MET, MISSED or NOT MEASURED
    value: str
    basis: str


def load_reports(paths: Iterable[Path]) -> dict[str, list[dict[str, Any]]]:
    """`{"models": [...], "recipe": [...], "simulator": [...]}` of the JSON files, by their contents."""
    reports: dict[str, list[dict[str, Any]]] = {"models": [], "recipe": [], "simulator": []}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a readable JSON file ({error})") from error
        data["_path"] = str(path)
        rows = data.get("rows") if isinstance(data, dict) else None
        if data.get("bench") == "simulator":
            reports["simulator"].append(data)
        elif rows and "recipe_samples_per_second" in rows[0]:
            reports["recipe"].append(data)
        elif rows and "group" in rows[0]:
            reports["models"].append(data)
        else:
            raise ValueError(
                f"{path}: not a bench_models, bench_recipe or bench_simulator JSON (no recognisable rows)"
            )
    return reports


def _on_cuda(environment: dict[str, Any]) -> bool:
    if "device_type" in environment:
        return environment["device_type"] == "cuda"
    return not str(environment.get("device", "CPU")).startswith("CPU")


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _memory(row: dict[str, Any]) -> str:
    value = row.get("peak_memory_bytes")
    return "—" if value is None else f"{value / 2**30:.2f} GiB"


def _table(header: Sequence[str], numeric_from: int, rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table; columns from `numeric_from` on are right-aligned."""
    align = ["---"] * numeric_from + ["---:"] * (len(header) - numeric_from)
    lines = [f"| {' | '.join(header)} |", f"|{'|'.join(align)}|"]
    lines += [f"| {' | '.join(str(cell) for cell in row)} |" for row in rows]
    return "\n".join(lines)


def models_table(reports: Sequence[dict[str, Any]]) -> str:
    header = (
        "device",
        "date",
        "command",
        "row",
        "img/s",
        "baseline",
        "baseline img/s",
        "ratio",
        "peak memory",
        "MFU",
    )
    rows = []
    for report in reports:
        environment = report["environment"]
        where = (environment["device"], environment["date"], f"`{environment['command']}`")
        by_name = {row["name"]: row for row in report["rows"]}
        for row in report["rows"]:
            if "error" in row:
                rows.append((*where, row["name"], f"error: {row['error'][:80]}", "", "", "", "", ""))
                continue
            baseline = by_name.get(row.get("baseline") or "", {})
            mfu = row.get("mfu")
            rows.append(
                (
                    *where,
                    row["name"],
                    _rate(row["images_per_second"]),
                    row.get("baseline", "—"),
                    _rate(baseline.get("images_per_second")),
                    _ratio(row.get("ratio")),
                    _memory(row),
                    "—" if mfu is None else f"{mfu:.1%}",
                )
            )
    return _table(header, 4, rows)


def recipe_table(reports: Sequence[dict[str, Any]]) -> str:
    header = ("device", "date", "command", "case", "recipe img/s (steady)", "bare img/s", "ratio (steady)")
    rows = []
    for report in reports:
        environment = report["environment"]
        for row in report["rows"]:
            if "error" in row:
                rows.append((environment["device"], environment["date"], "", row["name"], "error", "", ""))
                continue
            rows.append(
                (
                    environment["device"],
                    environment["date"],
                    f"`{row['command']}`",
                    row["name"],
                    f"{_rate(row['recipe_samples_per_second'])} ({_rate(row.get('steady_samples_per_second'))})",
                    _rate(row["bare_samples_per_second"]),
                    f"{_ratio(row['ratio'])} ({_ratio(row.get('steady_ratio'))})",
                )
            )
    return _table(header, 4, rows)


def simulator_table(reports: Sequence[dict[str, Any]]) -> str:
    header = ("device", "date", "command", "row", "torch threads", "ours img/s", "lenstronomy img/s", "ratio")
    rows = [
        (
            report.get("cpu", "CPU") if row["device"] == "cpu" else report.get("gpu") or row["device"],
            report["date"],
            f"`{report['command']}`",
            row["name"],
            report.get("torch_threads", "—"),
            _rate(row["images_per_second"]),
            _rate(row.get("lenstronomy_images_per_second")),
            _ratio(row.get("ratio")),
        )
        for report in reports
        for row in report["rows"]
    ]
    return _table(header, 4, rows)


def _best(rows: dict[str, dict[str, Any]], names: Sequence[str]) -> dict[str, Any] | None:
    measured = [rows[name] for name in names if name in rows and "error" not in rows[name]]
    return max(measured, key=lambda row: row["images_per_second"], default=None)


def _model_rows(reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows measured on CUDA, by name (a later file's row replaces an earlier one of the same name)."""
    rows = {}
    for report in reports:
        if _on_cuda(report["environment"]):
            rows.update({row["name"]: row for row in report["rows"]})
    return rows


def _comparison(name: str, ours: dict | None, stock: dict | None, needed: float) -> Target:
    if ours is None or stock is None:
        return Target(name, "NOT MEASURED", "—", "needs both rows from a CUDA run")
    ratio = ours["images_per_second"] / stock["images_per_second"]
    return Target(
        name,
        "MET" if ratio >= needed else "MISSED",
        f"x{ratio:.2f} ({ours['images_per_second']:,.0f} vs {stock['images_per_second']:,.0f} img/s)",
        f"{ours['name']} vs {stock['name']}",
    )


# (title, group, our variants, stock variants, ratio needed, shapes): our best row against the stock model's best
MODEL_TARGETS = (
    (
        "MAE step >= {}x ViTMAE sdpa + compile",
        "mae",
        ("ours", "ours-compile"),
        ("hf-sdpa-compile",),
        MAE_RATIO,
        MAE_SHAPES,
    ),
    (
        "ViT step >= {}x timm vit_small",
        "vit",
        ("ours", "ours-compile"),
        ("timm", "timm-compile"),
        VIT_RATIO,
        VIT_SHAPES,
    ),
    (
        "hybrid step >= {}x timm vit_small (same tokens)",
        "hybrid",
        ("ours", "ours-compile"),
        ("timm-vit", "timm-vit-compile"),
        VIT_RATIO,
        HYBRID_SHAPES,
    ),
)


def _simulator_target(
    name: str, rows: Sequence[dict[str, Any]], needed: float, missing: str, unit: str
) -> Target:
    best = max(rows, key=lambda row: row["images_per_second"], default=None)
    if best is None:
        return Target(name, "NOT MEASURED", "—", missing)
    status = "MET" if best["images_per_second"] >= needed else "MISSED"
    return Target(name, status, f"{best['images_per_second']:,.0f} img/s{unit}", best["name"])


def check_targets(reports: dict[str, list[dict[str, Any]]]) -> list[Target]:
    rows = _model_rows(reports["models"])
    targets = [
        _comparison(
            f"{title.format(needed)}, {shape}",
            _best(rows, [f"{group}/{shape}/{variant}" for variant in ours]),
            _best(rows, [f"{group}/{shape}/{variant}" for variant in stock]),
            needed,
        )
        for title, group, ours, stock, needed, shapes in MODEL_TARGETS
        for shape in shapes
    ]
    recipe_rows = [
        row
        for report in reports["recipe"]
        if _on_cuda(report["environment"])
        for row in report["rows"]
        if "error" not in row
    ]
    if not recipe_rows:
        targets.append(
            Target(
                f"recipe >= {RECIPE_RATIO} of the bare step", "NOT MEASURED", "—", "no CUDA bench_recipe run"
            )
        )
    for row in recipe_rows:
        ratio = row.get("steady_ratio") or row["ratio"]
        targets.append(
            Target(
                f"recipe >= {RECIPE_RATIO} of the bare step, {row['name']}",
                "MET" if ratio >= RECIPE_RATIO else "MISSED",
                f"{ratio:.2f}",
                "steady ratio" if row.get("steady_ratio") else "overall ratio",
            )
        )
    cdm = [
        (report, row) for report in reports["simulator"] for row in report["rows"] if row["class"] == "cdm"
    ]
    targets.append(
        _simulator_target(
            f"simulator >= {SIMULATOR_GPU_RATE:,.0f} img/s on the GPU, 64 px, 25 subhalos",
            [row for _, row in cdm if row["device"].startswith("cuda")],
            SIMULATOR_GPU_RATE,
            "no CUDA simulator row",
            "",
        )
    )
    targets.append(
        _simulator_target(
            f"simulator >= {SIMULATOR_CPU_CORE_RATE:,.0f} img/s per CPU core, 64 px, 25 subhalos",
            [row for report, row in cdm if row["device"] == "cpu" and report.get("torch_threads") == 1],
            SIMULATOR_CPU_CORE_RATE,
            "no one-thread CPU simulator row",
            " (1 thread)",
        )
    )
    return targets


def targets_table(targets: Sequence[Target]) -> str:
    return _table(
        ("target", "status", "measured", "from"), 4, ((t.name, t.status, t.value, t.basis) for t in targets)
    )


def render(reports: dict[str, list[dict[str, Any]]]) -> str:
    sections = []
    if reports["models"]:
        sections.append("### Models: train step\n\n" + models_table(reports["models"]))
    if reports["recipe"]:
        sections.append("### Recipe end-to-end\n\n" + recipe_table(reports["recipe"]))
    if reports["simulator"]:
        sections.append("### Simulator\n\n" + simulator_table(reports["simulator"]))
    sections.append("### Speed targets\n\n" + targets_table(check_targets(reports)))
    return "\n\n".join(sections) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", type=Path, help="bench JSON files")
    parser.add_argument("--markdown", type=Path, help="also write the markdown to this file")
    args = parser.parse_args(argv)
    try:
        text = render(load_reports(args.json))
    except ValueError as error:
        parser.error(str(error))
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
