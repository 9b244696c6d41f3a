"""Convert the public DeepLense `.npy` folders into the one hf_deeplense dataset format.

Each layout in `LAYOUTS` becomes Parquet shards plus a dataset card (`writer.py`, `card.py`), loadable
with `load_dataset(DIR)` or `load_lensing_dataset(DIR)`. The layouts are those of the DeepLense data
folders and contributor notebooks: Model I-III class folders (+ `_test`), Model IV, Common Test I, the
binary substructure test, lens finding, the real-lens SSL set (with its published split files), HSC
cut-outs, the 2022 regression folder, stacked `(N, 1, H, W)` arrays with a labels array, `.npz`
multi-target regression caches and flat pixel rows. A folder in none of these shapes is refused
with a `LayoutError` listing them.

Splits: a layout's own splits are kept (`Model_X_test/`, `val/`, `test_*`, `train`/`test` in a
stacked file name, the published `indices.pkl`); Common Test I's `val/` becomes the test split
(its GSoC results are reported on it) unless `val_folder_split="validation"`. Missing
validation/test splits are carved out of the training pool (`val_frac`, `test_frac`, together up to
1), and `split="test"` puts a whole folder into one split.

Safety and robustness:
- Files are opened with `np.load(allow_pickle=False)`. Object arrays (the axion files
  `[image, mass]`) need pickle, which can run arbitrary code: they are loaded only with
  `allow_pickle=True` (`--allow-pickle`), otherwise skipped and reported. The published split files
  (`indices.pkl`, `train_indices_N.pkl`) are pickles too: read only with the same opt-in, and then
  with an unpickler that refuses every global but numpy's string arrays.
- A file that cannot be used (truncated, corrupt, NaN/inf, non-numeric, wrong shape, image size
  differing from the rest of the dataset, bad label) is skipped and reported with the reason;
  everything else converts. The report is printed and stored in the card.
- Files are read shard by shard; at most one shard of images is in memory (stacked `.npy` arrays
  are memory-mapped; the `data` array of an `.npz` is read whole, since `.npz` members cannot be).
- A killed conversion rerun with the same arguments resumes (finished shards are kept).

Mass column: axion files carry the axion mass next to the image. It is stored as `log10_m_a`
(float32, log10 of the mass in eV, NaN for other classes), the column name and unit the simulator
uses. A positive stored mass is taken as linear (eV) and its log10 stored; a negative one is taken
to be log10 already (a linear mass is never negative); zero or non-finite masses are reported.

Class names: the folder names of each layout, in the label order of the simulator's presets
(`no_sub`/`no` = 0, `cdm`/`sphere` = 1, `axion`/`vort` = 2; `no_sub` = 0, `sub` = 1; lens finding,
real lenses and HSC `non_lens` = 0, `lens` = 1), so label ids mean the same thing in converted and
simulated data. The DeepLense notebooks order classes alphabetically (axion = 0, cdm = 1,
no_sub = 2; real lenses: lenses = 0): map logits with the `ClassLabel` names, not the ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
    "load_split_file",
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
    """A known folder layout: its class names (label order), what it looks like, and where the
    layout's own `val/` folder goes (`val_folder_split`), for layouts that have one."""

    name: str
    pattern: str
    class_names: tuple[str, ...]
    float_columns: tuple[str, ...] = ()
    val_folder_split: str = "validation"


LAYOUTS: dict[str, LayoutInfo] = {
    info.name: info
    for info in (
        LayoutInfo(
            "model_i_iii",
            "Model_X/{no_sub,cdm,axion}/*.npy (+ Model_X_test/; a Model_X_test/ folder alone is a test split): "
            "Model I, II, III; axion files are pickled [image, m_a]",
            ("no_sub", "cdm", "axion"),
            (MASS_COLUMN,),
        ),
        LayoutInfo(
            "model_iv",
            "[Model_IV/]{train,val}/{no_sub,cdm,axion}/*.npy: Model IV, (1,64,64) as the DeepLense notebooks "
            "read it (np.load(f)[0] is the image; axion files pickled [image, m_a]); also (64,64,3) and a "
            "no/ folder for no_sub",
            ("no_sub", "cdm", "axion"),
            (MASS_COLUMN,),
        ),
        LayoutInfo(
            "common_test_i",
            "dataset/{train,val}/{no,sphere,vort}/*.npy: Common Test I, (1,150,150); val/ (what results report) "
            "becomes the test split",
            ("no", "sphere", "vort"),
            val_folder_split="test",
        ),
        LayoutInfo(
            "binary_substructure",
            "{no_sub,sub}/*.npy or *.png: the binary substructure test, (150,150)",
            ("no_sub", "sub"),
        ),
        LayoutInfo(
            "lens_finding",
            "train_lenses/, train_nonlenses/, test_lenses/, test_nonlenses/: lens finding, (3,64,64)",
            ("non_lens", "lens"),
        ),
        LayoutInfo(
            "real_lens_ssl",
            "lenses/, nonlenses/: real lenses, 3 bands (3,32,32); published splits from indices.pkl and "
            "labelled subsets from train_indices_{300,600,1200}.pkl (pickles: --allow-pickle)",
            ("non_lens", "lens"),
        ),
        LayoutInfo(
            "hsc",
            "hsc/ (non-lenses), hsc_lens_candidates/ (lenses): HSC real cut-outs, (64,64)",
            ("non_lens", "lens"),
        ),
        LayoutInfo(
            "regression", "lens_data/*.npy: object arrays [image (150,150), mass]", ("axion",), (MASS_COLUMN,)
        ),
        LayoutInfo(
            "stacked",
            "*data*.npy (N,1,H,W) with *labels*.npy (N,) or (N,1) beside it (e.g. f_train_data.npy + "
            "f_train_labels.npy; train/test/val in the name is the split): domain-adaptation and regression "
            "folders; integer labels are classes, other labels a float `target` column",
            (),
        ),
        LayoutInfo(
            "npz",
            "*.npz with data (N,C,H,W), targets (N,K) and optionally redshifts (N,Z): multi-target regression; "
            "columns target_0.., redshift_0..",
            ("lens",),
        ),
        LayoutInfo(
            "flat_array", "*.npy: flat H*W pixel rows with the label appended, (H*W+1,) or (N, H*W+1)", ()
        ),
    )
}
# folder names that mean a class of a layout under another name
_FOLDER_ALIASES = {"model_iv": {"no": "no_sub"}}
_SPLIT_FILE = "indices.pkl"
_SUBSET_FILE_PREFIX = "train_indices_"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class LayoutError(ValueError):
    """The source folder matches no known layout (or not the one asked for)."""


class SkipFile(Exception):
    """A source file (or row) that cannot be converted; the message is the reason."""


@dataclass(frozen=True)
class SourceItem:
    """One image to convert: a file (or a row of a stacked/flat-array/npz file), its label, its given
    split, and values of extra columns known before the image is read (`values`)."""

    path: Path
    label: int
    split: str | None
    row: int | None = None
    values: tuple[tuple[str, Any], ...] = ()


@dataclass
class _Discovery:
    items: list[SourceItem]
    class_names: tuple[str, ...]
    float_columns: tuple[str, ...] = ()
    bool_columns: tuple[str, ...] = ()
    image_shape: tuple[int, int, int] | None = None  # known without reading images (stacked, npz)


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
# Published split files (pickles)


class _SplitFileUnpickler(pickle.Unpickler):
    """Unpickles only what the published split files hold: dicts, lists and strings, numpy string
    scalars and arrays. Any other global (a function, a class with side effects) is refused, so even
    with the opt-in a tampered split file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (split files hold only file names)")
        return super().find_class(module, name)


def load_split_file(path: str | os.PathLike, allow_pickle: bool = False) -> dict[str, Any]:
    """Read a published split file of the real-lens SSL set: `indices.pkl` is
    `{"train"|"val"|"test": {"lenses": [file names], "nonlenses": [...]}}`, `train_indices_N.pkl` is
    `{"lenses": [...], "nonlenses": [...]}` (the N labelled training images).

    The files are pickles: read only with `allow_pickle=True`, and then with an unpickler that accepts
    nothing but containers, strings and numpy string arrays.

    Raises:
        SkipFile: without `allow_pickle`, or a file that is not such a split file (the message says why).
    """
    path = Path(path)
    if not allow_pickle:
        raise SkipFile(
            "published split file is a pickle: rerun with --allow-pickle (allow_pickle=True) to use its splits"
        )
    try:
        with open(path, "rb") as handle:
            data = _SplitFileUnpickler(handle).load()
    except Exception as error:
        raise SkipFile(f"unreadable split file: {type(error).__name__}: {error}") from error
    groups = data.values() if isinstance(data, dict) and "lenses" not in data else [data]
    for group in groups:
        if not isinstance(group, dict) or not {"lenses", "nonlenses"} <= set(group):
            raise SkipFile("not a split file: expected {split: {'lenses': [...], 'nonlenses': [...]}}")
    return data


# --------------------------------------------------------------------------------------------
# Layouts


def _npy_files(
    folder: Path, report: list[tuple[Path, str]], suffixes: tuple[str, ...] = (".npy",)
) -> list[Path]:
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix.lower() in suffixes:
            files.append(path)
        else:
            expected = "a .npy file" if suffixes == (".npy",) else f"a {'/'.join(suffixes)} file"
            report.append((path, f"not {expected}" if path.is_file() else "unexpected folder (ignored)"))
    return files


def _subdirs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _class_folders(
    root: Path,
    class_names: Sequence[str],
    split: str | None,
    report: list[tuple[Path, str]],
    aliases: dict[str, str] | None = None,
    suffixes: tuple[str, ...] = (".npy",),
) -> list[SourceItem]:
    aliases = aliases or {}
    found = _subdirs(root)
    unknown = sorted(found - set(class_names) - set(aliases))
    if unknown:
        raise LayoutError(f"{root}: unknown class folders {unknown}; this layout expects {list(class_names)}")
    items = []
    for folder in sorted(found):
        label = class_names.index(aliases.get(folder, folder))
        items += [SourceItem(p, label, split) for p in _npy_files(root / folder, report, suffixes)]
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
    """The folder holding train/ (and val/): SRC itself, SRC/dataset or the one SRC/Model_X."""
    if "train" not in _subdirs(src):
        children = [src / name for name in sorted(_subdirs(src)) if (src / name / "train").is_dir()]
        if len(children) == 1:
            src = children[0]
    if "train" not in _subdirs(src):
        raise LayoutError(f"{src}: no train/ folder")
    return src


def _split_of_name(name: str) -> str | None:
    words = set(re.split(r"[^a-z]+", name.lower()))
    for word, split in (
        ("train", "train"),
        ("val", "validation"),
        ("validation", "validation"),
        ("test", "test"),
    ):
        if word in words:
            return split
    return None


_DATA_WORDS = ("data", "images", "image", "x")
_LABEL_WORDS = ("labels", "label", "targets", "target", "y")


def _stacked_pairs(src: Path) -> list[tuple[Path, Path]]:
    """(data file, labels file) pairs of a stacked-array folder: `*data*.npy` beside the same name with
    `labels`/`label`/`targets`/`target` in place of `data`/`images`/`image`."""
    files = {p.name: p for p in src.iterdir() if p.is_file() and p.suffix == ".npy"}
    pairs = []
    for _, path in sorted(files.items()):
        parts = re.split(r"([^A-Za-z]+)", path.stem)
        for index, part in enumerate(parts):
            if part.lower() not in _DATA_WORDS:
                continue
            partners = [
                "".join([*parts[:index], word, *parts[index + 1 :]]) + ".npy" for word in _LABEL_WORDS
            ]
            partner = next((files[p] for p in partners if p in files), None)
            if partner is not None:
                pairs.append((path, partner))
                break
    return pairs


def _stacked(src: Path, report: list[tuple[Path, str]], class_names: Sequence[str] | None) -> _Discovery:
    pairs = _stacked_pairs(src)
    if not pairs:
        raise LayoutError(f"{src}: no *data*.npy file with a *labels*.npy file beside it")
    paired = {p for pair in pairs for p in pair}
    for path in sorted(src.iterdir()):
        if path not in paired and not path.name.startswith("."):
            report.append((path, "not part of a data/labels pair (ignored)"))
    loaded = []
    for data_path, labels_path in pairs:
        try:
            data = _read_npy(data_path, allow_pickle=False, mmap=True)
            labels = _read_npy(labels_path, allow_pickle=False)
        except SkipFile as error:
            raise LayoutError(f"{data_path.name} / {labels_path.name}: {error}") from error
        if data.ndim not in (3, 4):
            raise LayoutError(f"{data_path}: data of shape {data.shape}; expected (N, C, H, W) or (N, H, W)")
        if (
            labels.dtype.kind not in "iuf"
            or labels.ndim not in (1, 2)
            or labels.reshape(len(labels), -1).shape[1] != 1
        ):
            raise LayoutError(
                f"{labels_path}: labels of shape {labels.shape} and dtype {labels.dtype}; expected (N,) or (N, 1) numbers"
            )
        if len(labels) != len(data):
            raise LayoutError(
                f"{labels_path}: {len(labels)} labels for the {len(data)} images of {data_path.name}"
            )
        loaded.append((data_path, data, labels.reshape(-1).astype(np.float64)))
    shapes = {_image_shape(data.shape[1:]) for _, data, _ in loaded}
    if len(shapes) != 1:
        raise LayoutError(f"{src}: the data files hold different image shapes {sorted(shapes)}")
    values = np.concatenate([labels for *_, labels in loaded])
    finite = values[np.isfinite(values)]
    is_classes = len(finite) > 0 and np.all(finite == np.round(finite)) and finite.min() >= 0
    items = []
    for data_path, _, labels in loaded:
        split = _split_of_name(data_path.stem)
        for row, label in enumerate(labels):
            if not np.isfinite(label):
                report.append((_row_name(data_path, row), f"label {label} is not finite"))
            elif is_classes:
                items.append(SourceItem(data_path, int(label), split, row))
            else:
                items.append(SourceItem(data_path, 0, split, row, (("target", float(label)),)))
    if is_classes:
        count = int(finite.max()) + 1
        names = tuple(class_names) if class_names else tuple(f"class_{i}" for i in range(count))
        if count > len(names):
            raise LayoutError(
                f"labels go up to {count - 1} but {len(names)} class names were given: {list(names)}"
            )
        return _Discovery(items, names, image_shape=shapes.pop())
    return _Discovery(items, tuple(class_names or ("lens",)), ("target",), image_shape=shapes.pop())


def _npz(src: Path, report: list[tuple[Path, str]]) -> _Discovery:
    files = [src] if src.is_file() else sorted(p for p in src.iterdir() if p.suffix == ".npz")
    if src.is_dir():
        for path in sorted(src.iterdir()):
            if path.suffix != ".npz" and not path.name.startswith("."):
                report.append((path, "not a .npz file"))
    items, columns, shapes = [], None, set()
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "data" not in archive.files:
                    raise LayoutError(f"{path}: no 'data' array (arrays: {', '.join(archive.files)})")
                data_shape = _npz_shape(archive, "data")
                header = {key: archive[key] for key in ("targets", "redshifts") if key in archive.files}
        except LayoutError:
            raise
        except Exception as error:
            raise LayoutError(f"{path}: unreadable .npz ({type(error).__name__}: {error})") from error
        if len(data_shape) not in (3, 4):
            raise LayoutError(f"{path}: 'data' has shape {data_shape}; expected (N, C, H, W) or (N, H, W)")
        shapes.add(_image_shape(data_shape[1:]))
        file_columns = []
        extra = []
        for key, prefix in (("targets", "target"), ("redshifts", "redshift")):
            if key not in header:
                continue
            array = header[key]
            if array.dtype.kind not in "iuf":
                raise LayoutError(f"{path}: '{key}' has dtype {array.dtype}; expected numbers")
            if len(array) != data_shape[0]:
                raise LayoutError(f"{path}: '{key}' has {len(array)} rows but 'data' has {data_shape[0]}")
            array = array.reshape(len(array), -1).astype(np.float64)
            names_here = [f"{prefix}_{i}" for i in range(array.shape[1])]
            file_columns += names_here
            extra.append((names_here, array))
        if columns is None:
            columns = file_columns
        elif columns != file_columns:
            raise LayoutError(f"{path}: columns {file_columns} differ from the other files' {columns}")
        split = _split_of_name(path.stem)
        for row in range(data_shape[0]):
            values = tuple(
                (name, float(array[row, i]))
                for names_here, array in extra
                for i, name in enumerate(names_here)
            )
            items.append(SourceItem(path, 0, split, row, values))
    if len(shapes) > 1:
        raise LayoutError(f"{src}: the .npz files hold different image shapes {sorted(shapes)}")
    return _Discovery(
        items, LAYOUTS["npz"].class_names, tuple(columns or ()), image_shape=shapes.pop() if shapes else None
    )


def _npz_shape(archive: Any, key: str) -> tuple[int, ...]:
    """Shape of an array in an open `.npz` from its header, without reading the data."""
    with archive.zip.open(f"{key}.npy") as handle:
        version = np.lib.format.read_magic(handle)
        reader = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = reader(handle)
    if dtype.hasobject:
        raise LayoutError(f"'{key}' is an object array (pickled); expected numbers")
    return tuple(shape)


def _find_split_file(src: Path, split_file: Path | None) -> Path | None:
    if split_file is not None:
        if not Path(split_file).is_file():
            raise FileNotFoundError(f"split file {split_file} does not exist")
        return Path(split_file)
    for candidate in (src / _SPLIT_FILE, src / "input" / _SPLIT_FILE):
        if candidate.is_file():
            return candidate
    return None


def _real_lens_ssl(
    src: Path, report: list[tuple[Path, str]], allow_pickle: bool, split_file: Path | None
) -> _Discovery:
    if not (src / "lenses").is_dir() or not (src / "nonlenses").is_dir():
        raise LayoutError(f"{src}: real-lens layout needs lenses/ and nonlenses/")
    folders = {"nonlenses": 0, "lenses": 1}
    files = {kind: _npy_files(src / kind, report) for kind in folders}
    split_path = _find_split_file(src, split_file)
    if split_path is None:
        items = [SourceItem(p, label, None) for kind, label in folders.items() for p in files[kind]]
        return _Discovery(items, LAYOUTS["real_lens_ssl"].class_names)
    subset_paths = sorted(
        split_path.parent.glob(f"{_SUBSET_FILE_PREFIX}*.pkl"),
        key=lambda p: int(re.sub(r"\D", "", p.stem) or 0),
    )
    try:
        splits = load_split_file(split_path, allow_pickle)
        subsets = {
            f"labelled_{p.stem[len(_SUBSET_FILE_PREFIX) :]}": load_split_file(p, allow_pickle)
            for p in subset_paths
        }
    except SkipFile as error:
        report.append((split_path, str(error)))
        report += [
            (p, "published labelled subset (pickle): not read without --allow-pickle") for p in subset_paths
        ]
        items = [SourceItem(p, label, None) for kind, label in folders.items() for p in files[kind]]
        return _Discovery(items, LAYOUTS["real_lens_ssl"].class_names)
    split_names = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}
    unknown = sorted(set(splits) - set(split_names))
    if unknown:
        raise LayoutError(f"{split_path}: unknown splits {unknown}; expected train, val, test")
    split_of = {}
    for split, groups in splits.items():
        for kind in folders:
            for name in np.asarray(groups[kind]).reshape(-1).tolist():
                split_of[(kind, str(name))] = split_names[split]
    members = {
        column: {
            (kind, str(name)) for kind in folders for name in np.asarray(subset[kind]).reshape(-1).tolist()
        }
        for column, subset in subsets.items()
    }
    items = []
    for kind, label in folders.items():
        for path in files[kind]:
            split = split_of.get((kind, path.name))
            if split is None:
                report.append((path, f"not listed in {split_path.name} (no split)"))
                continue
            values = tuple((column, (kind, path.name) in names) for column, names in members.items())
            items.append(SourceItem(path, label, split, None, values))
    listed = {key for key in split_of}
    present = {(kind, p.name) for kind in folders for p in files[kind]}
    for kind, name in sorted(listed - present):
        report.append((src / kind / name, f"listed in {split_path.name} but missing"))
    return _Discovery(items, LAYOUTS["real_lens_ssl"].class_names, bool_columns=tuple(members))


def _discover(
    layout: str,
    src: Path,
    report: list[tuple[Path, str]],
    class_names: Sequence[str] | None,
    allow_pickle: bool = False,
    split_file: Path | None = None,
    val_folder_split: str | None = None,
) -> _Discovery:
    info = LAYOUTS[layout]
    names = info.class_names
    floats = info.float_columns
    if not src.is_dir() and not (layout == "npz" and src.suffix == ".npz" and src.is_file()):
        raise LayoutError(f"{src} is not a folder" + (" or an .npz file" if layout == "npz" else ""))
    if layout == "model_i_iii":
        train, test = _model_i_iii_roots(src)
        items = _class_folders(train, names, "test" if train.name.endswith("_test") else "train", report)
        if test is not None:
            items += _class_folders(test, names, "test", report)
    elif layout in ("model_iv", "common_test_i"):
        root = _split_folders(src)
        extra = sorted(_subdirs(root) - {"train", "val", "validation", "test"})
        if extra:
            raise LayoutError(f"{root}: unexpected folders {extra} next to train/")
        val_split = val_folder_split or info.val_folder_split
        items = []
        for folder, split in (
            ("train", "train"),
            ("val", val_split),
            ("validation", "validation"),
            ("test", "test"),
        ):
            if (root / folder).is_dir():
                items += _class_folders(root / folder, names, split, report, _FOLDER_ALIASES.get(layout))
    elif layout == "binary_substructure":
        items = _class_folders(src, names, None, report, suffixes=(".npy", *_IMAGE_SUFFIXES))
        if not {"no_sub", "sub"} <= _subdirs(src):
            raise LayoutError(f"{src}: the binary substructure layout needs no_sub/ and sub/")
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
        discovery = _real_lens_ssl(src, report, allow_pickle, split_file)
        items, names, bools = discovery.items, discovery.class_names, discovery.bool_columns
        return _check_class_names(layout, _Discovery(items, names, bool_columns=bools), class_names)
    elif layout == "hsc":
        if not (src / "hsc").is_dir() or not (src / "hsc_lens_candidates").is_dir():
            raise LayoutError(f"{src}: the HSC layout needs hsc/ and hsc_lens_candidates/")
        items = [SourceItem(p, 0, None) for p in _npy_files(src / "hsc", report)]
        items += [SourceItem(p, 1, None) for p in _npy_files(src / "hsc_lens_candidates", report)]
    elif layout == "regression":
        folder = src / "lens_data" if (src / "lens_data").is_dir() else src
        items = [SourceItem(p, 0, None) for p in _npy_files(folder, report)]
    elif layout == "stacked":
        return _stacked(src, report, class_names)
    elif layout == "npz":
        return _check_class_names(layout, _npz(src, report), class_names)
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
        return _Discovery(items, names)
    else:
        raise LayoutError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")
    return _check_class_names(layout, _Discovery(items, names, floats), class_names)


def _check_class_names(layout: str, discovery: _Discovery, class_names: Sequence[str] | None) -> _Discovery:
    if class_names and tuple(class_names) != discovery.class_names:
        raise LayoutError(
            f"layout {layout} has fixed class names {list(discovery.class_names)}; "
            "class_names applies to flat_array and stacked"
        )
    return discovery


def _layouts_help() -> str:
    return "\n".join(f"  {info.name:20s} {info.pattern}" for info in LAYOUTS.values())


def detect_layout(src: str | os.PathLike) -> str:
    """Name of the layout (a key of `LAYOUTS`) that the folder (or `.npz` file) `src` matches.

    Raises:
        LayoutError: no layout matches; the message lists the known layouts and what was found.
    """
    src = Path(src)
    if src.is_file() and src.suffix == ".npz":
        return "npz"
    if not src.is_dir():
        raise LayoutError(f"{src} is not a folder")
    dirs = _subdirs(src)
    model_classes = set(LAYOUTS["model_i_iii"].class_names)
    if "sub" in dirs and dirs <= {"no_sub", "sub"}:
        return "binary_substructure"
    if {"hsc", "hsc_lens_candidates"} <= dirs:
        return "hsc"
    models = [d for d in dirs if d.startswith("Model_")]
    if len(models) == 1 and (src / models[0] / "train").is_dir():
        return "model_iv"
    if dirs & model_classes or models:
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
            known = set(LAYOUTS[layout].class_names) | set(_FOLDER_ALIASES.get(layout, {}))
            if classes and classes <= known:
                return layout
    if not dirs:
        if any(p.suffix == ".npz" for p in src.iterdir()):
            return "npz"
        if _stacked_pairs(src):
            return "stacked"
        if any(p.suffix == ".npy" for p in src.iterdir()):
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
    items: list[SourceItem],
    num_classes: int,
    val_frac: float,
    test_frac: float,
    seed: int,
    split: str | None = None,
) -> dict[str, list[SourceItem]]:
    """Keep the layout's own splits; carve the missing validation/test splits out of the
    training pool (items of split `train` or None), stratified by class, seeded. With `split`,
    every item goes to that one split. Each split's rows are then shuffled (seeded), so shards
    mix classes."""
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        items = [replace(item, split=split) for item in items]
    given = {item.split for item in items if item.split is not None}
    for name, frac in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not 0 <= frac <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {frac}")
    fractions = {}
    if "validation" not in given and val_frac > 0:
        fractions["validation"] = val_frac
    if "test" not in given and test_frac > 0:
        fractions["test"] = test_frac
    if sum(fractions.values()) > 1 + 1e-9:
        raise ValueError(f"val_frac + test_frac must be at most 1, got {fractions}")
    takes_all = abs(sum(fractions.values()) - 1) < 1e-9
    rng = np.random.default_rng(seed)
    splits: dict[str, list[SourceItem]] = {name: [] for name in SPLITS}
    pool = [item for item in items if item.split in (None, "train")]
    for item in items:
        if item.split not in (None, "train"):
            splits[item.split].append(item)
    for label in range(num_classes):
        members = [item for item in pool if item.label == label]
        order = rng.permutation(len(members))
        start = 0
        for index, (name, frac) in enumerate(fractions.items()):
            last = takes_all and index == len(fractions) - 1
            count = len(members) - start if last else int(round(frac * len(members)))
            splits[name] += [members[i] for i in order[start : start + count]]
            start += count
        splits["train"] += [members[i] for i in order[start:]]
    for name in SPLITS:
        order = rng.permutation(len(splits[name]))
        splits[name] = [splits[name][i] for i in order]
    return {name: members for name, members in splits.items() if members}


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


def _read_picture(path: Path) -> np.ndarray:
    """A PNG/JPEG/TIFF image as a float array (grey: (H, W); colour: (H, W, C))."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as error:
        raise SkipFile(f"unreadable image file: {error}") from error


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
            if item.path.suffix.lower() in _IMAGE_SUFFIXES:
                if sum(votes.values()) < 256:
                    try:
                        votes[_image_shape(_read_picture(item.path).shape)] += 1
                    except SkipFile:
                        continue
                continue
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
    """`path` relative to `src` (or to its parent, for a sibling `Model_X_test/` or an `.npz` file)."""
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


class _ImageReader:
    """Reads the image of a `SourceItem` for one layout; keeps the open stacked/npz arrays."""

    def __init__(self, layout: str, allow_pickle: bool, shape: tuple[int, int, int]):
        self.layout, self.allow_pickle, self.shape = layout, allow_pickle, shape
        self._arrays: dict[Path, Any] = {}

    def _array(self, path: Path) -> Any:
        if path not in self._arrays:
            if self.layout == "npz":
                with np.load(path, allow_pickle=False) as archive:
                    self._arrays[path] = archive["data"]  # the whole array: .npz members cannot be mapped
            else:
                self._arrays[path] = _read_npy(path, allow_pickle=False, mmap=True)
        return self._arrays[path]

    def __call__(self, item: SourceItem) -> tuple[np.ndarray, float]:
        """`(image (C, H, W) float32, log10 mass or NaN)`; raises `SkipFile`."""
        if self.layout == "flat_array":
            return _flat_row(self._array(item.path), item.row, self.shape)[0], float("nan")
        if self.layout in ("stacked", "npz"):
            return image_from_array(self._array(item.path)[item.row], self.shape), float("nan")
        if item.path.suffix.lower() in _IMAGE_SUFFIXES:
            return image_from_array(_read_picture(item.path), self.shape), float("nan")
        return load_example(item.path, self.allow_pickle, self.shape)


def convert_deeplense(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    layout: str | None = None,
    allow_pickle: bool = False,
    seed: int = 0,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    split: str | None = None,
    val_folder_split: str | None = None,
    split_file: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    examples_per_shard: int | None = None,
    progress: bool = True,
) -> ConversionResult:
    """Convert a DeepLense `.npy` folder (or `.npz` file) to Parquet shards + a dataset card in `out_dir`.

    Args:
        src: the downloaded folder (see `LAYOUTS` for the folder structures), or an `.npz` file.
        out_dir: output dataset folder (`README.md`, `data/*.parquet`); must not be inside `src`.
        layout: a key of `LAYOUTS`; None detects it from the folder structure.
        allow_pickle: load object arrays (`[image, mass]` files) and the published split files of the
            real-lens SSL set. Unpickling runs code from the file: only for files you trust. Without it
            such files are skipped and reported (`ALLOW_PICKLE_WARNING` says this to the user).
        seed: seed of the split assignment and of the row order within each split.
        val_frac, test_frac: fractions of the training pool carved out (stratified by class) for
            the validation / test split when the layout has none; 0 carves nothing. Together at most 1:
            `val_frac=0, test_frac=1` makes the whole folder a test split.
        split: put every image into this one split (`"train"`, `"validation"` or `"test"`), whatever
            the layout's own folders say (e.g. `split="test"` for an official test folder).
        val_folder_split: the split a layout's `val/` folder becomes (`"validation"` or `"test"`);
            default per layout (`LayoutInfo.val_folder_split`): `test` for Common Test I, whose GSoC
            results are reported on `val/`.
        split_file: the real-lens SSL `indices.pkl` (default: `SRC/indices.pkl` or `SRC/input/indices.pkl`
            when present); the `train_indices_N.pkl` beside it become boolean columns `labelled_N`.
        class_names: class names for the `flat_array` and `stacked` layouts (default `class_0`, ...).
        examples_per_shard: rows per shard (default: about 128 MiB of float32 pixels).
        progress: show a progress bar over files.

    Returns:
        A `ConversionResult` (counts per split and class, the skipped files with reasons, and
        the summary text that is also printed and stored in the card).

    Raises:
        LayoutError: the folder matches no layout (the message lists the layouts), or a file of a
            stacked/npz layout is malformed (the message names the file and the field).
        ValueError: no file could be converted (the message holds the summary), or bad split arguments.
    """
    src, out_dir = Path(src).resolve(), Path(out_dir).resolve()
    if out_dir.is_relative_to(src):
        raise ValueError(f"out_dir {out_dir} must not be inside the source folder {src}")
    if val_folder_split not in (None, "validation", "test"):
        raise ValueError(f"val_folder_split must be 'validation' or 'test', got {val_folder_split!r}")
    layout = layout or detect_layout(src)
    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}. Known layouts:\n{_layouts_help()}")
    report: list[tuple[Path, str]] = []
    discovery = _discover(
        layout,
        src,
        report,
        class_names,
        allow_pickle,
        Path(split_file) if split_file else None,
        val_folder_split,
    )
    items, names = discovery.items, discovery.class_names
    if not items:
        raise ValueError(f"no .npy files found under {src} for layout {layout} ({LAYOUTS[layout].pattern})")
    shape = discovery.image_shape or _dataset_image_shape(layout, items, allow_pickle)
    if shape is None:
        hint = "" if allow_pickle else " (object arrays need --allow-pickle)"
        raise ValueError(f"no readable image under {src}{hint}")
    splits = _assign_splits(items, len(names), val_frac, test_frac, seed, split)
    float_columns, bool_columns = discovery.float_columns, discovery.bool_columns
    features = lensing_features(names, shape, float_columns, with_source_file=True, bool_columns=bool_columns)
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
    if split is not None:
        parameters["split"] = split
    if layout in ("model_iv", "common_test_i"):
        parameters["val_folder_split"] = val_folder_split or LAYOUTS[layout].val_folder_split
    state_dir = out_dir / _STATE_DIR
    fingerprint = hashlib.sha256(
        json.dumps(
            [parameters, {s: [(str(i.path), i.row, i.label, i.values) for i in m] for s, m in splits.items()}]
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

    read_image = _ImageReader(layout, allow_pickle, shape)
    bar = tqdm(total=len(items), desc=f"converting {src.name}", unit="file", disable=not progress)
    for split_name, members in splits.items():
        num_shards = max(1, -(-len(members) // per_shard))

        def make_shard(index: int, split_name=split_name, members=members) -> dict[str, Any]:
            chunk = members[index * per_shard : (index + 1) * per_shard]
            pixels = np.empty((len(chunk), *shape), np.float32)
            labels, sources, problems = [], [], []
            extra: dict[str, list] = {name: [] for name in (*float_columns, *bool_columns)}
            for item in chunk:
                name = _relative(_row_name(item.path, item.row), src)
                try:
                    image, mass = read_image(item)
                except SkipFile as error:
                    problems.append((name, str(error)))
                    continue
                finally:
                    bar.update(1)
                pixels[len(labels)] = image
                labels.append(item.label)
                sources.append(name)
                known = dict(item.values)
                if MASS_COLUMN in extra:
                    known[MASS_COLUMN] = mass
                for column, values in extra.items():
                    values.append(known.get(column, float("nan")))
            rows: dict[str, Any] = {
                "pixel_values": pixels[: len(labels)],
                "label": labels,
                "source_file": sources,
            }
            for column in float_columns:
                rows[column] = np.asarray(extra[column], np.float32)
            for column in bool_columns:
                rows[column] = [bool(value) for value in extra[column]]
            (state_dir / f"{split_name}-{index:05d}.json").write_text(json.dumps(problems))
            return rows

        done = len(list_shards(out_dir, split_name).get(split_name, []))
        bar.update(min(len(members), done * per_shard))
        write_split(out_dir, split_name, num_shards, make_shard, features, progress=False)
    bar.close()

    skipped = [(_relative(path, src), reason) for path, reason in report]
    for split_name, members in splits.items():
        for index in range(max(1, -(-len(members) // per_shard))):
            skipped += [
                tuple(p) for p in json.loads((state_dir / f"{split_name}-{index:05d}.json").read_text())
            ]
    counts = {name: info["per_class"] for name, info in dataset_statistics(out_dir)["splits"].items()}
    result = ConversionResult(out_dir, layout, list(names), shape, counts, skipped)
    result.summary = _summary(result, src)
    if not sum(sum(c.values()) for c in counts.values()):
        raise ValueError(f"no file of {src} could be converted:\n{result.summary}")
    columns_note = ""
    if MASS_COLUMN in float_columns:
        columns_note += f" `{MASS_COLUMN}`: log10 of the axion mass in eV (NaN for other classes)."
    other_floats = [c for c in float_columns if c != MASS_COLUMN]
    if other_floats:
        columns_note += f" Float columns from the source arrays: {', '.join(f'`{c}`' for c in other_floats)}."
    if bool_columns:
        columns_note += (
            f" Boolean columns {', '.join(f'`{c}`' for c in bool_columns)}: the row is in the published "
            "labelled training subset of that size."
        )
    write_dataset_card(
        out_dir,
        title=f"DeepLense {src.name} ({layout})",
        description=(
            f"Converted with `hf_deeplense.data.convert_deeplense` from the DeepLense folder `{src.name}` "
            f"(layout `{layout}`: {LAYOUTS[layout].pattern}). Each row keeps its `source_file`."
            + columns_note
        ),
        parameters=parameters,
        parameters_heading="Conversion parameters",
        summary=result.summary,
    )
    shutil.rmtree(state_dir, ignore_errors=True)
    return result
