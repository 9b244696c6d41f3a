"""`evaluate_checkpoint`: any saved model on one split of any lensing dataset, as `recipes/evaluate.py`.

The task follows the checkpoint: a classifier gets accuracy, ROC AUC (macro, per class), ROC curves and a confusion
matrix; a regressor its mean absolute error, RMSE, R² and a scatter plot (rows with a finite target only); an MAE
anomaly-score AUCs of `normal_class` against the other classes; `task="knn"` (any pre-trained encoder: MAE, SimCLR,
DINO, BYOL, SimSiam or a classifier's backbone) a weighted kNN classification of the frozen embeddings (k=20, T=0.07,
the train split as memory bank, `hf_deeplense.evaluation.evaluate_encoder`) and their t-SNE map. `cam` draws Grad-CAM (CNN, hybrid) or
attention-rollout (ViT) overlays of images spread over the split. Writes `metrics.json` and `plots/` to
`output_dir`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoImageProcessor

from ..data import LensingCollator
from ..data.selection import class_names_of, finite_target_rows
from ..evaluation.cam import write_cam_overlays
from ..evaluation.encoder import evaluate_encoder
from ..evaluation.inference import anomaly_scores, predict_dataset
from ..evaluation.reconstruction import write_mae_reconstructions
from ..evaluation.report import json_safe, report_anomaly, report_predictions
from ..models import TASK_AUTO_CLASSES, task_of
from .arguments import parse_recipe_args
from .data import DataArguments, load_splits

__all__ = ["EvaluateArguments", "evaluate_checkpoint", "infer_task"]


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "Checkpoint folder or Hub model id."})
    output_dir: str = field(metadata={"help": "Where metrics.json and plots/ are written."})
    task: str | None = field(
        default=None,
        metadata={"help": "classification, regression, anomaly or knn; default: from the checkpoint."},
    )
    target_column: str = field(default="log10_m_a", metadata={"help": "Regression target column."})
    normal_class: str = field(
        default="no_sub", metadata={"help": "Anomaly task: the class the MAE was trained on."}
    )
    knn_k: int = field(default=20, metadata={"help": "knn task: neighbours of the vote."})
    knn_temperature: float = field(
        default=0.07, metadata={"help": "knn task: temperature of the vote weights."}
    )
    batch_size: int = field(default=64, metadata={"help": "Images per forward pass."})
    cam: bool = field(default=False, metadata={"help": "Write class-activation-map overlays."})
    num_cam_images: int = field(default=8, metadata={"help": "Images in the CAM figure."})
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu", metadata={"help": "Device."})


def infer_task(model: str) -> str:
    """The task of a checkpoint from its `architectures` (a pre-training model: the MAE of an anomaly run)."""
    config = AutoConfig.from_pretrained(model)
    if (task := task_of(config)) is None:
        raise ValueError(
            f"cannot tell the task of {model} from its architectures {config.architectures}: pass --task"
        )
    return "anomaly" if task == "pretraining" else task


def evaluate_checkpoint(args: Sequence[str] | None = None) -> dict[str, float]:
    """Evaluate a checkpoint on the test split of a dataset. `args`: the command line of `EvaluateArguments` and
    `DataArguments` (default `sys.argv[1:]`). Returns the metrics (`<test_split>_*`); `metrics.json` also holds
    the model, dataset, task, plots and confusion matrix."""
    eval_args, data_args = parse_recipe_args((EvaluateArguments, DataArguments), args)
    task = eval_args.task or infer_task(eval_args.model)
    if task == "knn":
        report = evaluate_encoder(
            eval_args.model,
            load_splits(data_args),
            train_split=data_args.train_split,
            eval_split=data_args.test_split,
            k=eval_args.knn_k,
            temperature=eval_args.knn_temperature,
            output_dir=eval_args.output_dir,
            batch_size=eval_args.batch_size,
            device=eval_args.device,
        )
        return _write(eval_args, data_args, task, report)
    auto_class = TASK_AUTO_CLASSES["pretraining" if task == "anomaly" else task]
    model = auto_class.from_pretrained(eval_args.model).to(eval_args.device).eval()
    processor = AutoImageProcessor.from_pretrained(eval_args.model)
    processor.do_resize = True  # the dataset's images may have another size than the model's

    dataset = load_splits(data_args)[data_args.test_split]
    class_names = class_names_of(dataset)
    if task == "regression":
        dataset = finite_target_rows(dataset, eval_args.target_column)
    collator = LensingCollator(processor, eval_args.target_column if task == "regression" else "label")
    split, output_dir = data_args.test_split, Path(eval_args.output_dir)

    if task == "anomaly":
        scores, labels = anomaly_scores(model, dataset, collator, eval_args.batch_size)
        report = report_anomaly(scores, labels, class_names, eval_args.normal_class, output_dir, split)
        first = collator([dataset[i] for i in range(min(6, len(dataset)))])["pixel_values"]
        report.plots["reconstructions"] = write_mae_reconstructions(
            model, first, output_dir / "plots" / f"mae_reconstructions_{split}.png"
        )
    else:
        if task == "classification" and model.config.id2label != dict(enumerate(class_names)):
            names = [model.config.id2label[i] for i in sorted(model.config.id2label)]
            raise ValueError(f"{eval_args.model} predicts {names}, the dataset has classes {class_names}")
        outputs, labels = predict_dataset(model, dataset, collator, eval_args.batch_size)
        report = report_predictions(
            task, outputs, labels, class_names, output_dir, split, eval_args.target_column
        )
        if eval_args.cam:
            count = min(eval_args.num_cam_images, len(dataset))
            # images spread over the split, so that every class appears
            batch = collator([dataset[int(i)] for i in torch.linspace(0, len(dataset) - 1, count).long()])
            classification = task == "classification"
            report.plots["cam"] = write_cam_overlays(
                model,
                batch["pixel_values"].to(eval_args.device),
                output_dir / "plots" / f"cam_{split}.png",
                class_names=class_names if classification else None,
                labels=batch["labels"].tolist() if classification else None,
            )
    return _write(eval_args, data_args, task, report)


def _write(eval_args: EvaluateArguments, data_args: DataArguments, task: str, report) -> dict[str, float]:
    output_dir = Path(eval_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result = {"model": eval_args.model, "dataset": data_args.dataset, "task": task, "metrics": report.metrics}
    result.update({"plots": report.plots, "confusion_matrix": report.confusion_matrix})
    (output_dir / "metrics.json").write_text(json.dumps(json_safe(result), indent=2))
    for key, value in report.metrics.items():
        print(f"{key}: {value:.4f}")
    print(f"outputs: {output_dir}")
    return report.metrics
