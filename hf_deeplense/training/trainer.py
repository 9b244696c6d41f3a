"""`LensingTrainer`: a `transformers.Trainer` that reads `datasets.Dataset` batches with one vectorised gather
(`BatchedLensingDataset`) and evaluates with a collator of its own (no training augmentation); `make_trainer`, the
trainer of a recipe run; the start and end of a run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from accelerate import PartialState
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import enable_full_determinism

from ..data import BatchedLensingDataset, LensingCollator, with_row_index
from .artifacts import take_push_to_hub
from .callbacks import EvalHistoryJsonCallback
from .data import DataArguments, on_training_device

__all__ = ["LensingTrainer", "end_run", "make_trainer", "predict_arrays", "start_run"]


class LensingTrainer(Trainer):
    """`Trainer` with a fast batch reader and a second collator for evaluation and prediction.

    A `datasets.Dataset` given as a train, evaluation or test set is read through `BatchedLensingDataset`: the
    DataLoader gathers each (shuffled) batch with numpy fancy indexing on the memory-mapped Arrow columns and
    hands the collator a dict of columns, instead of converting row by row (bench/bench_data.py: ~20x faster).
    Same rows, same order, same values as the stock path (its format is ignored: columns come out as numpy).
    Needs `remove_unused_columns=False` (the recipes' default); with `True` the stock path is used.

    Args:
        eval_data_collator: collator of the evaluation and test dataloaders (e.g. without augmentation);
            default: `data_collator`.
        *args, **kwargs: those of `transformers.Trainer`.
    """

    def __init__(self, *args: Any, eval_data_collator: Callable | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator or self.data_collator
        self.train_dataset = self._batched(self.train_dataset)
        self._evaluation_loaders: dict[int, DataLoader] = {}

    def _batched(self, dataset):
        if isinstance(dataset, Dataset) and not self.args.remove_unused_columns:
            return BatchedLensingDataset(dataset)
        return dataset

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """The stock estimate (6 x main-input elements x non-embedding parameters, logged as `total_flos`) with
        the parameter count cached per model: the stock method recounts every parameter at every step
        (~0.7 ms a step on a CPU, comparable to a small model's whole GPU step)."""
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(self.model, "num_parameters"):
            return 0
        cached = getattr(self, "_parameter_count", None)
        if cached is None or cached[0] is not self.model:
            cached = self._parameter_count = (self.model, self.model.num_parameters(exclude_embeddings=True))
        return 6 * inputs[main_input].numel() * cached[1]

    def get_eval_dataloader(self, eval_dataset=None) -> DataLoader:
        if isinstance(eval_dataset, str):  # a key of a dict of evaluation sets
            eval_dataset = self.eval_dataset[eval_dataset]
        return self._evaluation_loader(self.eval_dataset if eval_dataset is None else eval_dataset)

    def get_test_dataloader(self, test_dataset) -> DataLoader:
        return self._evaluation_loader(test_dataset)

    def _evaluation_loader(self, dataset) -> DataLoader:
        """The stock evaluation DataLoader (in order, `eval_batch_size`, the `dataloader_*` arguments, prepared by
        accelerate: split over processes) with `eval_data_collator`; kept per dataset with persistent workers,
        as the stock one is (workers are not started again at every evaluation)."""
        if id(dataset) in self._evaluation_loaders:
            return self._evaluation_loaders[id(dataset)]
        args = self.args
        loader = self.accelerator.prepare(
            DataLoader(
                self._batched(dataset),
                batch_size=args.eval_batch_size,
                collate_fn=self.eval_data_collator,
                num_workers=args.dataloader_num_workers,
                pin_memory=args.dataloader_pin_memory,
                persistent_workers=args.dataloader_persistent_workers,
                multiprocessing_context=args.dataloader_multiprocessing_context,
                prefetch_factor=args.dataloader_prefetch_factor,
                in_order=args.dataloader_in_order,
                drop_last=args.dataloader_drop_last,
            )
        )
        if args.dataloader_persistent_workers:
            self._evaluation_loaders[id(dataset)] = loader
        return loader


def make_trainer(
    model,
    training_args: TrainingArguments,
    data_args: DataArguments,
    image_processor,
    train,
    eval_set,
    *,
    label_column: str | None = None,
    views: dict[str, Any] | None = None,
    compute_metrics: Callable | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> LensingTrainer:
    """The `LensingTrainer` of a recipe run, which writes every evaluation to `eval_history.json`.

    Training batches are `LensingCollator`s of `label_column` with the run's augmentation when `data_args.augment`
    is on (`DataArguments.lensing_augment`), seeded by `training_args.seed` and each row's index; evaluation
    batches are not augmented. `views`, the `augment` / `two_views` / `multi_crop` arguments of a
    `LensingCollator`, give a self-supervised method's views instead, for the training and the held-out evaluation
    batches alike.

    Every batch is processed by `image_processor`, or with `data_args.data_on_device` the splits' images once
    (`on_training_device`), and batches are only indexed and augmented on the training device.
    """
    # with data_on_device the DeviceLensingDataset processed every image once
    batch_processor = None if data_args.data_on_device else image_processor
    if views is None:
        augment = data_args.lensing_augment() if data_args.augment else None
        collator = LensingCollator(batch_processor, label_column, augment, seed=training_args.seed)
        eval_collator = LensingCollator(batch_processor, label_column)
    else:
        collator = eval_collator = LensingCollator(
            batch_processor, label_column, seed=training_args.seed, **views
        )
        eval_set = with_row_index(eval_set)  # held-out views drawn as the training views are
    return LensingTrainer(
        model=model,
        args=training_args,
        train_dataset=on_training_device(with_row_index(train), data_args, training_args, image_processor),
        eval_dataset=on_training_device(eval_set, data_args, training_args, image_processor),
        data_collator=collator,
        eval_data_collator=eval_collator,
        compute_metrics=compute_metrics,
        callbacks=[EvalHistoryJsonCallback(), *callbacks],
    )


def predict_arrays(
    trainer: Trainer, dataset, metric_key_prefix: str = "test"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """`trainer.predict` gathered over processes: `(predictions, labels, metrics)` as numpy arrays
    (the first model output when the model returns several)."""
    output = trainer.predict(dataset, metric_key_prefix=metric_key_prefix)
    predictions = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    labels = output.label_ids[0] if isinstance(output.label_ids, tuple) else output.label_ids
    return np.asarray(predictions), np.asarray(labels), dict(output.metrics)


def start_run(training_args: TrainingArguments) -> str | None:
    """The start of every run: logging; seeds for Python, numpy and torch before the model is built, as the
    Trainer seeds once it exists (`full_determinism` also makes torch's kernels deterministic); and the Hub repo
    the run is published to at its end (`take_push_to_hub`), or None."""
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING)
    if training_args.full_determinism:
        enable_full_determinism(training_args.seed)
    else:
        set_seed(training_args.seed)
    return take_push_to_hub(training_args)


def end_run() -> None:
    """Destroy the distributed process group: call once, at the very end of a recipe script (not between the
    runs of one process, e.g. a study's, which share the group).

    A rank that exits with its gloo group still up can abort at interpreter shutdown ("terminate called without
    an active exception", seen in loaded 2-process CPU runs). A no-op without a process group.
    """
    PartialState().destroy_process_group()
