"""The `hf-deeplense` command line.

```
hf-deeplense predict --model DIR_OR_REPO FILES_OR_DIRS... [--output preds.csv] [--batch-size 32] [--device cpu]
                     [--allow-pickle]
```

A new subcommand is one more `subparsers.add_parser(...)` in `build_parser`, with `set_defaults(run=...)`
naming a function `run(args) -> int` that returns the exit code.

`predict` reads `.npy`, `.npz` (every array in the archive is an item, or only `--npz-key KEY`) and FITS files
(`.fits`, `.fit`, `.fts`, optionally `.gz`: the primary HDU, or the first image extension when the primary is
empty); directories are searched recursively for those suffixes. A file holding a 4-D array is a batch: one item
per row. Pickled (object) arrays are loaded only with `--allow-pickle` (the converter's opt-in: unpickling runs code
from the file). Files that cannot be used (corrupt, wrong shape, NaN/inf, object arrays without the flag, unsupported
suffix) are skipped and listed with the reason at the end; the exit code is 1 only when nothing could be predicted.
Items that are predicted but should not be trusted (constant images, inputs much smaller than the model's size,
values far outside the training range) are flagged on stderr as they come, in the summary and in the CSV's
`warnings` column. The work is done by `hf_deeplense.predict.predict_files` (the same in Python).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

import hf_deeplense  # noqa: F401  (importing hf_deeplense registers the Auto classes)
from hf_deeplense.predict import (
    ALLOW_PICKLE_WARNING,
    PredictedItem,
    Predictions,
    load_model_and_processor,
    predict_files,
)

__all__ = ["build_parser", "main"]


# -- predict ------------------------------------------------------------------------------------------------


def _predict(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model, processor, task = load_model_and_processor(args.model, device, args.trust_remote_code)
    except Exception as error:
        print(f"error: could not load model and image processor from {args.model}: {error}", file=sys.stderr)
        return 1
    if args.allow_pickle:
        print(f"warning: {ALLOW_PICKLE_WARNING}", file=sys.stderr)
    result = predict_files(
        model,
        args.inputs,
        processor=processor,
        task=task,
        allow_pickle=args.allow_pickle,
        npz_key=args.npz_key,
        batch_size=args.batch_size,
        device=device,
        input_data_format=args.input_data_format,
        on_warning=lambda name, message: print(f"warning: {name}: {message}", file=sys.stderr),
        progress=True,
    )
    _print_table(result)
    if args.output:
        _write_csv(args.output, result)
        print(f"wrote {len(result.rows)} prediction(s) to {args.output}")
    if result.warned:
        print(
            f"\n{len(result.warned)} of {len(result.rows)} prediction(s) carry warnings (predicted, "
            "but not to be trusted):",
            file=sys.stderr,
        )
        for row in result.warned:
            print(f"  {row.name}: {'; '.join(row.warnings)}", file=sys.stderr)
    if result.skipped:
        print(f"\nskipped {len(result.skipped)} item(s):", file=sys.stderr)
        for name, reason in result.skipped:
            print(f"  {name}: {reason}", file=sys.stderr)
    if not result.rows:
        print("error: nothing could be predicted", file=sys.stderr)
        return 1
    return 0


def _header(result: Predictions) -> list[str]:
    return ["file", *(["predicted"] if result.task == "classification" else []), *result.columns, "warnings"]


def _cells(row: PredictedItem, result: Predictions, format_value) -> list[str]:
    label = [row.label] if result.task == "classification" else []
    return [row.name, *label, *(format_value(value) for value in row.values), "; ".join(row.warnings)]


def _print_table(result: Predictions) -> None:
    header = _header(result)
    lines = [_cells(row, result, lambda value: f"{value:.4f}") for row in result.rows]
    if not any(row.warnings for row in result.rows):  # no empty warnings column on screen
        header, lines = header[:-1], [line[:-1] for line in lines]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    for line in [header, *lines]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())


def _write_csv(output: str, result: Predictions) -> None:
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_header(result))
        for row in result.rows:
            writer.writerow(_cells(row, result, lambda value: repr(float(value))))


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="FILE_OR_DIR", help=".npy, .npz, .fits files or directories"
    )
    parser.add_argument("--model", required=True, help="saved model directory or Hub repo id")
    parser.add_argument("--output", help="CSV file to write the predictions to")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--npz-key", help="read only this array from each .npz (default: every array is an image)"
    )
    parser.add_argument(
        "--input-data-format",
        choices=["channels_first", "channels_last"],
        help="channel axis of the arrays (default: inferred, see LensImageProcessor)",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="unpickle object arrays (the DeepLense axion files [image, m_a]); unpickling runs code from the "
        "file: only for files you trust (default: object arrays are skipped)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="load the modelling code saved with the model (not needed with hf_deeplense)",
    )


# -- entry point -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-deeplense", description="DeepLense on the Hugging Face stack.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict_help = "classify lensing images (or predict a regression target) with a saved model"
    predict = subparsers.add_parser("predict", help=predict_help, description=predict_help)
    _predict_arguments(predict)
    predict.set_defaults(run=_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hf-deeplense` with `argv` (default: `sys.argv[1:]`); returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
