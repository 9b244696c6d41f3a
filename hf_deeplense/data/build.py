"""Build a simulated lensing dataset on disk (Parquet shards + dataset card), resumably.

Layout (docs/ARCHITECTURE.md): ``DIR/data/{split}-{i:05d}-of-{n:05d}.parquet``, ``DIR/README.md``,
``DIR/sample_grid.png``. Every class gets ``n_per_class`` images in all splits together, image indices
``0 .. n_per_class - 1`` of the class cut into train / validation / test in that order; rows of a split
interleave the classes (row ``r`` is class ``r % n_classes``). A shard is a pure function of its
index, so a killed build resumes where it stopped and two builds with one seed write the same bytes.

For the ``lens_finding`` preset the split holds ``n_per_class * 2`` images of one stream whose
labels come from the simulator (``lens_fraction`` of them lenses), with the meta features as columns.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..simulation import PRESETS, SimulationConfig, get_preset, simulate_batch, simulate_lens_finding_batch
from .card import write_dataset_card
from .writer import SPLITS, lensing_features, num_shards_for, shard_bounds, write_split

logger = logging.getLogger(__name__)

SUBSTRUCTURE_COLUMNS = (
    "theta_e",
    "theta_e_host",
    "q",
    "phi",
    "gamma1",
    "gamma2",
    "source_x",
    "source_y",
    "source_r_eff",
    "source_n",
    "source_q",
    "source_phi",
    "source_magnitude",
    "exposure_time",
    "log10_m_a",
    "subhalo_mass_fraction",
)
LENS_FINDING_COLUMNS = (
    "einstein_radius",
    "einstein_area",
    "source_flux_r",
    "source_mag_r",
    "magnification",
    "n_images",
    "source_pixels_above_noise",
    "galaxy_kind",
)
SAMPLE_GRID = "sample_grid.png"


def split_counts(total: int, fractions: Sequence[float]) -> dict[str, int]:
    """Images per split: ``round`` of train and validation, the rest to test."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"split fractions (train, validation, test) must be >= 0 and sum to 1, got {tuple(fractions)}"
        )
    train = int(round(total * fractions[0]))
    validation = min(total - train, int(round(total * fractions[1])))
    return {"train": train, "validation": validation, "test": total - train - validation}


def _is_lens_finding(cfg: SimulationConfig) -> bool:
    return "lens" in cfg.classes


class _ShardMaker:
    """``make_shard(i)`` of one split: simulates the rows of shard ``i`` in batches."""

    def __init__(self, cfg, split_start, split_size, num_shards, seed, device, batch_size, lens_fraction):
        self.cfg, self.start, self.size, self.num_shards = cfg, split_start, split_size, num_shards
        self.seed, self.device, self.batch_size, self.lens_fraction = seed, device, batch_size, lens_fraction

    def __call__(self, shard: int) -> dict[str, Any]:
        first, stop = shard_bounds(self.size, self.num_shards, shard)
        parts = [self._rows(r, min(r + self.batch_size, stop)) for r in range(first, stop, self.batch_size)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}

    def _rows(self, first: int, stop: int) -> dict[str, np.ndarray]:
        cfg = self.cfg
        rows = np.arange(first, stop)
        if _is_lens_finding(cfg):
            out = simulate_lens_finding_batch(
                cfg,
                (self.start + rows).tolist(),
                seed=self.seed,
                lens_fraction=self.lens_fraction,
                device=self.device,
            )
            columns = {"pixel_values": out["images"].cpu().numpy(), "label": out["labels"].cpu().numpy()}
            for name in LENS_FINDING_COLUMNS:
                columns[name] = out["meta"][name].cpu().numpy()
            return columns
        n_classes = len(cfg.classes)
        labels = rows % n_classes
        images = np.empty((len(rows), cfg.num_channels, cfg.image_size, cfg.image_size), dtype=np.float32)
        params = {name: np.empty(len(rows), dtype=np.float32) for name in SUBSTRUCTURE_COLUMNS}
        for label, class_name in enumerate(cfg.classes):
            where = np.nonzero(labels == label)[0]
            if len(where) == 0:
                continue
            indices = (self.start + rows[where] // n_classes).tolist()
            out = simulate_batch(cfg, class_name, indices, seed=self.seed, device=self.device)
            images[where] = out["images"].cpu().numpy()
            for name in SUBSTRUCTURE_COLUMNS:
                params[name][where] = out["params"][name].cpu().numpy()
        return {"pixel_values": images, "label": labels.astype(np.int64), **params}


def _sample_grid(
    cfg: SimulationConfig, path: Path, seed: int, lens_fraction: float | None, per_class: int = 6
) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if _is_lens_finding(cfg):
        out = simulate_lens_finding_batch(cfg, range(400), seed=seed, lens_fraction=lens_fraction)
        rows = [
            (name, out["images"][(out["labels"] == label).nonzero().squeeze(1)[:per_class]])
            for label, name in enumerate(cfg.classes)
        ]
    else:
        rows = [
            (name, simulate_batch(cfg, name, range(per_class), seed=seed)["images"]) for name in cfg.classes
        ]
    figure, axes = plt.subplots(
        len(rows), per_class, figsize=(1.6 * per_class, 1.7 * len(rows)), squeeze=False
    )
    for row, (name, images) in enumerate(rows):
        for column in range(per_class):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column < len(images):
                image = images[column]
                if image.shape[0] >= 3:  # bands g, r, i -> blue, green, red (asinh stretch)
                    rgb = torch.arcsinh(image[:3].flip(0).permute(1, 2, 0).clamp(min=0) / 0.3)
                    axis.imshow((rgb / rgb.amax().clamp(min=1e-12)).numpy())
                else:
                    axis.imshow(image[0].numpy(), cmap="magma")
            if column == 0:
                axis.set_ylabel(name, fontsize=9)
    figure.suptitle(f"{cfg.name}: first images of the train split (seed {seed})", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(figure)


def _read_split(out_dir: Path, split: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` images and labels of a written split (first shards first)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .card import read_features
    from .writer import list_shards

    images, labels, count = [], [], 0
    for path in list_shards(out_dir, split).get(split, []):
        if count >= limit:
            break
        table = pq.read_table(path, columns=["pixel_values", "label"]).slice(0, limit - count)
        column = table["pixel_values"].combine_chunks()
        if isinstance(column, pa.ExtensionArray):  # datasets' Array3D: nested lists underneath
            column = column.storage
        while pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type):
            column = pc.list_flatten(column)
        shape = (len(table), *read_features(path)["pixel_values"].shape)
        images.append(column.to_numpy(zero_copy_only=False).reshape(shape))
        labels.append(table["label"].to_numpy())
        count += len(table)
    if not images:  # an empty split (e.g. an unlabelled pre-training pool without a test split)
        return np.zeros((0,)), np.zeros((0,), dtype=np.int64)
    return np.concatenate(images), np.concatenate(labels)


def radial_baseline_section(out_dir: Path, class_names: Sequence[str], limit: int = 3000) -> tuple[str, dict]:
    """Markdown section and metrics of the radial-profile-only classifier (train -> test split)."""
    from ..evaluation.baselines import radial_profile_baseline

    train_images, train_labels = _read_split(out_dir, "train", limit)
    test_images, test_labels = _read_split(out_dir, "test", limit)
    if len(np.unique(train_labels)) < 2 or len(np.unique(test_labels)) < 2:
        return "Not computed: the train or test split is empty or holds a single class.", {}
    metrics = radial_profile_baseline(
        train_images, train_labels, test_images, test_labels, class_names=list(class_names)
    )
    lines = [
        "A logistic regression that sees only each image's azimuthally averaged profile (16 radial bins per",
        "channel), trained on the train split and scored on the test split (at most "
        f"{limit} images each). It measures how much of the task a ring-size / radial shortcut solves:",
        "a macro AUC near 0.5 means the classes differ in non-radial structure only.",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value:.4f} |" for name, value in metrics.items()]
    return "\n".join(lines), metrics


REPLICA_NOTE = (
    "This is a **DeepLense-compatible replica**: it reproduces what DeepLenseSim's code produced for the "
    "public DeepLense files, so published DeepLense figures apply to it. Unlike the physical preset `{physical}`, "
    "the macro lens and the source shape are the same for every image, CDM is exactly 25 point masses with mass "
    "slope -0.9, the vortex is 100 point masses, nothing compensates the added substructure mass (the Einstein "
    "ring grows with it, so the ring's size alone separates the classes well: see the radial-profile baseline "
    "below) and the noise is that code's ({noise})."
)
PHYSICAL_NOTE = (
    "This is a **physical preset**: the macro lens (Einstein radius, ellipticity, orientation, shear) and the "
    "source vary per image, substructure mass is compensated so that the ring's size does not give the class "
    "away, noise follows the instrument{slope}. It asks whether a model sees substructure itself. "
    "The DeepLense-compatible replica of the public files is `{replica}`, where published figures apply."
)


def preset_note(cfg: SimulationConfig) -> str:
    """A paragraph for the dataset card: which family the preset belongs to and how it differs from the other."""
    name = cfg.name
    if name.startswith("deeplense_"):
        noise = "none" if not cfg.add_noise else "Poisson counts" if cfg.noise_model != "simapi" else "SimAPI"
        return REPLICA_NOTE.format(physical=name.removeprefix("deeplense_"), noise=noise)
    if f"deeplense_{name}" in PRESETS:
        slope = f" and the CDM mass function has slope {cfg.subhalo_mass_slope:g}"
        return PHYSICAL_NOTE.format(slope=slope, replica=f"deeplense_{name}")
    return ""


def build_simulated_dataset(
    out_dir: str | os.PathLike,
    preset: str = "model_ii",
    n_per_class: int = 1000,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
    image_size: int | None = None,
    classes: Sequence[str] | None = None,
    lens_fraction: float | None = None,
    overrides: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    shard_size: int = 1000,
    write_card: bool = True,
    progress: bool = True,
    push_to_hub: str | None = None,
) -> Path:
    """Simulate a dataset with a preset and write it in the hf_deeplense on-disk format.

    Args:
        out_dir: dataset folder (created; existing finished shards of the same build are kept).
        preset: simulation preset (a name of `hf_deeplense.simulation.PRESETS`, e.g. ``deeplense_model_ii``
            or ``model_ii``).
        n_per_class: images per class over all splits together (lens finding: ``n_per_class * 2`` images).
        split_fractions: train, validation, test fractions.
        seed: data-set seed; image ``i`` of a class depends only on ``(preset, seed, class, i)``.
        image_size: override of the preset's image size; the pixel scale follows, so that the field of
            view stays the preset's (unless ``overrides`` names ``pixel_scale``).
        classes: a subset of the preset's classes (label order follows this list).
        lens_fraction: lens fraction of a ``lens_finding`` build (default: the preset's).
        overrides: more ``SimulationConfig`` fields.
        device: simulation device.
        batch_size: images simulated together.
        shard_size: at most this many images per Parquet shard.
        write_card: write README.md (card with parameters, counts, sample grid and radial baseline).
        progress: tqdm progress bars.
        push_to_hub: publish the folder to this dataset repo id when done.

    Returns:
        ``out_dir`` as a Path.
    """
    overrides = dict(overrides or {})
    if image_size is not None:
        overrides["image_size"] = image_size
        if "pixel_scale" not in overrides:
            # keep the preset's field of view (Model I at 64 px: 0.117"/px, not a 3.2" field)
            native = get_preset(preset)
            overrides["pixel_scale"] = native.pixel_scale * native.image_size / image_size
    if classes is not None:
        overrides["classes"] = tuple(classes)
    cfg = get_preset(preset, **overrides)
    if lens_fraction is not None:
        cfg = dataclasses.replace(cfg, lens_fraction=float(lens_fraction))
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lens_finding = _is_lens_finding(cfg)
    per_stream = n_per_class * (len(cfg.classes) if lens_finding else 1)
    counts = split_counts(per_stream, split_fractions)
    columns = LENS_FINDING_COLUMNS if lens_finding else SUBSTRUCTURE_COLUMNS
    features = lensing_features(cfg.classes, (cfg.num_channels, cfg.image_size, cfg.image_size), columns)
    start = 0
    for split in SPLITS:
        size = counts[split] * (1 if lens_finding else len(cfg.classes))  # rows of this split
        if counts[split] == 0:
            continue
        num_shards = num_shards_for(size, shard_size)
        maker = _ShardMaker(cfg, start, size, num_shards, seed, device, batch_size, cfg.lens_fraction)
        write_split(
            out_dir, split, num_shards, maker, features, progress=progress, desc=f"{cfg.name} {split}"
        )
        start += counts[split]
    if write_card:
        _sample_grid(cfg, out_dir / SAMPLE_GRID, seed, cfg.lens_fraction)
        baseline_text, baseline = radial_baseline_section(out_dir, cfg.classes)
        parameters = {
            "preset": preset,
            "seed": seed,
            "n_per_class": n_per_class,
            "split_fractions": list(split_fractions),
            "images_per_split_and_class" if not lens_finding else "images_per_split": counts,
            "hf_deeplense_version": __version__,
            "simulation_config": cfg.to_dict(),
        }
        units = "counts" if cfg.add_noise and cfg.noise_model == "deeplense_model_i" else "e-/s"
        description = (
            f"Strong-lensing images simulated with `hf_deeplense.simulation` (preset `{cfg.name}`, "
            f'{cfg.image_size}x{cfg.image_size} px at {cfg.pixel_scale}"/px, bands {list(cfg.bands)}; '
            f"values in {units} per pixel). Rebuild: `python dataset_scripts/build_sim.py "
            f"--preset {preset} --n-per-class {n_per_class} --seed {seed} --out DIR`. "
            "Image i of a class depends only on (preset, seed, class, i)."
        )
        note = preset_note(cfg)
        if note:
            description += "\n\n" + note
        write_dataset_card(
            out_dir,
            title=f"DeepLense simulated lenses: {cfg.name}",
            description=description,
            parameters=parameters,
            images=[(SAMPLE_GRID, f"{cfg.name} samples")],
            extra_sections={"Radial-profile baseline (shortcut check)": baseline_text},
        )
        logger.info("radial-profile baseline: %s", baseline)
    if push_to_hub:
        from .hub import publish_dataset

        publish_dataset(out_dir, push_to_hub)
    return out_dir
