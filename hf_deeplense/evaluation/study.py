"""Summaries of a benchmark study (`hf_deeplense.study`): aggregation over seeds, target checks, the
RESULTS.md markdown section and the AUC-against-label-fraction plot.

A *row* is one finished run, a dict with at least ``preset``, ``method``, ``fraction``, ``seed`` and
``metrics``: the run's test metrics without the ``test_`` prefix (``auc_macro``, ``auc_<class>``,
``mean_absolute_error``: the regression's, dex for ``log10_m_a``; ``anomaly_auc``). A row that trained on a number
of labelled images rather than a fraction also has ``label_count``. The runner adds ``command``, ``device``,
``started_at`` and ``wall_s``.
"""

from __future__ import annotations

import math
import operator
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "HEADLINE_METRICS",
    "PUBLISHED",
    "SIMULATION_CAVEAT",
    "aggregate_rows",
    "check_targets",
    "format_target_lines",
    "label_amount",
    "plot_auc_vs_fraction",
    "results_markdown",
]

# The metric each kind of method is judged by (lower is better only for `mean_absolute_error`, a regression's).
HEADLINE_METRICS = ("auc_macro", "mean_absolute_error", "anomaly_auc")

# Figures the DeepLense project (ML4SCI) reports on its public sets, keyed by the replica preset of each set and
# quoted for context in the results table: they are not ours and were not reproduced here.
PUBLISHED: dict[str, list[tuple[str, str]]] = {
    "deeplense_model_i": [
        ("CvT, AUC axion / cdm / no_sub", "0.971 / 0.966 / 0.999"),
        ("ResNet50, AUC axion / cdm / no_sub", "0.97 / 0.96 / 1.0"),
        ("XResNet18 hybrid, axion-mass regression mean absolute error (dex)", "0.274"),
    ],
    "deeplense_model_ii": [
        ("CvT, AUC axion / cdm / no_sub", "0.999 / 0.999 / 1.0"),
        ("SimSiam ResNet50, AUC axion / cdm / no_sub", "0.993 / 0.997 / 0.995"),
        ("XResNet18 hybrid, axion-mass regression mean absolute error (dex)", "0.221"),
        ("Anomaly detection on no_sub, AUC AE / VAE / AAE", "0.961 / 0.999 / 0.995"),
    ],
    "deeplense_model_iii": [
        ("CvT, AUC axion / cdm / no_sub", "0.999 / 0.999 / 1.0"),
        ("XResNet18 hybrid, axion-mass regression mean absolute error (dex)", "0.126"),
    ],
}

SIMULATION_CAVEAT = (
    "Caveat: published figures are listed beside the DeepLense-compatible replica presets only (`deeplense_*`: "
    "what DeepLenseSim's code made for the public files). They were measured on the full public sets (~30k "
    "images per class) with large GPU budgets; ours on smaller replica sets and budgets: compare orders of "
    "magnitude and rankings, not the third decimal, and always beside the radial-profile baseline on the same "
    "split (on the replicas ring size alone separates the classes well)."
)

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def label_amount(entry: dict[str, Any]) -> str:
    """The labels a row, group or target trained with: its ``label_count`` (``"300"``) or fraction (``"10%"``)."""
    count = entry.get("label_count")
    return str(count) if count else f"{float(entry.get('fraction', 1.0)):.0%}"


def _group_key(row: dict[str, Any]) -> tuple[str, str, float, int]:
    return row["preset"], row["method"], float(row["fraction"]), int(row.get("label_count") or 0)


def aggregate_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds of every metric, per (preset, method, label fraction or label count).

    Args:
        rows: finished runs (see the module docstring); rows without ``metrics`` are skipped.

    Returns:
        One dict per group, sorted by preset, method, fraction, count: ``preset``, ``method``, ``fraction``,
        ``label_count`` (groups of rows that have one),
        ``seeds`` (sorted list), ``n``, and ``metrics: {name: {"mean", "std", "n"}}`` where ``std`` is
        the sample standard deviation over seeds (0 with one seed) and NaN values are left out.
    """
    groups: dict[tuple[str, str, float, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("metrics"):
            groups[_group_key(row)].append(row)
    table = []
    for (preset, method, fraction, label_count), members in sorted(groups.items()):
        values: dict[str, list[float]] = defaultdict(list)
        for row in members:
            for name, value in row["metrics"].items():
                if isinstance(value, int | float) and not math.isnan(value):
                    values[name].append(float(value))
        metrics = {
            name: {
                "mean": float(np.mean(found)),
                "std": float(np.std(found, ddof=1)) if len(found) > 1 else 0.0,
                "n": len(found),
            }
            for name, found in sorted(values.items())
        }
        table.append(
            {
                "preset": preset,
                "method": method,
                "fraction": fraction,
                **({"label_count": label_count} if label_count else {}),
                "seeds": sorted(row["seed"] for row in members),
                "n": len(members),
                "metrics": metrics,
            }
        )
    return table


def _lookup(
    table: list[dict[str, Any]],
    preset: str,
    method: str,
    fraction: float,
    metric: str,
    label_count: int | None = None,
):
    for group in table:
        if (group["preset"], group["method"], group["fraction"], group.get("label_count")) == (
            preset,
            method,
            float(fraction),
            label_count,
        ):
            return group["metrics"].get(metric)
    return None


def check_targets(table: list[dict[str, Any]], targets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check each target against the aggregated table (means over seeds).

    A target is ``{name, preset, method, metric, op, fraction=1.0}`` plus either ``value`` (a number) or
    ``reference_method`` (compared with that method's mean at the same metric, at ``reference_preset`` and
    ``reference_fraction`` (default: the target's own preset and fraction); ``margin`` is added to the reference).
    ``label_count`` / ``reference_label_count`` (default: the target's own) name rows of a label count instead.
    ``op`` is one of ``>``, ``>=``, ``<``, ``<=``.

    Returns:
        One dict per target: the target's fields plus ``status`` (``met``, ``missed`` or ``not run``),
        ``value`` (measured mean, or None) and ``reference`` (the threshold, or None).
    """
    results = []
    for target in targets:
        missing = {"name", "preset", "method", "metric", "op"} - set(target)
        if missing or ("value" in target) == ("reference_method" in target):
            raise ValueError(
                f"target {target!r}: needs name, preset, method, metric, op and exactly one of value / "
                "reference_method"
            )
        if target["op"] not in _OPS:
            raise ValueError(
                f"target {target['name']!r}: op must be one of {sorted(_OPS)}, got {target['op']!r}"
            )
        fraction = float(target.get("fraction", 1.0))
        label_count = target.get("label_count")
        measured = _lookup(table, target["preset"], target["method"], fraction, target["metric"], label_count)
        if "value" in target:
            reference = float(target["value"])
        else:
            reference_fraction = float(target.get("reference_fraction", fraction))
            found = _lookup(
                table,
                target.get("reference_preset", target["preset"]),
                target["reference_method"],
                reference_fraction,
                target["metric"],
                target.get("reference_label_count", label_count),
            )
            reference = None if found is None else found["mean"] + float(target.get("margin", 0.0))
        result = {**target, "fraction": fraction, "value": None, "reference": reference}
        if measured is None or reference is None:
            result["status"] = "not run"
        else:
            result["value"] = measured["mean"]
            result["status"] = "met" if _OPS[target["op"]](measured["mean"], reference) else "missed"
        results.append(result)
    return results


def format_target_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per checked target: ``MET     name: 0.9512 >= 0.9000 (preset, method, fraction)``."""
    lines = []
    for result in results:
        where = f"{result['preset']}, {result['method']}, {result['metric']} at {label_amount(result)} labels"
        against = (
            (f"{result['reference_preset']} " if result.get("reference_preset") else "")
            + f"{result['reference_method']}"
            + (f" + {result['margin']:g}" if result.get("margin") else "")
            if "reference_method" in result
            else "target"
        )
        if result["status"] == "not run":
            numbers = "no result"
        else:
            numbers = f"{result['value']:.4f} {result['op']} {result['reference']:.4f} ({against})"
        lines.append(f"{result['status'].upper():<8} {result['name']}: {numbers} [{where}]")
    return lines


def _cell(entry: dict[str, float] | None) -> str:
    if entry is None:
        return "—"
    if entry["n"] > 1:
        return f"{entry['mean']:.3f} ± {entry['std']:.3f}"
    return f"{entry['mean']:.3f}"


def results_markdown(
    rows: Sequence[dict[str, Any]],
    table: Sequence[dict[str, Any]],
    *,
    class_names: Sequence[str] = ("no_sub", "cdm", "axion"),
    target_results: Sequence[dict[str, Any]] = (),
    plot_path: str | None = None,
    setup_runs: Sequence[dict[str, Any]] = (),
    heading: str = "## Benchmark study",
    preamble: str = "",
) -> str:
    """The RESULTS.md section: aggregated tables, published figures with the caveat, targets, and every
    run with its exact command, device, date and wall time.

    Args:
        rows: the finished runs.
        table: :func:`aggregate_rows` of ``rows``.
        class_names: the per-class AUC columns.
        target_results: :func:`check_targets` output (a list of met / missed lines).
        plot_path: the AUC-against-label-fraction figure, linked as written.
        setup_runs: dataset builds and SSL pre-trainings (``preset``, ``step``, ``seed``, ``command``,
            ``device``, ``started_at``, ``wall_s``), listed before the rows.
        heading: the section's heading line.
        preamble: text under the heading (device, date, the command of the whole study).
    """
    lines = [heading, ""]
    if preamble:
        lines += [preamble, ""]
    classification = [g for g in table if "auc_macro" in g["metrics"]]
    if classification:
        lines += [
            "Classification on the test split (mean ± sample std over seeds; model selection on validation):",
            "",
            "| preset | method | labels | seeds | macro AUC | radial baseline | margin | "
            + " | ".join(f"AUC {c}" for c in class_names)
            + " |",
            "|---|---|---|---|---|---|---|" + "---|" * len(class_names),
        ]
        for group in classification:
            per_class = " | ".join(_cell(group["metrics"].get(f"auc_{c}")) for c in class_names)
            baseline = _lookup(
                table,
                group["preset"],
                "radial_profile",
                group["fraction"],
                "auc_macro",
                group.get("label_count"),
            )
            margin = "—"
            if baseline is not None and group["method"] != "radial_profile":
                margin = f"{group['metrics']['auc_macro']['mean'] - baseline['mean']:+.3f}"
            lines.append(
                f"| {group['preset']} | {group['method']} | {label_amount(group)} | {group['n']} | "
                f"{_cell(group['metrics']['auc_macro'])} | {_cell(baseline)} | {margin} | {per_class} |"
            )
        lines.append("")
    others = [g for g in table if "auc_macro" not in g["metrics"]]
    if others:
        lines += [
            "Regression and anomaly detection (test split):",
            "",
            "| preset | method | seeds | axion-mass mean absolute error (dex of log10 m_a) | anomaly AUC (no_sub vs rest) |",
            "|---|---|---|---|---|",
        ]
        for group in others:
            lines.append(
                f"| {group['preset']} | {group['method']} | {group['n']} | {_cell(group['metrics'].get('mean_absolute_error'))} | "
                f"{_cell(group['metrics'].get('anomaly_auc'))} |"
            )
        lines.append("")
    if plot_path:
        lines += [f"![macro AUC against label fraction]({plot_path})", ""]
    presets = sorted({g["preset"] for g in table})
    published = [(preset, name, value) for preset in presets for name, value in PUBLISHED.get(preset, [])]
    if published:
        lines += [
            "Published DeepLense figures (their simulations):",
            "",
            "| preset | model, metric | published |",
        ]
        lines.append("|---|---|---|")
        lines += [f"| {preset} | {name} | {value} |" for preset, name, value in published]
        lines += ["", SIMULATION_CAVEAT, ""]
    if target_results:
        lines += ["Targets:", "", "```", *format_target_lines(target_results), "```", ""]
    lines += ["Runs (each row's exact command; `run_config.yaml` in its folder holds every argument):", ""]
    lines += [
        "| preset | method | labels | seed | device | started | wall (s) | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in setup_runs:
        lines.append(
            f"| {run['preset']} | {run['step']} | — | {'—' if run.get('seed') is None else run['seed']} | {run.get('device', '?')} | "
            f"{run.get('started_at', '?')} | {run.get('wall_s', float('nan')):.0f} | `{run.get('command', '')}` |"
        )
    for row in sorted(rows, key=lambda r: (*_group_key(r), r["seed"])):
        lines.append(
            f"| {row['preset']} | {row['method']} | {label_amount(row)} | {row['seed']} | "
            f"{row.get('device', '?')} | {row.get('started_at', '?')} | {row.get('wall_s', float('nan')):.0f} | "
            f"`{row.get('command', '')}` |"
        )
    lines.append("")
    return "\n".join(lines)


def plot_auc_vs_fraction(table: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path | None:
    """Macro AUC (mean ± std over seeds) against label fraction, or against the number of labelled images in a
    preset whose rows have a ``label_count``, one line per method, one panel per preset, three panels a row.
    A preset whose methods each have one label amount (an ablation at 100 %) gets no panel: its table rows say
    it. Returns the PNG path, or None when no classification result has two or more fractions (counts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    series: dict[str, dict[str, list[tuple[float, float, float]]]] = defaultdict(lambda: defaultdict(list))
    for group in table:
        entry = group["metrics"].get("auc_macro")
        if entry is not None:
            amount = group.get("label_count") or group["fraction"]
            series[group["preset"]][group["method"]].append((amount, entry["mean"], entry["std"]))
    series = {
        preset: {method: sorted(points) for method, points in methods.items()}
        for preset, methods in series.items()
        if any(len(points) > 1 for points in methods.values())
    }
    if not series:
        return None
    columns = min(3, len(series))
    rows = -(-len(series) // columns)
    # a 2-inch column on the right holds one legend for every panel (the panels' own would hide their curves)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns + 2, 4 * rows), squeeze=False)
    for axis in axes.flat[len(series) :]:
        axis.set_visible(False)
    counted = {group["preset"] for group in table if group.get("label_count")}
    colours = plt.get_cmap("tab20").colors  # one colour a method: the default cycle repeats after 10
    every_method = sorted({method for methods in series.values() for method in methods})
    # a method's colour is the same in every panel
    colour = {method: colours[index % len(colours)] for index, method in enumerate(every_method)}
    style = {  # dashed: the shortcut every network must beat
        method: {
            "marker": "o",
            "color": colour[method],
            "linestyle": "--" if method == "radial_profile" else "-",
        }
        for method in every_method
    }
    for axis, (preset, methods) in zip(axes.flat, sorted(series.items())):
        for method, points in sorted(methods.items()):
            fractions, means, stds = (np.array(column) for column in zip(*points))
            axis.errorbar(fractions, means, yerr=stds, capsize=3, label=method, **style[method])
        axis.set_xscale("log")
        axis.set_xlabel("labelled training images" if preset in counted else "label fraction")
        if preset in counted:  # the counts themselves as ticks (300, 600, 1200), not powers of ten
            counts = sorted({point[0] for points in methods.values() for point in points})
            axis.set_xticks(counts, labels=[f"{count:g}" for count in counts])
            axis.set_xticks([], minor=True)
        axis.set_ylabel("test macro AUC")
        axis.set_title(preset)
        axis.grid(alpha=0.3)
    figure.tight_layout(rect=(0, 0, 1 - 2 / figure.get_figwidth(), 1))
    handles = [Line2D([], [], label=method, **style[method]) for method in every_method]
    figure.legend(handles=handles, loc="center right", fontsize=8, title="method")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
