"""Predict on the files a user holds: `.npy`, `.npz` and FITS images, with a saved DeepLense model.

`predict_files(model, paths)` is the Python API behind `hf-deeplense predict` (see `hf_deeplense.cli`):

```python
from hf_deeplense.predict import predict_files

result = predict_files("outputs/ft", ["Model_II_test/"], allow_pickle=False)
for row in result.rows:
    print(row.name, row.values, row.warnings)
```

Reading: `.npy`, `.npz` (every array in the archive is an item, or only `npz_key`) and FITS files (`.fits`,
`.fit`, `.fts`, optionally `.gz`: the primary HDU, or the first image extension when the primary is empty);
directories are searched recursively. A file holding a 4-D array is a batch: one item per row.

Pickles: by default object arrays are never unpickled (`np.load(allow_pickle=False)`) and are skipped with the
reason. `allow_pickle=True` (`--allow-pickle`) is the converter's opt-in: unpickling runs code from the file, so
only for files you trust; it reads the DeepLense axion files `[image, m_a]` (the image is predicted, the mass
ignored). `ALLOW_PICKLE_WARNING` is printed when it is used.

Trust warnings: an item that can be classified but whose prediction should not be trusted is predicted and
flagged (never dropped): a constant or near-constant image, an image much smaller than the model's input (it is
upsampled), or pixel values far outside the range the model was trained on after normalisation. Each flagged
row carries its warnings (`PredictedItem.warnings`; the CLI prints them and writes a `warnings` CSV column).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoImageProcessor

from .data.convert import ALLOW_PICKLE_WARNING
from .models import TASK_AUTO_CLASSES, task_of

__all__ = [
    "ALLOW_PICKLE_WARNING",
    "FITS_SUFFIXES",
    "NUMPY_SUFFIXES",
    "PredictedItem",
    "Predictions",
    "find_input_files",
    "input_warnings",
    "load_model_and_processor",
    "predict_files",
    "read_items",
]

NUMPY_SUFFIXES = (".npy", ".npz")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
# An image whose pixel spread is below this fraction of its largest magnitude is "near-constant".
NEAR_CONSTANT_SPREAD = 1e-3
# An input whose shorter side is below this fraction of the model's input size is "much smaller".
SMALL_INPUT_FRACTION = 0.5
# After mean/std standardisation, training images sit within a few standard deviations of 0.
MAX_STANDARDISED_MEAN = 5.0
MAX_STANDARDISED_VALUE = 50.0


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
                skipped.append((str(name), f"directory holds no readable files ({supported})"))
            files += found
        elif not path.exists():
            skipped.append((str(name), "no such file or directory"))
        elif _suffix(path) is None:
            skipped.append(
                (str(name), f"unsupported file type (expected {', '.join(NUMPY_SUFFIXES + FITS_SUFFIXES)})")
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


def _image_of_object_array(array: np.ndarray) -> np.ndarray:
    """The image of an unpickled object array: a DeepLense axion file `[image, m_a]` (the mass is dropped)."""
    elements = list(array.reshape(-1)) if array.ndim else [array.item()]
    images = [np.asarray(element) for element in elements if np.ndim(element) >= 2]
    if len(images) != 1:
        raise ValueError(
            f"object array with {len(elements)} element(s), {len(images)} of them images; expected [image, mass]"
        )
    if images[0].dtype == object:
        raise ValueError("nested object array where an image was expected")
    return images[0]


def read_items(
    path: Path, npz_key: str | None = None, allow_pickle: bool = False
) -> Iterator[tuple[str, np.ndarray | Exception]]:
    """Yield `(item name, array)` for each image in a file, or `(name, error)` for what cannot be read.

    Without `allow_pickle`, `.npy`/`.npz` are read with `allow_pickle=False`: object arrays raise instead of
    being unpickled. With it, object arrays are unpickled (this runs code from the file) and their image kept.
    """
    suffix = _suffix(Path(path))
    try:
        if suffix == ".npy":
            arrays = [(str(path), np.load(path, allow_pickle=allow_pickle))]
        elif suffix == ".npz":
            with np.load(path, allow_pickle=allow_pickle) as archive:
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
            arrays = [(str(path), _read_fits(Path(path)))]
    except Exception as error:
        yield str(path), error
        return
    for name, array in arrays:
        if isinstance(array, np.ndarray) and array.dtype == object:
            try:
                array = _image_of_object_array(array)
            except ValueError as error:
                yield name, error
                continue
        if isinstance(array, np.ndarray) and array.ndim == 4:
            for row in range(array.shape[0]):
                yield f"{name}[{row}]", array[row]
        else:
            yield name, array


def _reason(error: Exception) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "allow_pickle" in message or "Object arrays" in message:
        return (
            "object (pickled) array: not unpickled by default (unpickling runs code from the file); "
            "rerun with --allow-pickle (allow_pickle=True) if you trust this file"
        )
    return message


def input_warnings(array: np.ndarray, pixel_values: torch.Tensor, processor: Any) -> list[str]:
    """Reasons not to trust a prediction on `array` (the raw input) that became `pixel_values` `(C, size, size)`.

    - constant or near-constant image: its pixel spread is below `NEAR_CONSTANT_SPREAD` of its largest
      magnitude (min-max normalisation maps a constant image to zeros; the model then sees no lens at all);
    - much smaller than the model's input: the shorter spatial side is below `SMALL_INPUT_FRACTION` of the
      processor's `size` (or `crop_size`), so the image is upsampled several times;
    - far outside the training range after normalisation: with `"mean_std"` normalisation, a pixel mean beyond
      +-`MAX_STANDARDISED_MEAN` or a pixel beyond +-`MAX_STANDARDISED_VALUE` standard deviations (min-max
      normalisation always lands in [0, 1]; with `"none"` the training range is not known).
    """
    warnings = []
    values = np.asarray(array, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    magnitude = max(abs(low), abs(high))
    if high == low:
        warnings.append(f"constant image (every pixel is {low:g}): the prediction carries no information")
    elif high - low <= NEAR_CONSTANT_SPREAD * magnitude:
        warnings.append(
            f"near-constant image (pixels span {low:g}..{high:g}, {100 * (high - low) / magnitude:.2g}% of their "
            "magnitude): the prediction carries little information"
        )
    spatial = _spatial_shape(values.shape, processor)
    model_size = int(
        processor.crop_size or processor.size
        if getattr(processor, "do_center_crop", False)
        else processor.size
    )
    if spatial is not None and min(spatial) < SMALL_INPUT_FRACTION * model_size:
        warnings.append(
            f"input {spatial[0]}x{spatial[1]} is much smaller than the model's {model_size}x{model_size} "
            f"(upsampled {model_size / min(spatial):.1f}x)"
        )
    if getattr(processor, "normalization", None) == "mean_std":
        mean = float(pixel_values.double().mean())
        extreme = float(pixel_values.double().abs().max())
        if abs(mean) > MAX_STANDARDISED_MEAN or extreme > MAX_STANDARDISED_VALUE:
            warnings.append(
                f"far outside the training range after normalisation (mean {mean:.3g}, max |value| {extreme:.3g} "
                "standard deviations; training images sit within a few)"
            )
    return warnings


def _spatial_shape(shape: tuple[int, ...], processor: Any) -> tuple[int, int] | None:
    """(H, W) of an image of `shape` (H, W), (C, H, W) or (H, W, C), as the processor reads it."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 3:
        channels = {1, 3, int(getattr(processor, "num_channels", 1))}
        if shape[-1] in channels and shape[0] not in channels:
            return shape[0], shape[1]
        return shape[1], shape[2]
    return None


def load_model_and_processor(model_name: str, device: str, trust_remote_code: bool = False):
    """Load a DeepLense classifier or regression model and its image processor through the Auto classes."""
    config = AutoConfig.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    task = task_of(config)
    if task not in ("classification", "regression"):
        raise ValueError(
            f"{model_name} holds {config.architectures or 'no architecture'}: predict needs a classifier or a "
            "regression model"
        )
    model = TASK_AUTO_CLASSES[task].from_pretrained(model_name, trust_remote_code=trust_remote_code)
    model = model.to(device).eval()
    processor = AutoImageProcessor.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    return model, processor, task


def output_columns(model, task: str) -> list[str]:
    """Column names of the predicted values: `prob_<class>` per class, or the regression targets."""
    if task == "classification":
        return [f"prob_{model.config.id2label[index]}" for index in range(model.config.num_labels)]
    names = getattr(model.config, "target_names", None)
    num_targets = getattr(model.config, "num_targets", 1)
    return (
        list(names)
        if names
        else (["prediction"] if num_targets == 1 else [f"target_{i}" for i in range(num_targets)])
    )


@dataclass
class PredictedItem:
    """One predicted image: its name (`file`, `file:key`, `file[row]`), the values and the trust warnings."""

    name: str
    values: list[float]
    warnings: list[str] = field(default_factory=list)
    label: str | None = None  # the predicted class (classification)


@dataclass
class Predictions:
    """What `predict_files` did: the `rows` in input order, the `skipped` items with reasons."""

    task: str
    columns: list[str]
    rows: list[PredictedItem]
    skipped: list[tuple[str, str]]

    @property
    def warned(self) -> list[PredictedItem]:
        return [row for row in self.rows if row.warnings]


@torch.no_grad()
def predict_files(
    model: str | torch.nn.Module,
    inputs: Sequence[str],
    *,
    processor: Any = None,
    task: str | None = None,
    allow_pickle: bool = False,
    npz_key: str | None = None,
    batch_size: int = 32,
    device: str | None = None,
    input_data_format: str | None = None,
    trust_remote_code: bool = False,
    on_warning: Any = None,
    progress: bool = False,
) -> Predictions:
    """Predict every image in `inputs` (files or directories) with a classifier or regression model.

    Args:
        model: a saved model directory or Hub repo id, or a loaded model (then give `processor` and `task`).
        inputs: files and directories (searched recursively for `.npy`, `.npz`, FITS).
        processor: the image processor (default: the model's).
        task: `"classification"` or `"regression"` for a loaded model (detected when loading by name).
        allow_pickle: unpickle object arrays (the DeepLense axion files). Unpickling runs code from the file:
            only for files you trust. Default False: object arrays are skipped with the reason.
        npz_key: read only this array from each `.npz`.
        batch_size: images per forward pass.
        device: torch device (default: cuda if available, else cpu).
        input_data_format: `"channels_first"` / `"channels_last"` (default: inferred by the processor).
        trust_remote_code: load modelling code saved with the model.
        on_warning: called as `on_warning(name, message)` for each trust warning, as it is found.
        progress: show a progress bar over files.

    Returns:
        `Predictions`: rows (classification values are softmax probabilities), skipped items and reasons.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(model, (str, Path)):
        model, loaded_processor, task = load_model_and_processor(str(model), device, trust_remote_code)
        processor = processor or loaded_processor
    elif processor is None or task is None:
        raise ValueError("a loaded model needs its processor and task")
    model.eval()
    files, skipped = find_input_files(inputs)
    rows: list[PredictedItem] = []
    pending: list[tuple[PredictedItem, torch.Tensor]] = []

    def flush() -> None:
        if not pending:
            return
        pixel_values = torch.stack([pixels for _, pixels in pending]).to(device)  # (B, C, size, size)
        logits = model(pixel_values=pixel_values).logits.float()
        values = logits.softmax(-1) if task == "classification" else logits
        for (row, _), row_values in zip(pending, values.cpu()):
            row.values = row_values.tolist()
            if task == "classification":
                row.label = model.config.id2label[int(np.argmax(row.values))]
        pending.clear()

    disable = (
        True if not progress or len(files) < 20 else None
    )  # None: tqdm turns itself off without a terminal
    for path in tqdm(files, desc="predict", unit="file", disable=disable):
        for name, array in read_items(path, npz_key, allow_pickle):
            if isinstance(array, Exception):
                skipped.append((name, _reason(array)))
                continue
            try:
                pixels = processor(array, return_tensors="pt", input_data_format=input_data_format)[
                    "pixel_values"
                ][0]
            except ValueError as error:
                skipped.append((name, _reason(error)))
                continue
            row = PredictedItem(name, [], input_warnings(array, pixels, processor))
            for message in row.warnings:
                if on_warning is not None:
                    on_warning(name, message)
            rows.append(row)
            pending.append((row, pixels))
            if len(pending) >= batch_size:
                flush()
    flush()
    return Predictions(task, output_columns(model, task), rows, skipped)
