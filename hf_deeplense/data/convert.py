"""Convert the public DeepLense `.npy` folders into the one hf_deeplense dataset format.

Every layout of /work/shared/DATA_FORMATS.md (see `LAYOUTS`) becomes Parquet shards plus a dataset
card (`writer.py`, `card.py`), loadable with `load_dataset(DIR)` or `load_lensing_dataset(DIR)`.

Safety and robustness:
- Files are opened with `np.load(allow_pickle=False)`. Object arrays (the axion files
  `[image, mass]`) need pickle, which can run arbitrary code: they are loaded only with
  `allow_pickle=True` (`--allow-pickle`), otherwise skipped and reported.
- A file that cannot be used (truncated, corrupt, NaN/inf, non-numeric, wrong shape, image size
  differing from the rest of the dataset, bad label) is skipped and reported with the reason;
  everything else converts. The report is printed and stored in the card.
- Files are read shard by shard; at most one shard of images is in memory.
- A killed conversion rerun with the same arguments resumes (finished shards are kept).

Mass column: axion files carry the axion mass next to the image. It is stored as `log10_m_a`
(float32, log10 of the mass in eV, NaN for other classes), the column name and unit the simulator
uses. A positive stored mass is taken as linear (eV) and its log10 stored; a negative one is taken
to be log10 already (a linear mass is never negative); zero or non-finite masses are reported.

Class names: the folder names of each layout, in the label order of the simulator's presets
(`no_sub`/`no` = 0, `cdm`/`sphere` = 1, `axion`/`vort` = 2; lens finding `non_lens` = 0,
`lens` = 1), so label ids mean the same thing in converted and simulated data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .card import dataset_statistics, write_dataset_card
from .writer import SPLITS, lensing_features, list_shards, write_split

logger = logging.getLogger(__name__)

__all__ = [
    "ALLOW_PICKLE_WARNING",
    "LAYOUTS",
    "ConversionResult",
    "LayoutError",
    "SkipFile",
    "convert_deeplense",
    "detect_layout",
    "image_from_array",
    "load_example",
]

MASS_COLUMN = "log10_m_a"
ALLOW_PICKLE_WARNING = (
    "--allow-pickle: object arrays will be unpickled. Unpickling runs code stored in the file: "
    "use it only for files you trust (e.g. the DeepLense axion files you downloaded yourself)."
)
_STATE_DIR = ".convert_state"
_TARGET_SHARD_BYTES = 128 * 2**20
_MAX_SUMMARY_LINES = 1000


@dataclass(frozen=True)
class LayoutInfo:
    """A known folder layout: its class names (label order) and what it looks like."""

    name: str
    pattern: str
    class_names: tuple[str, ...]
    float_columns: tuple[str, ...] = ()


LAYOUTS: dict[str, LayoutInfo] = {
    info.name: info
    for info in (
        LayoutInfo(
            "model_i_iii",
            "Model_X/{no_sub,cdm,axion}/*.npy (+ Model_X_test/): Model I, II, III",
            ("no_sub", "cdm", "axion"),
            (MASS_COLUMN,),
        ),
        LayoutInfo(
            "model_iv",
            "train/{no,cdm,axion}/*.npy, val/...: Model IV, (64,64,3) channels-last",
            ("no", "cdm", "axion"),
            (MASS_COLUMN,),
        ),
        LayoutInfo(
            "common_test_i",
            "dataset/{train,val}/{no,sphere,vort}/*.npy: Common Test I, (1,150,150)",
            ("no", "sphere", "vort"),
        ),
        LayoutInfo(
            "lens_finding",
            "train_lenses/, train_nonlenses/, test_lenses/, test_nonlenses/: lens finding, (3,64,64)",
            ("non_lens", "lens"),
        ),
        LayoutInfo("real_lens_ssl", "lenses/, nonlenses/: real lenses, 3 bands", ("non_lens", "lens")),
        LayoutInfo(
            "regression", "lens_data/*.npy: object arrays [image (150,150), mass]", ("axion",), (MASS_COLUMN,)
        ),
        LayoutInfo(
            "flat_array", "*.npy: flat H*W pixel rows with the label appended, (H*W+1,) or (N, H*W+1)", ()
        ),
    )
}


class LayoutError(ValueError):
    """The source folder matches no known layout (or not the one asked for)."""


class SkipFile(Exception):
    """A source file (or row) that cannot be converted; the message is the reason."""


@dataclass(frozen=True)
class SourceItem:
    """One image to convert: a file (or a row of a flat-array file), its label and given split."""

    path: Path
    label: int
    split: str | None
    row: int | None = None


@dataclass
class ConversionResult:
    """What `convert_deeplense` did."""

    out_dir: Path
    layout: str
    class_names: list[str]
    image_shape: tuple[int, int, int]
    counts: dict[str, dict[str, int]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""


# --------------------------------------------------------------------------------------------
# Per-file validation


def _image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """(C, H, W) of an image array of `shape`: (H, W) -> 1 channel, (C, H, W) when C <= 4,
    (H, W, C) channels-last when C <= 4 comes last."""
    if len(shape) == 2:
        return (1, int(shape[0]), int(shape[1]))
    if len(shape) == 3:
        if shape[0] <= 4 < min(shape[1], shape[2]):
            return tuple(int(s) for s in shape)
        if shape[2] <= 4 < min(shape[0], shape[1]):
            return (int(shape[2]), int(shape[0]), int(shape[1]))
    raise SkipFile(f"image shape {tuple(shape)} is not (H, W), (C, H, W) or (H, W, C) with C <= 4 < H, W")


def image_from_array(array: Any, expected_shape: Sequence[int] | None = None) -> np.ndarray:
    """Validate one image and return it as a finite `(C, H, W)` float32 array.

    Raises:
        SkipFile: not a real numeric array, a shape that is not an image, not `expected_shape`,
            or values that are NaN/inf (also after the cast to float32).
    """
    array = np.asarray(array)
    if array.dtype == object:
        raise SkipFile("nested object array where an image was expected")
    if array.dtype.kind not in "iuf":
        raise SkipFile(f"dtype {array.dtype} is not a real number type")
    chw = _image_shape(array.shape)
    if array.ndim == 2:
        array = array[None]
    elif chw != array.shape:
        array = np.moveaxis(array, -1, 0)
    if array.size == 0:
        raise SkipFile("empty image")
    if expected_shape is not None and chw != tuple(expected_shape):
        raise SkipFile(f"image shape {chw} differs from the dataset's {tuple(expected_shape)}")
    with np.errstate(over="ignore"):
        image = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(image)
    if not finite.all():
        kind = "NaN" if np.isnan(image).any() else "inf"
        raise SkipFile(f"{(~finite).sum()} {kind} pixel value(s) (after the cast to float32)")
    return image


def _log10_mass(value: Any) -> float:
    try:
        mass = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError) as error:
        raise SkipFile(f"mass {value!r} is not a number") from error
    if not np.isfinite(mass) or mass == 0:
        raise SkipFile(f"mass {mass} is not finite and non-zero")
    return float(np.log10(mass)) if mass > 0 else mass


def _read_npy(path: Path, allow_pickle: bool, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as error:
        message = str(error)
        if "allow_pickle" not in message and "pickled" not in message:
            raise SkipFile(f"unreadable .npy: {message}") from error
        if not allow_pickle:
            raise SkipFile(
                "object array (needs pickle, which can run code): rerun with --allow-pickle "
                "(allow_pickle=True) if you trust this file"
            ) from error
    except Exception as error:  # truncated or corrupt: EOFError, OSError, UnpicklingError, ...
        raise SkipFile(f"unreadable .npy: {type(error).__name__}: {error}") from error
    try:
        return np.load(path, allow_pickle=True)
    except Exception as error:
        raise SkipFile(f"unreadable pickled .npy: {type(error).__name__}: {error}") from error


def load_example(
    path: str | os.PathLike, allow_pickle: bool = False, expected_shape: Sequence[int] | None = None
) -> tuple[np.ndarray, float]:
    """Load one DeepLense image file.

    Args:
        path: a `.npy` file holding an image array, or (with `allow_pickle`) an object array
            `[image, mass]`.
        allow_pickle: allow object arrays (unpickling can run code: only for trusted files).
        expected_shape: the `(C, H, W)` every image of the dataset must have.

    Returns:
        `(image (C, H, W) float32, log10_mass)`; `log10_mass` is NaN when the file has no mass.

    Raises:
        SkipFile: the file cannot be used; the message says why.
    """
    array = _read_npy(Path(path), allow_pickle)
    if array.dtype != object:
        return image_from_array(array, expected_shape), float("nan")
    items = list(array.reshape(-1)) if array.ndim else [array.item()]
    if len(items) != 2:
        raise SkipFile(f"object array with {len(items)} elements; expected [image, mass]")
    image, mass = items
    if np.ndim(mass) > np.ndim(image):
        image, mass = mass, image
    return image_from_array(image, expected_shape), _log10_mass(mass)


def _flat_row(
    array: np.ndarray, row: int | None, expected_shape: Sequence[int] | None
) -> tuple[np.ndarray, int]:
    values = np.asarray(array if row is None else array[row], dtype=np.float64)
    side = int(round(np.sqrt(values.size - 1))) if values.size > 1 else 0
    if values.ndim != 1 or side < 1 or side * side != values.size - 1:
        raise SkipFile(f"flat row of {values.size} values is not H*W pixels (square image) + 1 label")
    label = values[-1]
    if not np.isfinite(label) or label != int(label) or label < 0:
        raise SkipFile(f"appended label {label} is not a non-negative integer")
    return image_from_array(values[:-1].reshape(side, side), expected_shape), int(label)


# --------------------------------------------------------------------------------------------
# Layouts


def _npy_files(folder: Path, report: list[tuple[Path, str]]) -> list[Path]:
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix == ".npy":
            files.append(path)
        else:
            report.append((path, "not a .npy file" if path.is_file() else "unexpected folder (ignored)"))
    return files


def _subdirs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _class_folders(
    root: Path, class_names: Sequence[str], split: str | None, report: list[tuple[Path, str]]
) -> list[SourceItem]:
    found = _subdirs(root)
    unknown = sorted(found - set(class_names))
    if unknown:
        raise LayoutError(f"{root}: unknown class folders {unknown}; this layout expects {list(class_names)}")
    items = []
    for label, name in enumerate(class_names):
        if name in found:
            items += [SourceItem(p, label, split) for p in _npy_files(root / name, report)]
    return items


def _model_i_iii_roots(src: Path) -> tuple[Path, Path | None]:
    classes = set(LAYOUTS["model_i_iii"].class_names)
    if _subdirs(src) & classes:
        test = src.with_name(src.name + "_test")
        return src, test if test.is_dir() and not src.name.endswith("_test") else None
    models = sorted(
        name for name in _subdirs(src) if name.startswith("Model_") and not name.endswith("_test")
    )
    if len(models) != 1:
        raise LayoutError(
            f"{src}: expected one Model_X folder (with {sorted(classes)}), found {models or 'none'}; "
            "point SRC at one of them"
        )
    test = src / f"{models[0]}_test"
    return src / models[0], test if test.is_dir() else None


def _split_folders(src: Path) -> Path:
    """The folder holding train/ (and val/): SRC itself or SRC/dataset."""
    if "train" not in _subdirs(src) and "dataset" in _subdirs(src):
        src = src / "dataset"
    if "train" not in _subdirs(src):
        raise LayoutError(f"{src}: no train/ folder")
    return src


def _discover(
    layout: str, src: Path, report: list[tuple[Path, str]], class_names: Sequence[str] | None
) -> tuple[list[SourceItem], tuple[str, ...]]:
    info = LAYOUTS[layout]
    names = info.class_names
    if layout == "model_i_iii":
        train, test = _model_i_iii_roots(src)
        items = _class_folders(train, names, "train", report)
        if test is not None:
            items += _class_folders(test, names, "test", report)
    elif layout in ("model_iv", "common_test_i"):
        root = _split_folders(src)
        extra = sorted(_subdirs(root) - {"train", "val", "validation", "test"})
        if extra:
            raise LayoutError(f"{root}: unexpected folders {extra} next to train/")
        items = []
        for folder, split in (
            ("train", "train"),
            ("val", "validation"),
            ("validation", "validation"),
            ("test", "test"),
        ):
            if (root / folder).is_dir():
                items += _class_folders(root / folder, names, split, report)
    elif layout == "lens_finding":
        items = []
        for split in ("train", "test"):
            for label, kind in enumerate(("nonlenses", "lenses")):
                folder = src / f"{split}_{kind}"
                if folder.is_dir():
                    items += [SourceItem(p, label, split) for p in _npy_files(folder, report)]
        if not (src / "train_lenses").is_dir() or not (src / "train_nonlenses").is_dir():
            raise LayoutError(f"{src}: lens finding needs train_lenses/ and train_nonlenses/")
    elif layout == "real_lens_ssl":
        if not (src / "lenses").is_dir() or not (src / "nonlenses").is_dir():
            raise LayoutError(f"{src}: real-lens layout needs lenses/ and nonlenses/")
        items = [SourceItem(p, 0, None) for p in _npy_files(src / "nonlenses", report)]
        items += [SourceItem(p, 1, None) for p in _npy_files(src / "lenses", report)]
    elif layout == "regression":
        folder = src / "lens_data" if (src / "lens_data").is_dir() else src
        items = [SourceItem(p, 0, None) for p in _npy_files(folder, report)]
    elif layout == "flat_array":
        items, max_label = [], -1
        for path in _npy_files(src, report):
            try:
                array = _read_npy(path, allow_pickle=False, mmap=True)
                if array.dtype.kind not in "iuf" or array.ndim not in (1, 2):
                    raise SkipFile(f"flat-array file of shape {array.shape} and dtype {array.dtype}")
                labels = np.asarray(array[..., -1], dtype=np.float64).reshape(-1)
            except SkipFile as error:
                report.append((path, str(error)))
                continue
            for row, label in enumerate(labels):
                row_index = row if array.ndim == 2 else None
                if not np.isfinite(label) or label != int(label) or label < 0:
                    report.append(
                        (_row_name(path, row_index), f"appended label {label} is not a non-negative integer")
                    )
                    continue
                items.append(SourceItem(path, int(label), None, row_index))
                max_label = max(max_label, int(label))
        names = tuple(class_names) if class_names else tuple(f"class_{i}" for i in range(max_label + 1))
        if max_label >= len(names):
            raise LayoutError(
                f"labels go up to {max_label} but {len(names)} class names were given: {list(names)}"
            )
    else:
        raise LayoutError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")
    if class_names and layout != "flat_array" and tuple(class_names) != names:
        raise LayoutError(
            f"layout {layout} has fixed class names {list(names)}; class_names applies to flat_array"
        )
    return items, names


def _layouts_help() -> str:
    return "\n".join(f"  {info.name:14s} {info.pattern}" for info in LAYOUTS.values())


def detect_layout(src: str | os.PathLike) -> str:
    """Name of the layout (a key of `LAYOUTS`) that the folder `src` matches.

    Raises:
        LayoutError: no layout matches; the message lists the known layouts and what was found.
    """
    src = Path(src)
    if not src.is_dir():
        raise LayoutError(f"{src} is not a folder")
    dirs = _subdirs(src)
    model_classes = set(LAYOUTS["model_i_iii"].class_names)
    if dirs & model_classes or any(d.startswith("Model_") for d in dirs):
        return "model_i_iii"
    if {"train_lenses", "train_nonlenses"} <= dirs:
        return "lens_finding"
    if {"lenses", "nonlenses"} <= dirs:
        return "real_lens_ssl"
    if "lens_data" in dirs or src.name == "lens_data":
        return "regression"
    root = src / "dataset" if "train" not in dirs and "dataset" in dirs else src
    if (root / "train").is_dir():
        classes = _subdirs(root / "train")
        for layout in ("model_iv", "common_test_i"):
            if classes and classes <= set(LAYOUTS[layout].class_names):
                return layout
    if not dirs and any(p.suffix == ".npy" for p in src.iterdir()):
        return "flat_array"
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in src.iterdir() if not p.name.startswith("."))
    shown = ", ".join(found[:20]) + (f" ... ({len(found)} entries)" if len(found) > 20 else "")
    raise LayoutError(
        f"{src}: folder structure matches no known DeepLense layout.\nFound: {shown or 'an empty folder'}\n"
        f"Known layouts (pass one with --layout):\n{_layouts_help()}"
    )


# --------------------------------------------------------------------------------------------
# Splits, shapes, shards


def _assign_splits(
    items: list[SourceItem], num_classes: int, val_frac: float, test_frac: float, seed: int
) -> dict[str, list[SourceItem]]:
    """Keep the layout's own splits; carve the missing validation/test splits out of the
    training pool (items of split `train` or None), stratified by class, seeded. Each split's
    rows are then shuffled (seeded), so shards mix classes."""
    given = {item.split for item in items if item.split is not None}
    fractions = {}
    if "validation" not in given and val_frac > 0:
        fractions["validation"] = val_frac
    if "test" not in given and test_frac > 0:
        fractions["test"] = test_frac
    if sum(fractions.values()) >= 1:
        raise ValueError(f"val_frac + test_frac must be < 1, got {fractions}")
    rng = np.random.default_rng(seed)
    splits: dict[str, list[SourceItem]] = {split: [] for split in SPLITS}
    pool = [item for item in items if item.split in (None, "train")]
    for item in items:
        if item.split not in (None, "train"):
            splits[item.split].append(item)
    for label in range(num_classes):
        members = [item for item in pool if item.label == label]
        order = rng.permutation(len(members))
        start = 0
        for split, frac in fractions.items():
            count = int(round(frac * len(members)))
            splits[split] += [members[i] for i in order[start : start + count]]
            start += count
        splits["train"] += [members[i] for i in order[start:]]
    for split in SPLITS:
        order = rng.permutation(len(splits[split]))
        splits[split] = [splits[split][i] for i in order]
    return {split: members for split, members in splits.items() if members}


def _header_shape(path: Path) -> tuple[int, ...] | None:
    """Array shape from a `.npy` header without reading the data (None for object/unreadable)."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            reader = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = reader(handle)
    except Exception:
        return None
    return None if dtype.hasobject else tuple(shape)


def _dataset_image_shape(
    layout: str, items: list[SourceItem], allow_pickle: bool
) -> tuple[int, int, int] | None:
    """The most common image shape (the dataset's `(C, H, W)`): from the `.npy` headers, and for
    object arrays from loading up to 32 of them (only with `allow_pickle`)."""
    votes: Counter = Counter()
    if layout == "flat_array":
        for item in items[:256]:
            try:
                array = _read_npy(item.path, allow_pickle=False, mmap=True)
                votes[_flat_row(array, item.row, None)[0].shape] += 1
            except SkipFile:
                continue
    else:
        object_files = []
        for item in items:
            shape = _header_shape(item.path)
            if shape is None:
                object_files.append(item.path)
                continue
            try:
                votes[_image_shape(shape)] += 1
            except SkipFile:
                continue
        if not votes and allow_pickle:
            for path in object_files[:32]:
                try:
                    votes[load_example(path, allow_pickle=True)[0].shape] += 1
                except SkipFile:
                    continue
    return votes.most_common(1)[0][0] if votes else None


def _row_name(path: Path, row: int | None) -> Path:
    return path if row is None else path.with_name(f"{path.name}[{row}]")


def _relative(path: Path, src: Path) -> str:
    """`path` relative to `src` (or to its parent, for a sibling `Model_X_test/`)."""
    for base in (src, src.parent):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.as_posix()


def _summary(result: ConversionResult, src: Path) -> str:
    lines = [f"layout {result.layout}: {src.name}/ -> image shape {result.image_shape}"]
    for split, counts in result.counts.items():
        per_class = ", ".join(f"{name} {count}" for name, count in counts.items())
        lines.append(f"{split}: {sum(counts.values())} ({per_class})")
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)} file(s):")
        shown = result.skipped[:_MAX_SUMMARY_LINES]
        lines += [f"  {path}: {reason}" for path, reason in shown]
        if len(result.skipped) > len(shown):
            lines.append(f"  ... and {len(result.skipped) - len(shown)} more")
    else:
        lines.append("skipped 0 files")
    return "\n".join(lines)


def convert_deeplense(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    layout: str | None = None,
    allow_pickle: bool = False,
    seed: int = 0,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    class_names: Sequence[str] | None = None,
    examples_per_shard: int | None = None,
    progress: bool = True,
) -> ConversionResult:
    """Convert a DeepLense `.npy` folder to Parquet shards + a dataset card in `out_dir`.

    Args:
        src: the downloaded folder (see `LAYOUTS` for the folder structures).
        out_dir: output dataset folder (`README.md`, `data/*.parquet`); must not be inside `src`.
        layout: a key of `LAYOUTS`; None detects it from the folder structure.
        allow_pickle: load object arrays (`[image, mass]` files). Unpickling runs code from the
            file: only for files you trust. Without it such files are skipped and reported.
        seed: seed of the split assignment and of the row order within each split.
        val_frac, test_frac: fractions of the training pool carved out (stratified by class) for
            the validation / test split when the layout has none; 0 carves nothing.
        class_names: class names for the `flat_array` layout (default `class_0`, ...).
        examples_per_shard: rows per shard (default: about 128 MiB of float32 pixels).
        progress: show a progress bar over files.

    Returns:
        A `ConversionResult` (counts per split and class, the skipped files with reasons, and
        the summary text that is also printed and stored in the card).

    Raises:
        LayoutError: the folder matches no layout (the message lists the layouts).
        ValueError: no file could be converted (the message holds the summary).
    """
    src, out_dir = Path(src).resolve(), Path(out_dir).resolve()
    if out_dir.is_relative_to(src):
        raise ValueError(f"out_dir {out_dir} must not be inside the source folder {src}")
    layout = layout or detect_layout(src)
    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}. Known layouts:\n{_layouts_help()}")
    report: list[tuple[Path, str]] = []
    items, names = _discover(layout, src, report, class_names)
    if not items:
        raise ValueError(f"no .npy files found under {src} for layout {layout} ({LAYOUTS[layout].pattern})")
    shape = _dataset_image_shape(layout, items, allow_pickle)
    if shape is None:
        hint = "" if allow_pickle else " (object arrays need --allow-pickle)"
        raise ValueError(f"no readable image under {src}{hint}")
    splits = _assign_splits(items, len(names), val_frac, test_frac, seed)
    float_columns = LAYOUTS[layout].float_columns
    features = lensing_features(names, shape, float_columns, with_source_file=True)
    per_shard = examples_per_shard or max(1, _TARGET_SHARD_BYTES // (4 * int(np.prod(shape))))

    parameters = {
        "source": src.name,
        "layout": layout,
        "allow_pickle": allow_pickle,
        "seed": seed,
        "val_frac": val_frac,
        "test_frac": test_frac,
        "examples_per_shard": per_shard,
        "image_shape": list(shape),
    }
    state_dir = out_dir / _STATE_DIR
    fingerprint = hashlib.sha256(
        json.dumps(
            [parameters, {s: [(str(i.path), i.row, i.label) for i in m] for s, m in splits.items()}]
        ).encode()
    ).hexdigest()
    resume = (state_dir / "fingerprint").is_file() and (state_dir / "fingerprint").read_text() == fingerprint
    if not resume:
        shutil.rmtree(state_dir, ignore_errors=True)
        for paths in list_shards(out_dir).values():
            for path in paths:
                path.unlink()
        state_dir.mkdir(parents=True)
        (state_dir / "fingerprint").write_text(fingerprint)

    bar = tqdm(total=len(items), desc=f"converting {src.name}", unit="file", disable=not progress)
    for split, members in splits.items():
        num_shards = max(1, -(-len(members) // per_shard))

        def make_shard(index: int, split=split, members=members) -> dict[str, Any]:
            chunk = members[index * per_shard : (index + 1) * per_shard]
            pixels = np.empty((len(chunk), *shape), np.float32)
            labels, masses, sources, problems = [], [], [], []
            flat_cache: dict[Path, np.ndarray] = {}
            for item in chunk:
                name = _relative(_row_name(item.path, item.row), src)
                try:
                    if layout == "flat_array":
                        if item.path not in flat_cache:
                            flat_cache[item.path] = _read_npy(item.path, allow_pickle=False, mmap=True)
                        image, _ = _flat_row(flat_cache[item.path], item.row, shape)
                        mass = float("nan")
                    else:
                        image, mass = load_example(item.path, allow_pickle, shape)
                except SkipFile as error:
                    problems.append((name, str(error)))
                    continue
                finally:
                    bar.update(1)
                pixels[len(labels)] = image
                labels.append(item.label)
                masses.append(mass)
                sources.append(name)
            rows: dict[str, Any] = {
                "pixel_values": pixels[: len(labels)],
                "label": labels,
                "source_file": sources,
            }
            if MASS_COLUMN in float_columns:
                rows[MASS_COLUMN] = np.asarray(masses, np.float32)
            (state_dir / f"{split}-{index:05d}.json").write_text(json.dumps(problems))
            return rows

        done = len(list_shards(out_dir, split).get(split, []))
        bar.update(min(len(members), done * per_shard))
        write_split(out_dir, split, num_shards, make_shard, features, progress=False)
    bar.close()

    skipped = [(_relative(path, src), reason) for path, reason in report]
    for split, members in splits.items():
        for index in range(max(1, -(-len(members) // per_shard))):
            skipped += [tuple(p) for p in json.loads((state_dir / f"{split}-{index:05d}.json").read_text())]
    counts = {split: info["per_class"] for split, info in dataset_statistics(out_dir)["splits"].items()}
    result = ConversionResult(out_dir, layout, list(names), shape, counts, skipped)
    result.summary = _summary(result, src)
    if not sum(sum(c.values()) for c in counts.values()):
        raise ValueError(f"no file of {src} could be converted:\n{result.summary}")
    write_dataset_card(
        out_dir,
        title=f"DeepLense {src.name} ({layout})",
        description=(
            f"Converted with `hf_deeplense.data.convert_deeplense` from the DeepLense folder `{src.name}` "
            f"(layout `{layout}`: {LAYOUTS[layout].pattern}). Each row keeps its `source_file`."
            + (
                f" `{MASS_COLUMN}`: log10 of the axion mass in eV (NaN for other classes)."
                if float_columns
                else ""
            )
        ),
        parameters=parameters,
        parameters_heading="Conversion parameters",
        summary=result.summary,
    )
    shutil.rmtree(state_dir, ignore_errors=True)
    return result
