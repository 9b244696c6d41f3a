"""Evaluating the encoder of a self-supervised run: kNN classification of its frozen embeddings and their t-SNE
map (`evaluation.evaluate_encoder`), at the end of a pre-training run (`--knn_eval true`) or on a saved checkpoint,
optionally with a linear probe (`finetune --init_from CHECKPOINT --linear_probe true`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from transformers import TrainingArguments

from ..evaluation import evaluate_encoder
from ..evaluation.report import SplitReport
from .callbacks import json_safe
from .data import DataArguments, load_splits
from .finetune import finetune

__all__ = ["EncoderEvalArguments", "check_knn_eval", "evaluate_pretrained", "knn_eval_of_run"]


@dataclass
class EncoderEvalArguments:
    knn_eval: bool = field(
        default=False,
        metadata={
            "help": "At the end of the run, classify the knn_split images by a weighted kNN vote (DINO's protocol) "
            "of the frozen encoder's embeddings, the train split as memory bank: knn_<split>_* metrics in "
            "metrics.json and a t-SNE map in plots/. Needs --dataset."
        },
    )
    knn_k: int = field(default=20, metadata={"help": "Neighbours of the kNN vote."})
    knn_temperature: float = field(default=0.07, metadata={"help": "Temperature of the kNN vote weights."})
    knn_split: str | None = field(
        default=None,
        metadata={"help": "Split the kNN classifies; default: the test split (else the eval split)."},
    )
    knn_plot: bool = field(default=True, metadata={"help": "Draw the t-SNE map of the knn_split embeddings."})


def check_knn_eval(knn_args: EncoderEvalArguments, data_args: DataArguments) -> None:
    """Before training: a kNN evaluation needs labelled splits of a dataset (not a simulated stream)."""
    if knn_args.knn_eval and data_args.dataset is None:
        raise ValueError(
            "--knn_eval needs --dataset (a memory bank of labelled training images), not --simulate"
        )


def knn_eval_of_run(
    model: nn.Module,
    processor: Any,
    knn_args: EncoderEvalArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
) -> SplitReport:
    """The kNN evaluation of a run's model (an empty report when `knn_eval` is off), on the run's splits
    (`load_splits`: classes and sample limits applied) with its image processor; plots in `output_dir/plots/`."""
    if not knn_args.knn_eval:
        return SplitReport(metrics={})
    splits = load_splits(data_args, seed=training_args.seed)
    split = knn_args.knn_split or (
        data_args.test_split if data_args.test_split in splits else data_args.eval_split
    )
    return evaluate_encoder(
        model,
        splits,
        processor=processor,
        train_split=data_args.train_split,
        eval_split=split,
        k=knn_args.knn_k,
        temperature=knn_args.knn_temperature,
        output_dir=training_args.output_dir,
        plot=knn_args.knn_plot,
        batch_size=training_args.per_device_eval_batch_size,
        seed=training_args.seed,
        progress=not training_args.disable_tqdm,
    )


def evaluate_pretrained(
    checkpoint: str | os.PathLike,
    dataset: str | os.PathLike | Mapping,
    output_dir: str | os.PathLike,
    *,
    linear_probe_args: Sequence[str] | None = None,
    **knn_kwargs: Any,
) -> dict[str, float]:
    """kNN evaluation (`evaluation.evaluate_encoder`) of a saved pre-trained model, optionally followed by a
    linear probe, and `output_dir/metrics.json`.

    Args:
        checkpoint: the pre-trained model (folder or Hub id) with its image processor.
        dataset: a dataset folder or Hub id (or, without a linear probe, a mapping of splits).
        output_dir: receives `metrics.json`, `plots/` and the linear probe's run in `linear_probe/`.
        linear_probe_args: given (e.g. `["--config", "recipes/configs/finetune_model_ii.yaml"]`), also run
            `finetune` with `--init_from checkpoint --linear_probe true --dataset dataset` and these arguments;
            its metrics join with the prefix `linear_probe_` (`linear_probe_test_auc_macro`, ...).
        **knn_kwargs: arguments of `evaluate_encoder` (`eval_split`, `k`, `temperature`, `device`, ...).
    """
    output_dir = Path(output_dir)
    report = evaluate_encoder(checkpoint, dataset, output_dir=output_dir, **knn_kwargs)
    metrics = dict(report.metrics)
    if linear_probe_args is not None:
        probe = finetune(
            [
                *linear_probe_args,
                *("--init_from", str(checkpoint), "--linear_probe", "true", "--dataset", str(dataset)),
                *("--output_dir", str(output_dir / "linear_probe")),
            ]
        )
        metrics.update({f"linear_probe_{key}": value for key, value in probe.items()})
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2, sort_keys=True))
    return metrics
