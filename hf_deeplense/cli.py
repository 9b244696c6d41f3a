"""The `hf-deeplense` command line.

```
hf-deeplense predict --model DIR_OR_REPO FILES_OR_DIRS... [--output preds.csv] [--batch-size 32] [--device cpu]
```

A new subcommand is one more `subparsers.add_parser(...)` in `build_parser`, with `set_defaults(run=...)`
naming a function `run(args) -> int` that returns the exit code.

`predict` reads `.npy`, `.npz` (every array in the archive is an item, or only `--npz-key KEY`) and FITS files
(`.fits`, `.fit`, `.fts`, optionally `.gz`: the primary HDU, or the first image extension when the primary is
empty); directories are searched recursively for those suffixes. A file holding a 4-D array is a batch: one item
per row. Pickled (object) arrays are never loaded. Files that cannot be used (corrupt, wrong shape, NaN/inf, object
arrays, unsupported suffix) are skipped and listed with the reason at the end; the exit code is 1 only when nothing
could be predicted.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

from hf_deeplense import AutoModelForLensRegression  # importing hf_deeplense registers the Auto classes

__all__ = ["build_parser", "main"]


# -- predict: reading files -------------------------------------------------------------------------------

NUMPY_SUFFIXES = (".npy", ".npz")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in NUMPY_SUFFIXES + FITS_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def find_input_files(paths: Sequence[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and directories (recursively, sorted) into readable files; return (files, skipped)."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _suffix(p) is not None)
            if not found:
                supported = ", ".join(NUMPY_SUFFIXES + FITS_SUFFIXES)
                skipped.append((name, f"directory holds no readable files ({supported})"))
            files += found
        elif not path.exists():
            skipped.append((name, "no such file or directory"))
        elif _suffix(path) is None:
            skipped.append(
                (name, f"unsupported file type (expected {', '.join(NUMPY_SUFFIXES + FITS_SUFFIXES)})")
            )
        else:
            files.append(path)
    return files, skipped


def _read_fits(path: Path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdus:
        for hdu in hdus:
            if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
                return np.asarray(hdu.data, dtype=np.float32)  # native byte order (FITS is big-endian)
    raise ValueError("no image HDU with at least 2 dimensions")


def read_items(path: Path, npz_key: str | None = None) -> Iterator[tuple[str, np.ndarray | Exception]]:
    """Yield `(item name, array)` for each image in a file, or `(name, error)` for what cannot be read.

    Never unpickles: `.npy`/`.npz` are read with `allow_pickle=False`, so object arrays raise instead.
    """
    suffix = _suffix(path)
    try:
        if suffix == ".npy":
            arrays = [(str(path), np.load(path, allow_pickle=False))]
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                keys = archive.files if npz_key is None else [npz_key]
                if npz_key is not None and npz_key not in archive.files:
                    raise ValueError(f"no array named {npz_key!r} (arrays: {', '.join(archive.files)})")
                arrays = []
                for key in keys:
                    try:
                        arrays.append((f"{path}:{key}", archive[key]))
                    except Exception as error:  # an object array inside the archive
                        arrays.append((f"{path}:{key}", error))
        else:
            arrays = [(str(path), _read_fits(path))]
    except Exception as error:
        yield str(path), error
        return
    for name, array in arrays:
        if isinstance(array, np.ndarray) and array.ndim == 4:
            for row in range(array.shape[0]):
                yield f"{name}[{row}]", array[row]
        else:
            yield name, array


def _reason(error: Exception) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "allow_pickle" in message or "Object arrays" in message:
        return "object (pickled) array: hf-deeplense never unpickles files; save plain numeric arrays instead"
    return message


# -- predict: model ----------------------------------------------------------------------------------------


def load_model_and_processor(model_name: str, device: str, trust_remote_code: bool = False):
    """Load a DeepLense classifier or regression model and its image processor through the Auto classes."""
    config = AutoConfig.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    architectures = config.architectures or []
    if any(name.endswith("ForRegression") for name in architectures):
        auto_class, task = AutoModelForLensRegression, "regression"
    elif any(name.endswith("ForImageClassification") for name in architectures):
        auto_class, task = AutoModelForImageClassification, "classification"
    else:
        raise ValueError(
            f"{model_name} holds {architectures or 'no architecture'}: predict needs a classifier or a regression model"
        )
    model = auto_class.from_pretrained(model_name, trust_remote_code=trust_remote_code).to(device).eval()
    processor = AutoImageProcessor.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    return model, processor, task


def _output_columns(model, task: str) -> list[str]:
    if task == "classification":
        return [f"prob_{model.config.id2label[index]}" for index in range(model.config.num_labels)]
    names = getattr(model.config, "target_names", None)
    num_targets = getattr(model.config, "num_targets", 1)
    return (
        list(names)
        if names
        else (["prediction"] if num_targets == 1 else [f"target_{i}" for i in range(num_targets)])
    )


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
    files, skipped = find_input_files(args.inputs)
    columns = _output_columns(model, task)
    rows: list[tuple[str, list[float]]] = []
    pending: list[tuple[str, torch.Tensor]] = []

    def flush() -> None:
        if not pending:
            return
        pixel_values = torch.stack([pixels for _, pixels in pending]).to(device)  # (B, C, size, size)
        with torch.no_grad():
            logits = model(pixel_values=pixel_values).logits.float()
        values = logits.softmax(-1) if task == "classification" else logits
        rows.extend((name, row.tolist()) for (name, _), row in zip(pending, values.cpu()))
        pending.clear()

    progress = tqdm(files, desc="predict", unit="file", disable=len(files) < 20 or None)
    for path in progress:
        for name, array in read_items(path, args.npz_key):
            if isinstance(array, Exception):
                skipped.append((name, _reason(array)))
                continue
            try:
                pixels = processor(array, return_tensors="pt", input_data_format=args.input_data_format)[
                    "pixel_values"
                ][0]
            except ValueError as error:
                skipped.append((name, _reason(error)))
                continue
            pending.append((name, pixels))
            if len(pending) >= args.batch_size:
                flush()
    flush()

    _print_table(rows, columns, task, model)
    if args.output:
        _write_csv(args.output, rows, columns, task, model)
        print(f"wrote {len(rows)} prediction(s) to {args.output}")
    if skipped:
        print(f"\nskipped {len(skipped)} item(s):", file=sys.stderr)
        for name, reason in skipped:
            print(f"  {name}: {reason}", file=sys.stderr)
    if not rows:
        print("error: nothing could be predicted", file=sys.stderr)
        return 1
    return 0


def _predicted_label(values: list[float], model) -> str:
    return model.config.id2label[int(np.argmax(values))]


def _print_table(rows, columns, task, model) -> None:
    header = ["file", *(["predicted"] if task == "classification" else []), *columns]
    lines = []
    for name, values in rows:
        label = [_predicted_label(values, model)] if task == "classification" else []
        lines.append([name, *label, *(f"{value:.4f}" for value in values)])
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    for line in [header, *lines]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())


def _write_csv(output: str, rows, columns, task, model) -> None:
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", *(["predicted"] if task == "classification" else []), *columns])
        for name, values in rows:
            label = [_predicted_label(values, model)] if task == "classification" else []
            writer.writerow([name, *label, *(repr(float(value)) for value in values)])


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
