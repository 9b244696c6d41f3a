"""Data for recipes: the shared `DataArguments`, loading splits (a built folder, a Hub/local repo id, or
on-the-fly simulation), subsetting, and the run's image processor.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from datasets import DatasetDict

from ..data import (
    DeviceLensingDataset,
    LensingAugment,
    SimulatedLensDataset,
    check_split_pixels,
    load_lensing_dataset,
)
from ..data.selection import keep_classes, stratified_head
from ..image_processing_lens import LensImageProcessor
from ..simulation import get_preset
from .arguments import as_dict

__all__ = [
    "DataArguments",
    "load_splits",
    "make_image_processor",
    "on_training_device",
    "pretraining_data",
]


@dataclass
class DataArguments:
    """Where the images come from and how they are prepared (shared by every recipe)."""

    dataset: str | None = field(
        default=None,
        metadata={"help": "A built dataset folder or a Hub dataset repo id (load_lensing_dataset)."},
    )
    simulate: str | None = field(
        default=None,
        metadata={"help": "Pre-training only: simulate images on the fly with this preset (e.g. model_ii)."},
    )
    simulation_overrides: dict | str | None = field(
        default=None, metadata={"help": "SimulationConfig fields overriding the preset (mapping or JSON)."}
    )
    simulation_seed: int = field(default=0, metadata={"help": "Seed of the simulated training stream."})
    num_simulated_eval: int = field(
        default=256, metadata={"help": "Simulated evaluation images (another seed)."}
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str = field(
        default="validation", metadata={"help": "Split for evaluation and model selection."}
    )
    test_split: str = field(default="test", metadata={"help": "Split of the final report."})
    classes: list[str] | None = field(
        default=None, metadata={"help": "Keep only these classes (by name); default: all."}
    )
    image_size: int | None = field(
        default=None, metadata={"help": "Resize images to this size; default: the dataset's size."}
    )
    normalization: str = field(
        default="minmax", metadata={"help": "LensImageProcessor normalisation: minmax, mean_std or none."}
    )
    augment: bool = field(default=True, metadata={"help": "D4 rotations/flips of training images."})
    max_shift: int = field(
        default=0, metadata={"help": "Random periodic shifts of training images, in pixels."}
    )
    noise_std: float = field(default=0.0, metadata={"help": "Gaussian noise added to training images."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Stratified subset of the training split (quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Stratified subset of the eval split."}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Stratified subset of the test split."}
    )
    data_on_device: bool = field(
        default=False,
        metadata={
            "help": "Process the training and evaluation splits' images once and keep them as one tensor on "
            "the training device (DeviceLensingDataset): each batch is an index into it, augmented there. "
            "Needs dataloader_num_workers 0 and dataloader_pin_memory false; same batches as the default path."
        },
    )

    def __post_init__(self):
        if (self.dataset is None) == (self.simulate is None):
            raise ValueError(
                "give exactly one data source: --dataset (folder or repo id) or --simulate (preset)"
            )
        if self.data_on_device and self.simulate:
            raise ValueError(
                "data_on_device needs a --dataset (an on-the-fly --simulate stream has no split)"
            )
        self.simulation_overrides = as_dict(self.simulation_overrides)

    def lensing_augment(self) -> LensingAugment:
        """The run's augmentation (D4, `max_shift`, `noise_std`): of the training batches when `augment` is on, and
        of a self-supervised method's views whatever `augment` says."""
        return LensingAugment(max_shift=self.max_shift, noise_std=self.noise_std)


def load_splits(data_args: DataArguments, seed: int = 0) -> DatasetDict:
    """The train/eval/test splits of `data_args.dataset`, class-filtered and truncated, in numpy format."""
    datasets = load_lensing_dataset(data_args.dataset)
    limits = {
        data_args.train_split: data_args.max_train_samples,
        data_args.eval_split: data_args.max_eval_samples,
        data_args.test_split: data_args.max_test_samples,
    }
    splits = {}
    for split, limit in limits.items():
        if split not in datasets:
            continue
        dataset = datasets[split]
        if data_args.classes:
            dataset = keep_classes(dataset, data_args.classes)
        splits[split] = stratified_head(dataset, limit, seed).with_format("numpy")
    if data_args.train_split not in splits:
        raise ValueError(
            f"{data_args.dataset} has no {data_args.train_split!r} split (splits: {list(datasets)})"
        )
    train_shape = splits[data_args.train_split].features["pixel_values"].shape
    for split, dataset in splits.items():
        check_split_pixels(dataset, where=f"{data_args.dataset} [{split}]", image_shape=train_shape)
    return DatasetDict(splits)


class PretrainingData(NamedTuple):
    """What a self-supervised recipe trains on: `train` (a split or an endless simulated stream), `eval_set`
    (None without an evaluation split), the image shape and `source`, a markdown phrase for the model card."""

    train: Any
    eval_set: Any
    num_channels: int
    image_size: int
    source: str


def pretraining_data(data_args: DataArguments, seed: int = 0) -> PretrainingData:
    """The training and evaluation images of a pre-training recipe: simulated on the fly (`simulate`) or the
    splits of `dataset` (`load_splits`)."""
    if data_args.simulate:  # an endless training stream and a fixed evaluation set (seed + 1) of `classes`
        config = get_preset(data_args.simulate, **data_args.simulation_overrides)
        train = SimulatedLensDataset(config, seed=data_args.simulation_seed)
        # The eval rows use one shard whatever the number of processes: every rank sees the same set.
        evaluation = SimulatedLensDataset(config, seed=data_args.simulation_seed + 1, rank=0, world_size=1)
        keep = {config.classes.index(name) for name in data_args.classes or config.classes}
        rows = (row for row in evaluation if row["label"] in keep)
        eval_set = list(itertools.islice(rows, data_args.num_simulated_eval))
        source = f"images simulated on the fly (preset `{data_args.simulate}`)"
        return PretrainingData(train, eval_set, config.num_channels, config.image_size, source)
    splits = load_splits(data_args, seed=seed)
    train = splits[data_args.train_split]
    num_channels, image_size, _ = train.features["pixel_values"].shape
    return PretrainingData(
        train, splits.get(data_args.eval_split), num_channels, image_size, f"`{data_args.dataset}`"
    )


def make_image_processor(data_args: DataArguments, num_channels: int, image_size: int) -> LensImageProcessor:
    """The `LensImageProcessor` of the run (saved next to the weights). It always resizes to the model's
    size (an identity for images of that size), so the saved processor accepts images of any size."""
    return LensImageProcessor(
        num_channels=num_channels,
        size=data_args.image_size or image_size,
        do_resize=True,
        normalization=data_args.normalization,
    )


def on_training_device(dataset, data_args: DataArguments, training_args, image_processor: LensImageProcessor):
    """What the Trainer reads of `dataset`: the dataset itself, or with `data_args.data_on_device` a
    `DeviceLensingDataset` of it (processed once with `image_processor`, on `training_args.device`), whose batches
    are only indexed (`make_trainer`'s collators then process nothing). None stays None."""
    if dataset is None or not data_args.data_on_device:
        return dataset
    if training_args.dataloader_num_workers or training_args.dataloader_pin_memory:
        raise ValueError(
            "data_on_device keeps the images on the training device: set dataloader_num_workers 0 and "
            f"dataloader_pin_memory false (got {training_args.dataloader_num_workers} and "
            f"{training_args.dataloader_pin_memory})"
        )
    return DeviceLensingDataset(dataset, image_processor, device=training_args.device)
